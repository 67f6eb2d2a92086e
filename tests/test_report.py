import json

import pandas as pd
import pytest

from pairlib import report


def test_save_table_writes_csv_markdown_and_stamp(tmp_path):
    df = pd.DataFrame({"model": ["a", "b"], "f1": [88.5, 87.1]})
    path = report.save_table(df, "t", tmp_path, "smoke", notes=["derived split"])
    assert pd.read_csv(path).equals(df)
    meta = json.loads((tmp_path / "tables" / "t.meta.json").read_text())
    assert meta["profile"] == "smoke" and meta["commit"] and meta["hardware"] and "torch" in meta["versions"]
    md = (tmp_path / "tables" / "t.md").read_text()
    assert "| model" in md and "profile smoke" in md and "derived split" in md


def _claim(cid, ours="1", verdict="partly"):
    return report.Claim(cid, "DeFormer", "d", "3.2", ours, "x", verdict, "20_deformer_squad")


def test_claims_are_added_and_replaced_by_id(tmp_path):
    report.write_claims([_claim("a.x"), _claim("b.y")], tmp_path)
    report.write_claims([_claim("a.x", ours="2")], tmp_path)
    claims = report.read_claims(tmp_path)
    assert list(claims.columns) == list(report.CLAIM_COLUMNS)
    assert claims.set_index("claim_id").loc["a.x", "ours"] == "2"
    assert len(claims) == 2


def test_bad_verdict_and_missing_evidence_are_refused():
    with pytest.raises(ValueError, match="verdict must be one of"):
        _claim("a", verdict="sort of")
    with pytest.raises(ValueError, match="evidence"):
        report.Claim("a", "p", "d", "1", "1", "x", "partly", "")


def test_output_dir_honours_the_test_override(monkeypatch, tmp_path):
    monkeypatch.setenv("PAIRLIB_OUTPUTS", str(tmp_path))
    assert report.output_dir("cpu") == tmp_path / "cpu"
    assert report.output_dir("cpu", tmp_path / "x") == tmp_path / "x"
