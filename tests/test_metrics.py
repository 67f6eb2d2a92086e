import math

import pytest

from pairlib.core import metrics


def test_squad_normalisation_follows_the_official_script():
    assert metrics.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert metrics.normalize_answer("an apple a day") == "apple day"


@pytest.mark.parametrize("pred,golds,em,f1", [
    ("Denver Broncos", ["Denver Broncos", "The Denver Broncos"], 100.0, 100.0),
    ("the Denver Broncos", ["Denver Broncos"], 100.0, 100.0),  # articles are dropped
    ("Broncos", ["Denver Broncos"], 0.0, 100 * 2 * (1 * 0.5) / 1.5),  # P=1, R=1/2 -> F1 = 2/3
    ("Carolina Panthers", ["Denver Broncos"], 0.0, 0.0),
    ("1,000 people", ["1000 people", "a thousand"], 100.0, 100.0),  # punctuation removed
    ("in Santa Clara, California", ["Santa Clara", "Levi's Stadium"], 0.0, 100 * 2 * (0.5 * 1) / 1.5),
])
def test_squad_em_f1_hand_checked(pred, golds, em, f1):
    out = metrics.squad_em_f1([pred], [golds])
    assert out["exact_match"] == pytest.approx(em)
    assert out["f1"] == pytest.approx(f1)


def test_squad_em_f1_averages_over_questions():
    out = metrics.squad_em_f1(["a b", "x"], [["a b"], ["y"]])
    assert out == {"exact_match": 50.0, "f1": 50.0}


def test_mrr_at_k_hand_checked():
    scores = [0.9, 0.8, 0.1, 0.3, 0.7, 0.2]
    labels = [0, 1, 0, 1, 0, 0]
    groups = ["q1", "q1", "q1", "q2", "q2", "q3"]  # q3 has no relevant item and is left out
    assert metrics.mrr_at_k(scores, labels, groups) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert metrics.mrr_at_k(scores, labels, groups, k=1) == 0.0
    # MS MARCO's official MRR@10 averages over every judged query: q3 counts 0
    assert metrics.mrr_at_k(scores, labels, groups, count_empty=True) == pytest.approx((1 / 2 + 1 / 2) / 3)
    with pytest.raises(ValueError, match="no group has a relevant item"):
        metrics.mrr_at_k([0.1], [0], ["q"], count_empty=True)


def test_accuracy_auc_and_errors():
    assert metrics.accuracy([1, 0, 1, 1], [1, 0, 0, 1]) == 0.75
    assert metrics.auc_roc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        metrics.accuracy([1, 0], [1])
    with pytest.raises(ValueError):
        metrics.mrr_at_k([0.1], [0], ["q"])


# Hand-checked cases: the package's evaluate modules give what the plain functions give, and both give these.
def test_the_squad_module_equals_the_official_rules():
    got = metrics.compute("squad_v1", predictions=["The Eiffel Tower", "in 1600", "x"],
                          references=[["Eiffel Tower"], ["1601", "around 1600"], ["y"]])
    f1_second = 2 * (1 / 2 * 1 / 2) / (1 / 2 + 1 / 2)  # "in 1600" vs "around 1600": one shared token of two each
    assert got == pytest.approx({"exact_match": 100 / 3, "f1": 100 * (1 + f1_second + 0) / 3})
    assert got == metrics.squad_em_f1(["The Eiffel Tower", "in 1600", "x"], [["Eiffel Tower"], ["1601", "around 1600"],
                                                                            ["y"]])


def test_the_accuracy_and_auc_modules_equal_the_functions():
    assert metrics.compute("accuracy", predictions=[1, 0, 2, 2], references=[1, 1, 2, 0]) == {"accuracy": 0.5}
    scores, labels = [0.9, 0.2, 0.6, 0.4], [1, 0, 0, 1]  # positives outrank 3 of the 4 positive-negative pairs
    assert metrics.compute("auc_roc", predictions=scores, references=labels) == {"auc_roc": 0.75}
    assert metrics.auc_roc(scores, labels) == 0.75


def test_the_ranking_module_gives_mrr_and_ndcg():
    scores = [0.9, 0.8, 0.1, 0.5, 0.7, 0.3, 0.2]
    labels = [0, 1, 0, 1, 0, 0, 0]  # q1: relevant at rank 2; q2: relevant at rank 2 of 2; q3: none (left out)
    groups = ["q1", "q1", "q1", "q2", "q2", "q3", "q3"]
    got = metrics.compute("ranking", predictions=scores, references=labels, groups=groups, k=10)
    assert got == pytest.approx({"mrr@10": 0.5, "ndcg@10": 1 / math.log2(3), "mrr@10_all_queries": 1 / 3})
    assert got["ndcg@10"] == pytest.approx(metrics.ndcg_at_k(scores, labels, groups, 10))
    assert metrics.ndcg_at_k([0.9, 0.1], [1, 0], ["q", "q"]) == 1.0


def test_an_unknown_module_names_the_shipped_ones():
    with pytest.raises(ValueError, match="ships accuracy, auc_roc, ranking, squad_v1"):
        metrics.module_path("bleu")


def test_chance_levels_are_the_mean_over_every_ordering():
    """Exact expectations, checked by enumerating every permutation of small groups."""
    from itertools import permutations

    from pairlib.core.metrics import chance_levels, mrr_at_k, ndcg_at_k
    labels = [1, 0, 0, 0, 1, 1, 0, 0, 0, 0]
    groups = ["a"] * 4 + ["b"] * 3 + ["c"] * 3  # one of 4, two of 3, none (left out)
    k = 2
    mrr, ndcg = [], []
    for pa in permutations(range(4)):
        for pb in permutations(range(3)):
            scores = [*pa, *pb, 0, 0, 0]
            mrr.append(mrr_at_k(scores, labels, groups, k))
            ndcg.append(ndcg_at_k(scores, labels, groups, k))
    chance = chance_levels(labels, groups, k)
    assert chance["mrr@2"] == pytest.approx(sum(mrr) / len(mrr))
    assert chance["ndcg@2"] == pytest.approx(sum(ndcg) / len(ndcg))
    assert chance["auc_roc"] == 0.5
    # one relevant among 3: MRR@10 = (1 + 1/2 + 1/3) / 3
    assert chance_levels([1, 0, 0], ["q"] * 3)["mrr@10"] == pytest.approx(11 / 18)


def test_pair_scores_are_the_one_logit_or_the_positive_log_odds():
    import numpy as np
    import pytest

    from pairlib.core.metrics import pair_scores

    np.testing.assert_allclose(pair_scores(np.array([[0.5, 2.0], [1.0, -1.0]])), [1.5, -2.0])
    np.testing.assert_allclose(pair_scores(np.array([[0.3], [-0.7]])), [0.3, -0.7])
    with pytest.raises(ValueError, match=r"shape \(n, 1\) or \(n, 2\), got \(2, 3\)"):
        pair_scores(np.zeros((2, 3)))


def test_ranking_reports_mrr_over_all_queries_only_where_some_have_no_relevant_candidate():
    scores, labels = [0.9, 0.8, 0.1, 0.3, 0.7, 0.2], [0, 1, 0, 1, 0, 0]
    with_empty = metrics.compute("ranking", predictions=scores, references=labels,
                                 groups=["q1", "q1", "q1", "q2", "q2", "q3"], k=10)
    assert with_empty["mrr@10_all_queries"] == pytest.approx(1 / 3)
    assert "mrr@10_all_queries" not in metrics.compute("ranking", predictions=scores[:5], references=labels[:5],
                                                        groups=["q1", "q1", "q1", "q2", "q2"], k=10)
    chance = metrics.chance_levels(labels, ["q1", "q1", "q1", "q2", "q2", "q3"])
    assert chance["mrr@10_all_queries"] == pytest.approx(chance["mrr@10"] * 2 / 3)
