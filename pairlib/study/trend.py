"""How a gap moves as a training budget doubles. The budget curves (25, 45) measure a gap at a few budgets that
double; a straight line in log2 of the budget is the simplest reading of such points, and its slope (what one doubling
changed) is what their claims rows and docs report beside the measured values."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd


def log2_line(gaps: pd.Series) -> tuple[float, float]:
    """The least-squares line of a gap against log2 of its index (the budget): (slope, intercept); NaNs with fewer
    than two budgets, where no line is defined."""
    if len(gaps) < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(np.log2(gaps.index.to_numpy(dtype=float)), gaps.to_numpy(dtype=float), 1)
    return float(slope), float(intercept)


def per_doubling(gaps: pd.Series) -> float:
    """What one doubling of the budget changed the gap by on average (NaN with a single budget)."""
    return log2_line(gaps)[0]


def extrapolated(gaps: pd.Series, budget: float) -> float:
    """The line's value at `budget`: beyond the measured budgets this is an extrapolation, to be labelled as one."""
    slope, intercept = log2_line(gaps)
    return slope * math.log2(budget) + intercept


def trend_text(gaps: pd.Series, budget_unit: str, value_format: str = "+.3f") -> str:
    """'at 4,800 / 9,600 pool pairs: -0.244 / -0.210, +0.034 per doubling' (no slope with a single budget; the
    slope always shows its sign, since its direction is the point)."""
    text = (f"at {' / '.join(f'{n:,}' for n in gaps.index)} {budget_unit}: "
            f"{' / '.join(f'{v:{value_format}}' for v in gaps)}")
    slope = per_doubling(gaps)
    return text if slope != slope else f"{text}, {slope:+{value_format.lstrip('+')}} per doubling"
