"""The log2 line the budget curves read their gaps with."""
import math

import pandas as pd

from pairlib.study import trend


def test_a_gap_that_falls_by_the_same_amount_each_doubling_is_a_straight_line_in_log2():
    gaps = pd.Series([20.0, 16.0, 12.0], index=[2000, 4000, 8000])
    assert math.isclose(trend.per_doubling(gaps), -4.0)
    assert math.isclose(trend.extrapolated(gaps, 32000), 4.0)
    assert trend.trend_text(gaps, "train questions", ".1f") == (
        "at 2,000 / 4,000 / 8,000 train questions: 20.0 / 16.0 / 12.0, -4.0 per doubling")


def test_a_single_budget_has_no_line():
    one = pd.Series([0.25], index=[4800])
    assert math.isnan(trend.per_doubling(one)) and math.isnan(trend.extrapolated(one, 9600))
    assert trend.trend_text(one, "pool pairs") == "at 4,800 pool pairs: +0.250"
