"""FastBERT's claims: Table 2 rows (notebooks 35 and 36), what each verdict judges, and that no dataset loses
its row."""
import pandas as pd

from pairlib.study.claims import CHINESE_TASKS, NOTEBOOK_CLAIMS
from pairlib.study import papers
from pairlib.study.fastbert_claims import (ENGLISH_TASKS, PAPER_LIMIT, SPEEDS, left_out_claims, row_key,
                                           table2_claims)


def _sweep(backbone: float, accuracy: dict[float, float], speedup: dict[float, float]) -> pd.DataFrame:
    rows = [{"speed": 0.0, "accuracy": backbone, "mean_exit_layer": 5.0, "flops_speedup": 1.0}]
    rows += [{"speed": s, "accuracy": accuracy[s], "mean_exit_layer": 1.0, "flops_speedup": speedup[s]}
             for s in SPEEDS]
    return pd.DataFrame(rows)


def _paper_like(task: str, limit: float) -> pd.DataFrame:
    """Our sweep losing what the paper loses and reaching the same share of our own FLOPs limit."""
    row = papers.FASTBERT_TABLE2[task]
    bert, by_speed = row.bert, row.by_speed
    return _sweep(0.80, {s: 0.80 - (bert - by_speed[s][0]) / 100 for s in SPEEDS},
                  {s: by_speed[s][1] / PAPER_LIMIT * limit for s in SPEEDS})


def test_a_run_that_loses_what_the_paper_loses_at_the_same_share_of_its_limit_reproduces():
    claims = table2_claims("chnsenticorp", _paper_like("chnsenticorp", 5.5), 5.5, "here", "35", 0.5, "small")
    assert [c.verdict for c in claims] == ["reproduced"] * len(SPEEDS)
    assert [c.claim_id for c in claims] == [f"fastbert.chnsenticorp.acc@{s}" for s in SPEEDS]


def test_a_larger_drop_or_a_smaller_share_is_not_reproduced():
    sweep = _paper_like("lcqmc", 5.5)
    worse = sweep.assign(accuracy=lambda d: d.accuracy.where(d.speed == 0.0, d.accuracy - 0.05))
    assert {c.verdict for c in table2_claims("lcqmc", worse, 5.5, "here", "35", 0.5, "small")} == {"not reproduced"}
    slower = sweep.assign(flops_speedup=lambda d: d.flops_speedup.where(d.speed == 0.0, 1.0))
    assert "not reproduced" in {c.verdict for c in table2_claims("lcqmc", slower, 5.5, "here", "35", 0.5, "small")}


def test_a_backbone_at_the_majority_class_judges_no_drop():
    claims = table2_claims("weibo", _paper_like("weibo", 5.5), 5.5, "here", "35", 0.80, "small")
    assert {c.verdict for c in claims} == {"not reproduced"}
    assert "does not beat the majority class" in claims[0].ours


def test_datasets_left_out_of_a_run_keep_their_rows_as_not_run():
    rows = left_out_claims(CHINESE_TASKS, ["chnsenticorp", "lcqmc"], "35_fastbert_chinese")
    assert {c.claim_id.split(".")[1] for c in rows} == {"book_review", "shopping", "weibo", "thucnews"}
    assert {c.verdict for c in rows} == {"not run"} and "chnsenticorp, lcqmc" in rows[0].ours
    assert left_out_claims(ENGLISH_TASKS, list(ENGLISH_TASKS), "36_fastbert_english") == []


def test_every_dataset_of_the_two_notebooks_has_its_claims_listed():
    for notebook, tasks in (("35_fastbert_chinese", CHINESE_TASKS), ("36_fastbert_english", ENGLISH_TASKS)):
        listed = set(NOTEBOOK_CLAIMS[notebook])
        assert {f"fastbert.{row_key(t)}.acc@{s}" for t in tasks for s in SPEEDS} <= listed


def test_yelp_polarity_stands_for_table_2s_yelp_p_row():
    assert row_key("yelp_polarity") == "yelp_p" and row_key("yelp_full") == "yelp_full"
    rows = left_out_claims(ENGLISH_TASKS, ["dbpedia"], "36_fastbert_english")
    assert {c.claim_id.split(".")[1] for c in rows} == {"amazon_full", "yahoo", "yelp_full", "yelp_p"}
