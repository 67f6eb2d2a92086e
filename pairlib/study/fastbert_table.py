"""FastBERT's Table 2 beside ours, one dataset at a time (notebooks 35 and 36).

The paper's numbers are relative to its own backbone (BERT-base, 12 layers); ours to a smaller one. So each row
judges what transfers: the accuracy FastBERT gives up against its own backbone at a speed, and the share of the most
FLOPs exiting can save (every sample after the first layer: about 11.7x for 12 layers, about 5.5x for 6) that the
speed reaches. The absolute gap to the paper's accuracy is stated beside it, with its cause, the backbone.
"""
from __future__ import annotations

import pandas as pd

from pairlib.study import report
from pairlib.study.claims import FASTBERT_ENGLISH
from pairlib.study.claims import FASTBERT_SPEEDS as SPEEDS

# Table 2: BERT's accuracy and, per speed, FastBERT's accuracy and FLOPs speedup (../shared/PAPERS.md, A1)
PAPER_TABLE2: dict[str, tuple[str, float, dict[float, tuple[float, float]]]] = {
    "chnsenticorp": ("ChnSentiCorp", 95.25, {0.1: (95.25, 2.02), 0.5: (92.00, 6.82), 0.8: (89.75, 9.40)}),
    "book_review": ("Book review", 86.88, {0.1: (86.88, 1.60), 0.5: (86.64, 4.21), 0.8: (85.14, 7.23)}),
    "shopping": ("Shopping review", 96.84, {0.1: (96.79, 4.45), 0.5: (96.42, 8.65), 0.8: (95.72, 10.04)}),
    "lcqmc": ("LCQMC", 86.68, {0.1: (86.59, 1.68), 0.5: (84.05, 3.42), 0.8: (77.45, 6.57)}),
    "weibo": ("Weibo", 97.69, {0.1: (97.71, 5.90), 0.5: (97.72, 6.51), 0.8: (97.69, 10.09)}),
    "thucnews": ("THUCNews", 96.71, {0.1: (96.71, 6.05), 0.5: (95.64, 11.00), 0.8: (94.97, 11.74)}),
    "ag_news": ("Ag.news", 94.47, {0.1: (94.38, 3.62), 0.5: (93.14, 10.33), 0.8: (92.53, 11.72)}),
    "amazon_full": ("Amz.F", 65.50, {0.1: (65.50, 1.03), 0.5: (64.64, 2.16), 0.8: (61.70, 9.24)}),
    "dbpedia": ("DBpedia", 99.31, {0.1: (99.28, 10.57), 0.5: (99.05, 11.74), 0.8: (99.04, 11.75)}),
    "yahoo": ("Yahoo", 77.36, {0.1: (77.37, 1.30), 0.5: (76.57, 4.48), 0.8: (75.05, 11.08)}),
    "yelp_full": ("Yelp.F", 65.93, {0.1: (65.93, 1.05), 0.5: (64.73, 2.21), 0.8: (60.66, 8.37)}),
    "yelp_p": ("Yelp.P", 96.04, {0.1: (95.99, 3.26), 0.5: (95.32, 6.30), 0.8: (94.31, 8.85)}),
}
ENGLISH_TASKS = tuple(t for t in FASTBERT_ENGLISH if t != "yelp_p")  # notebook 36's (Yelp.P has no copy here)
# Table 1 (BERT-base, length 128): 21785M in all against 1809.9M + 46.1M for the first layer and its classifier
PAPER_FLOPS_LIMIT = 21785 / (1809.9 + 46.1)
# (accuracy points, share-of-limit points) within which a row is reproduced, then partly
TOLERANCE, PARTLY = (1.0, 10.0), (3.0, 30.0)


def _worst(*verdicts: str) -> str:
    order = ("not run", "not reproduced", "partly", "reproduced")
    return min(verdicts, key=order.index)


def table2_claims(task: str, sweep: pd.DataFrame, limit: float, where: str, evidence: str,
                  majority: float, why_gap: str) -> list[report.Claim]:
    """One claims row per speed of `SPEEDS`. `sweep`: `FastBertExperiment.speed_sweep` over 0 and `SPEEDS`;
    `limit`: our backbone's FLOPs limit; `majority`: the majority class's accuracy (0-1), below which the backbone
    learned nothing and no drop can be judged; `why_gap`: the cause of the absolute gap to the paper."""
    name, bert, by_speed = PAPER_TABLE2[task]
    s = sweep.set_index("speed")
    ours_backbone = 100 * s.accuracy[0.0]
    learned = ours_backbone > 100 * majority + 1
    rows = []
    for speed in SPEEDS:
        paper_acc, paper_x = by_speed[speed]
        acc, x = 100 * s.accuracy[speed], s.flops_speedup[speed]
        drop, paper_drop = ours_backbone - acc, bert - paper_acc
        share, paper_share = 100 * x / limit, 100 * paper_x / PAPER_FLOPS_LIMIT
        verdict = _worst(report.verdict(-drop, -paper_drop, TOLERANCE[0], PARTLY[0]),
                         report.verdict(share, paper_share, TOLERANCE[1], PARTLY[1])) if learned else "not reproduced"
        gap = bert - ours_backbone
        rows.append(report.Claim(
            f"fastbert.{task}.acc@{speed}", "FastBERT",
            f"{name}: accuracy at speed {speed} against the backbone's, and the share of the most FLOPs exiting can "
            "save (Table 2)",
            f"{paper_acc:.2f} (BERT {bert:.2f}; drop {paper_drop:.2f}); {paper_x:.2f}x = {paper_share:.0f}% of "
            f"{PAPER_FLOPS_LIMIT:.2f}x",
            f"{acc:.2f} (backbone {ours_backbone:.2f}; drop {drop:.2f}); {x:.2f}x = {share:.0f}% of {limit:.2f}x; "
            f"mean exit layer {s.mean_exit_layer[speed]:.2f} ({where}; the backbone is {gap:.1f} points below the "
            f"paper's BERT: {why_gap}"
            + ("" if learned else f"; it does not beat the majority class {100 * majority:.1f}, so no drop is judged")
            + ")",
            "accuracy %", verdict, evidence))
    return rows


def not_run_claims(task: str, why: str, evidence: str) -> list[report.Claim]:
    name, bert, by_speed = PAPER_TABLE2[task]
    return [report.Claim(f"fastbert.{task}.acc@{speed}", "FastBERT", f"{name}: accuracy at speed {speed} (Table 2)",
                         f"{by_speed[speed][0]:.2f} (BERT {bert:.2f}); {by_speed[speed][1]:.2f}x", f"not run: {why}",
                         "accuracy %", "not run", evidence) for speed in SPEEDS]


def left_out_claims(all_tasks: tuple[str, ...], tasks: list[str], evidence: str) -> list[report.Claim]:
    """'not run' rows for the datasets a run's task list leaves out (the smoke profile runs two), so that every claim
    keeps its row."""
    why = f"left out of this run's task list ({', '.join(tasks)}); the cpu profile runs all {len(all_tasks)}"
    return [c for t in all_tasks if t not in tasks for c in not_run_claims(t, why, evidence)]


def speed_rows(task: str, sweep: pd.DataFrame, clock: pd.DataFrame | None = None) -> pd.DataFrame:
    """The table a notebook shows per dataset: accuracy, exit layer and FLOPs speedup at each speed, with the
    wall-clock speedup measured beside the FLOPs ratio where it was timed."""
    rows = sweep.assign(task=task)[["task", "speed", "accuracy", "mean_exit_layer", "flops_speedup"]]
    if clock is not None:
        timed = clock[clock.model.str.startswith("speed ")].assign(
            speed=lambda d: d.model.str.removeprefix("speed ").astype(float))
        rows = rows.merge(timed[["speed", "batch", "wallclock_speedup"]], on="speed", how="left")
        rows.loc[rows.speed == 0.0, ["batch", "wallclock_speedup"]] = [clock.batch.iloc[0], 1.0]
    return rows.assign(accuracy=lambda d: 100 * d.accuracy)
