"""The README's results are the committed cpu claims, never an older copy."""
from pairlib import report


def test_readme_claims_block_matches_outputs_cpu_claims():
    readme = (report.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    expected = report.readme_block(report.REPO_ROOT / "outputs" / "cpu")
    assert expected in readme, "README.md's claims table is stale: run `.venv/bin/pairlib readme` and commit"


def test_update_readme_replaces_only_the_block(tmp_path):
    (tmp_path / "out").mkdir()
    report.write_claims([report.Claim("a.b", "P", "d", "1", "2", "x", "partly", "20_x")], tmp_path / "out")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.README_START}\nold\n{report.README_END}\noutro\n")
    assert report.update_readme(readme, tmp_path / "out")
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "`a.b`" in text and "old" not in text
    assert not report.update_readme(readme, tmp_path / "out")
