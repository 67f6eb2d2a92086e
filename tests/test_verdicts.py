"""Each verdict rule at its boundaries: what it calls reproduced, partly and not reproduced, and NaN as not run."""
import math

import pytest

from pairlib.study import verdicts as v

NAN = math.nan


def test_within_tolerances():
    assert v.within(87.0, 88.0, tolerance=1.0, partly_tolerance=3.0) == "reproduced"
    assert v.within(86.0, 88.0, tolerance=1.0, partly_tolerance=3.0) == "partly"
    assert v.within(80.0, 88.0, tolerance=1.0, partly_tolerance=3.0) == "not reproduced"
    assert v.within(90.0, 88.0, tolerance=0.0, partly_tolerance=0.0) == "reproduced"  # better always counts
    assert v.within(2.0, 1.0, 0.5, 2.0, higher_is_better=False) == "partly"
    assert v.within(NAN, 1.0, 0.5, 2.0) == "not run"


def test_accuracy_drop_within_one_point_then_three_and_nothing_for_an_unlearned_task():
    assert v.accuracy_drop(2.4, 1.4) == "reproduced"
    assert v.accuracy_drop(4.3, 1.4) == "partly"
    assert v.accuracy_drop(4.5, 1.4) == "not reproduced"
    assert v.accuracy_drop(-1.0, 1.4) == "reproduced"  # losing less than the paper
    assert v.accuracy_drop(0.0, 1.4, learned=False) == "not reproduced"


def test_speedup_against_the_paper_then_against_our_own_flops_bound():
    assert v.speedup(3.0, 3.2, 3.5) == "reproduced"  # >= 90% of the paper's
    assert v.speedup(1.9, 3.2, 2.2) == "partly"  # >= 80% of our FLOPs ratio
    assert v.speedup(1.2, 3.2, 2.2) == "not reproduced"
    assert v.speedup(NAN, 3.2, 2.2) == "not run"


@pytest.mark.parametrize("rule, good, partly, bad", [
    (v.share_of_paper, 300, 150, 100),  # against 355: within 20%, 60%
    (v.memory_saved, 65, 45, 30),  # against 70.3: within 10 and 30 points
])
def test_ratio_rules(rule, good, partly, bad):
    paper = 355 if rule is v.share_of_paper else 70.3
    assert [rule(x, paper) for x in (good, partly, bad)] == ["reproduced", "partly", "not reproduced"]


def test_share_of_limit_and_exit_depth_and_auc_gap():
    assert [v.share_of_limit(x, 50) for x in (41, 21, 19)] == ["reproduced", "partly", "not reproduced"]
    assert [v.exit_depth(x, 0.08) for x in (0.12, 0.2, 0.3)] == ["reproduced", "partly", "not reproduced"]
    assert [v.auc_gap(x, -0.004) for x in (-0.01, -0.03, -0.05)] == ["reproduced", "partly", "not reproduced"]


def test_worst_of_several():
    assert v.worst("reproduced", "partly") == "partly"
    assert v.worst("reproduced", "not reproduced", "partly") == "not reproduced"
    assert v.worst("reproduced", "not run") == "not run"


def test_consistent_sign():
    assert v.consistent_sign([0.1, 0.0]) == "reproduced"
    assert v.consistent_sign([0.1, -0.2]) == "partly"
    assert v.consistent_sign([-0.1, -0.2]) == "not reproduced"
    assert v.consistent_sign([NAN]) == "not run"


def test_agreeing_share():
    assert [v.agreeing_share(x) for x in (0.8, 0.6, 0.59, NAN)] == ["reproduced", "partly", "not reproduced",
                                                                     "not run"]


def test_realised_speedup_needs_a_real_gain_first():
    assert v.realised_speedup(0.9, 0.9) == "not reproduced"
    assert [v.realised_speedup(2.0, x) for x in (0.7, 0.4, 0.3)] == ["reproduced", "partly", "not reproduced"]


def test_direction_and_ordering():
    assert v.direction(0.01, True) == "reproduced"
    assert v.direction(0.01, False) == "partly"  # only the direction is judgeable
    assert v.direction(-0.01, True) == "not reproduced"
    assert v.direction(NAN, True) == "not run"
    assert v.is_lower(0.8, 0.9) == "reproduced" and v.is_lower(0.9, 0.8) == "not reproduced"


def test_learned_means_beyond_chance_or_the_majority():
    assert v.learned_teacher(0.70, 0.86) and not v.learned_teacher(0.67, 0.86)
    assert v.beats_majority(0.64, 0.62, 0.01) and not v.beats_majority(0.63, 0.62, 0.01)
