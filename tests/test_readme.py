"""The README's and the paper pages' results are the committed cpu claims, never an older copy."""
import pytest

from pairlib import report


@pytest.mark.parametrize("page", sorted(report.CLAIM_PAGES))
def test_claims_blocks_match_outputs_cpu_claims(page):
    paper, prefix = report.CLAIM_PAGES[page]
    text = (report.REPO_ROOT / page).read_text(encoding="utf-8")
    expected = report.readme_block(report.REPO_ROOT / "outputs" / "cpu", paper, prefix)
    assert expected in text, f"{page}'s claims table is stale: run `.venv/bin/pairlib readme` and commit"


def test_update_readme_replaces_only_the_block(tmp_path):
    (tmp_path / "out").mkdir()
    report.write_claims([report.Claim("a.b", "P", "d", "1", "2", "x", "partly", "20_x")], tmp_path / "out")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\noutro\n")
    assert report.update_readme(readme, tmp_path / "out")
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "`a.b`" in text and "old" not in text
    assert not report.update_readme(readme, tmp_path / "out")


def test_paper_pages_show_only_their_paper(tmp_path):
    (tmp_path / "out").mkdir()
    report.write_claims([report.Claim("x.one", "DeFormer", "d", "1", "2", "x", "partly", "2_x"),
                         report.Claim("y.two", "FastBERT", "d", "1", "2", "x", "partly", "3_y")], tmp_path / "out")
    block = report.readme_block(tmp_path / "out", "DeFormer", "../")
    assert "`x.one`" in block and "`y.two`" not in block and "](../outputs/cpu/2_x.ipynb)" in block
