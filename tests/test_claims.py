"""Every claim a notebook lists has a row in the committed cpu claims table, and notebooks write all they list."""
import pytest

from pairlib.core.artifacts import REPO_ROOT
from pairlib.study import claims, report

CPU = REPO_ROOT / "outputs" / "cpu"


def test_every_listed_claim_has_a_cpu_row():
    missing = claims.missing(report.read_claims(CPU))
    assert not missing, (f"outputs/cpu/claims.csv lacks rows for {missing}: run their notebooks at the cpu "
                         "profile, or `pairlib run --profile cpu --only 90_report` to mark them `not run`")


def test_cpu_rows_are_listed_and_name_their_notebook():
    table = report.read_claims(CPU)
    where = claims.listed()
    for r in table.itertuples():
        assert r.claim_id in where, f"{r.claim_id} is in outputs/cpu/claims.csv but listed for no notebook"
        assert r.evidence == where[r.claim_id], f"{r.claim_id}: evidence {r.evidence}, listed for {where[r.claim_id]}"


def test_no_placeholder_is_left_for_a_notebook_that_ran():
    assert not claims.stale_placeholders(report.read_claims(CPU), CPU)


def test_a_notebook_must_write_every_claim_it_lists(tmp_path):
    nb = "22_deformer_race"
    one = report.Claim("deformer.race.speedup", "DeFormer", "d", "3.4x", "2x", "x", "partly", nb)
    with pytest.raises(ValueError, match="did not write.*deformer.race.acc_drop"):
        report.write_claims([one], tmp_path)
    stray = report.Claim("deformer.race.other", "DeFormer", "d", "1", "2", "x", "partly", nb)
    with pytest.raises(ValueError, match="not listed"):
        report.write_claims([one, stray], tmp_path)
    assert not (tmp_path / "claims.csv").exists()


def test_placeholders_fill_gaps_and_are_replaced_by_the_notebook(tmp_path):
    added = report.add_placeholder_claims(tmp_path, "cpu")
    assert set(added) == set(claims.listed())
    table = report.read_claims(tmp_path)
    assert (table.verdict == "not run").all() and table.ours.map(claims.is_placeholder).all()
    nb = "22_deformer_race"
    report.write_claims([report.Claim(cid, "DeFormer", "d", "1", "2", "x", "partly", nb)
                         for cid in claims.NOTEBOOK_CLAIMS[nb]], tmp_path)
    (tmp_path / f"{nb}.ipynb").write_text("{}")
    assert claims.stale_placeholders(report.read_claims(tmp_path), tmp_path) == []
    assert report.add_placeholder_claims(tmp_path, "cpu") == []


def test_a_claim_moved_to_another_notebook_gets_a_placeholder_naming_it(tmp_path):
    cid = claims.NOTEBOOK_CLAIMS["35_fastbert_chinese"][0]
    report.write_claims([report.Claim(cid, "FastBERT", "d", "1", "not run: no backbone", "x", "not run",
                                      "an_old_notebook")], tmp_path)
    assert cid in report.add_placeholder_claims(tmp_path, "cpu")
    row = report.read_claims(tmp_path).set_index("claim_id").loc[cid]
    assert row.evidence == "35_fastbert_chinese" and "--only 35_fastbert_chinese" in row.ours
