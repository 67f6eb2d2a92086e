"""The rules that turn a measurement beside a paper's number into a verdict, each once, each tested
(tests/test_verdicts.py). Claims modules call them; notebooks never judge.

A verdict is one of `VERDICTS`. "not run" means nothing was measured (NaN); a measurement that cannot be judged
(a backbone that did not learn the task, students that did not learn their teacher) is "not reproduced", its row
saying why.
"""
from __future__ import annotations

from typing import Iterable

VERDICTS = ("reproduced", "partly", "not reproduced", "not run")
COLOURS = {"reproduced": "#2a9d8f", "partly": "#e9c46a", "not reproduced": "#e76f51", "not run": "#bbbbbb"}  # figures


def _missing(*values: float) -> bool:
    return any(v != v for v in values)


def within(ours: float, paper: float, tolerance: float, partly_tolerance: float,
           higher_is_better: bool = True) -> str:
    """'reproduced' when ours is at most `tolerance` worse than the paper's (better always counts), 'partly' when at
    most `partly_tolerance` worse, else 'not reproduced'; NaN (not measured) gives 'not run'."""
    if _missing(ours, paper):
        return "not run"
    shortfall = (paper - ours) if higher_is_better else (ours - paper)
    if shortfall <= tolerance:
        return "reproduced"
    return "partly" if shortfall <= partly_tolerance else "not reproduced"


def accuracy_drop(ours_drop: float, paper_drop: float, learned: bool = True) -> str:
    """An accuracy (or F1) drop against the paper's: reproduced within 1 point more lost, partly within 3. A
    backbone that did not beat the majority class learned nothing, so no drop can be judged."""
    return within(-ours_drop, -paper_drop, 1.0, 3.0) if learned else "not reproduced"


def speedup(ours: float, paper: float, flops_ratio: float) -> str:
    """The papers' speedups come from their geometry (DeFormer: 9 of 12 layers split); ours from our backbone's,
    whose FLOPs ratio bounds what any implementation can reach. 'reproduced' at >= 90% of the paper's speedup;
    'partly' when below it but >= 80% of our own FLOPs bound (the mechanism delivers what the geometry allows);
    else 'not reproduced'."""
    if _missing(ours, paper, flops_ratio):
        return "not run"
    if ours >= 0.9 * paper:
        return "reproduced"
    return "partly" if ours >= 0.8 * flops_ratio else "not reproduced"


def share_of_paper(ours: float, paper: float) -> str:
    """A ratio whose size the paper reports (DiPair's speedups): reproduced within 20% of it, partly within 60%."""
    return within(ours, paper, 0.2 * paper, 0.6 * paper)


def share_of_limit(ours_share: float, paper_share: float) -> str:
    """FastBERT's FLOPs speedup as a share (%) of the most its backbone's depth allows: reproduced within 10
    percentage points of the paper's share, partly within 30."""
    return within(ours_share, paper_share, 10, 30)


def memory_saved(ours: float, paper: float) -> str:
    """Memory saved (%): reproduced within 10 points of the paper's, partly within 30."""
    return within(ours, paper, tolerance=10, partly_tolerance=30)


def exit_depth(ours_fraction: float, paper_fraction: float) -> str:
    """Mean exit layer as a fraction of the depth (lower is better): reproduced within 0.05 of the paper's, partly
    within 0.15."""
    return within(-ours_fraction, -paper_fraction, 0.05, 0.15)


def auc_gap(ours: float, paper: float) -> str:
    """An AUC-ROC difference against the paper's: reproduced within 0.01 worse, partly within 0.03."""
    return within(ours, paper, 0.01, 0.03)


def worst(*verdicts: str) -> str:
    """The weakest of several verdicts on parts of one claim."""
    order = ("not run", "not reproduced", "partly", "reproduced")
    return min(verdicts, key=order.index)


def consistent_sign(gains: Iterable[float]) -> str:
    """Gains the paper reports as positive (an ablated part helps): reproduced when every one of ours is >= 0,
    partly when some are, not reproduced when none; 'not run' when none were measured."""
    gains = [g for g in gains if g == g]
    if not gains:
        return "not run"
    return "reproduced" if min(gains) >= 0 else "partly" if max(gains) >= 0 else "not reproduced"


def agreeing_share(share: float, reproduced: float = 0.8, partly: float = 0.6) -> str:
    """A pattern the paper shows holding (LUHA: accuracy falls as uncertainty rises): the share of our comparisons
    that agree with it."""
    if _missing(share):
        return "not run"
    return "reproduced" if share >= reproduced else "partly" if share >= partly else "not reproduced"


def realised_speedup(wallclock: float, realised: float) -> str:
    """A wall-clock speedup against the FLOPs speedup it should realise (our own target, the paper reports FLOPs
    only): no gain is 'not reproduced'; >= 70% realised 'reproduced', >= 40% 'partly'."""
    if _missing(wallclock, realised):
        return "not run"
    if wallclock <= 1:
        return "not reproduced"
    return "reproduced" if realised >= 0.7 else "partly" if realised >= 0.4 else "not reproduced"


def direction(gain: float, size_judgeable: bool) -> str:
    """A gain the paper expects but does not size (DiPair's two-stage training): no gain is 'not reproduced'; a
    gain is 'reproduced' where its size means something and 'partly' where only its direction does."""
    if _missing(gain):
        return "not run"
    if gain <= 0:
        return "not reproduced"
    return "reproduced" if size_judgeable else "partly"


def is_lower(ours: float, other: float) -> str:
    """An ordering the paper states without values (DE-Cos is worse than DiPair)."""
    if _missing(ours, other):
        return "not run"
    return "reproduced" if ours < other else "not reproduced"


def beats_majority(accuracy: float, majority: float, margin: float) -> bool:
    """Whether a model learned a task at all: its accuracy beats the majority class's by more than `margin` (in the
    accuracy's own unit). Below it an accuracy drop means nothing."""
    return accuracy > majority + margin


def learned_teacher(auc_roc: float, teacher_auc_roc: float) -> bool:
    """Whether a student learned the teacher: its AUC-ROC is closer to the teacher's than to chance (0.5). A
    difference between two students that did not says nothing about their methods, only that both failed."""
    return auc_roc > (0.5 + teacher_auc_roc) / 2
