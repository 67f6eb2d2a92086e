"""The README's and the paper pages' results are the committed cpu claims, never an older copy."""
import pandas as pd
import pytest

from pairlib.core.artifacts import REPO_ROOT
from pairlib.study import pages, report


@pytest.mark.parametrize("page", sorted(pages.CLAIM_PAGES))
def test_claims_blocks_match_outputs_cpu_claims(page):
    paper, prefix = pages.CLAIM_PAGES[page]
    text = (REPO_ROOT / page).read_text(encoding="utf-8")
    expected = pages.readme_block(REPO_ROOT / "outputs" / "cpu", paper, prefix)
    assert expected in text, f"{page}'s claims table is stale: run `.venv/bin/pairlib readme` and commit"


def test_update_readme_replaces_only_the_block(tmp_path):
    (tmp_path / "out").mkdir()
    report.write_claims([report.Claim("a.b", "P", "d", "1", "2", "x", "partly", "20_x")], tmp_path / "out")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{pages.claims_start('cpu')}\nold\n{pages.CLAIMS_END}\noutro\n")
    assert pages.update_readme(readme, tmp_path / "out")
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "`a.b`" in text and "old" not in text
    assert not pages.update_readme(readme, tmp_path / "out")


def test_paper_pages_show_only_their_paper(tmp_path):
    (tmp_path / "cpu").mkdir()
    report.write_claims([report.Claim("x.one", "DeFormer", "d", "1", "2", "x", "partly", "2_x"),
                         report.Claim("y.two", "FastBERT", "d", "1", "2", "x", "partly", "3_y")], tmp_path / "cpu")
    block = pages.readme_block(tmp_path / "cpu", "DeFormer", "../")
    assert "`x.one`" in block and "`y.two`" not in block and "](../outputs/cpu/2_x.ipynb)" in block


def test_the_frontier_page_matches_outputs_cpu():
    text = (REPO_ROOT / pages.FRONTIER_PAGE).read_text(encoding="utf-8")
    expected = pages.frontier_block(REPO_ROOT / "outputs" / "cpu")
    assert expected in text, f"{pages.FRONTIER_PAGE}'s frontier is stale: run `.venv/bin/pairlib readme` and commit"


def test_the_frontier_block_shows_each_model_and_the_hardware(tmp_path):
    out = tmp_path / "cpu"
    assert "has not run" in pages.frontier_block(out)
    summary = pd.DataFrame({"model": ["teacher", "DE-Cos"], "method": ["cross-encoder", "dual encoder"],
                            "auc_roc": [0.96, 0.93], "gflops_per_pair": [2.0, 0.01], "ms_per_pair_batch1": [10.0, 1.0],
                            "ms_per_pair_batch64": [5.0, 0.1], "frontier_batch1": [True, True],
                            "frontier_batch64": [True, False], "flops_ratio_vs_teacher": [1.0, 200.0],
                            "speedup_batch1_vs_teacher": [1.0, 10.0], "speedup_batch64_vs_teacher": [1.0, 50.0]})
    report.save_table(summary, "frontier_summary", out, "cpu")
    block = pages.frontier_block(out)
    assert "| DE-Cos | 0.930 | 0.01 | 1 | 0.1 | 10.0x / 50.0x | batch 1 |" in block
    assert "| teacher | 0.960 | 2 | 10 | 5 | 1.0x / 1.0x | batch 1 and batch 64 |" in block
    assert "batch 64" in block and report.hardware_label() in block
    assert "](../outputs/cpu/figures/frontier.png)" in block


def _pages(root):
    """A copy of the pages `pairlib readme` writes, under `root`."""
    for page in (*pages.CLAIM_PAGES, pages.FRONTIER_PAGE):
        (root / page).parent.mkdir(parents=True, exist_ok=True)
        (root / page).write_text((REPO_ROOT / page).read_text(encoding="utf-8"), encoding="utf-8")
    return {page: (root / page).read_text(encoding="utf-8") for page in (*pages.CLAIM_PAGES, pages.FRONTIER_PAGE)}


def test_readme_refuses_a_profile_without_outputs_and_changes_no_page(tmp_path):
    before = _pages(tmp_path)
    with pytest.raises(ValueError, match="holds no claims.csv"):
        pages.update_claim_pages(tmp_path / "outputs" / "cpuu", root=tmp_path)
    assert before == {page: (tmp_path / page).read_text(encoding="utf-8") for page in before}


def test_blocks_name_the_profile_they_come_from(tmp_path):
    _pages(tmp_path)
    out = tmp_path / "outputs" / "smoke"
    out.mkdir(parents=True)
    report.write_claims([report.Claim("x.one", "DeFormer", "d", "1", "2", "x", "partly", "20_x")], out)
    pages.update_claim_pages(out, root=tmp_path)
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert pages.claims_start("smoke") in readme and pages.claims_start("cpu") not in readme
    assert "](outputs/smoke/20_x.ipynb)" in readme
    assert "from outputs/smoke/tables/frontier_summary.csv" in (tmp_path / pages.FRONTIER_PAGE).read_text()


def test_a_claims_file_without_claims_blanks_no_page(tmp_path):
    before = _pages(tmp_path)
    out = tmp_path / "outputs" / "cpu"
    out.mkdir(parents=True)
    (out / "claims.csv").write_text(",".join(report.CLAIM_COLUMNS) + "\n")
    with pytest.raises(ValueError, match="holds no claims"):
        pages.update_claim_pages(out, root=tmp_path)
    assert before == {page: (tmp_path / page).read_text(encoding="utf-8") for page in before}


def test_a_row_judged_on_the_deeper_profile_replaces_the_base_row_and_keeps_it_as_evidence(tmp_path):
    """outputs/cpu-me5/ (the cpu profile's FastBERT notebooks on the 12-layer backbone) judges a claim where it ran;
    the cpu row's result stays in `ours`, and each row names its backbone and the folder its notebook is in."""
    def claim(cid, ours, verdict, notebook):  # rows as a notebook writes them (one of its claims each, here)
        return {"claim_id": cid, "paper": "FastBERT", "description": "d", "paper_value": "94.38", "ours": ours,
                "unit": "%", "verdict": verdict, "evidence": notebook}
    acc = "fastbert.agnews.acc@0.1"
    report._merge_claim_rows([claim(acc, "89.39", "reproduced", "31_fastbert_speed_accuracy"),
                              claim("x.one", "2", "partly", "20_deformer_squad")], tmp_path / "cpu", staged=False)
    report._merge_claim_rows([claim(acc, "91.00", "partly", "31_fastbert_speed_accuracy")], tmp_path / "cpu-me5",
                             staged=False)
    table = pages.published_claims(tmp_path / "cpu").set_index("claim_id")
    row = table.loc["fastbert.agnews.acc@0.1"]
    assert row.ours == "91.00; on minilm-l6: 89.39 (reproduced)" and row.verdict == "partly"
    assert (row.profile, row.backbone) == ("cpu-me5", "me5-small")
    assert (table.loc["x.one"].profile, table.loc["x.one"].backbone) == ("cpu", "minilm-l6")
    block = pages.readme_block(tmp_path / "cpu")
    assert "| 91.00 | `me5-small` | **partly** | [31](outputs/cpu-me5/31_fastbert_speed_accuracy.ipynb) |" in block
