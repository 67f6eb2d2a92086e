"""FastBERT's claims, from the tables its notebooks save: AG News's speed-accuracy trade-off (31), the exit
distribution and LUHA (32), the ablation (33) and Table 2 one dataset at a time (35, 36).

The paper's numbers are relative to its own backbone (BERT-base, 12 layers); ours to a smaller one. So each row
judges what transfers: the accuracy FastBERT gives up against its own backbone at a speed, and the share of the most
FLOPs exiting can save (every sample after the first layer: about 11.7x for 12 layers, about 5.5x for 6) that the
speed reaches. The absolute gap to the paper's accuracy is stated beside it, with its cause, the backbone.
"""
from __future__ import annotations

import pandas as pd

from pairlib.study import papers, verdicts
from pairlib.study.claims import FASTBERT_ENGLISH
from pairlib.study.claims import FASTBERT_SPEEDS as SPEEDS
from pairlib.study.report import Claim

# the task a Table 2 row runs on where its name differs from the row's key: Yelp.P's stand-in, derived from Yelp.F
TASK_OF_ROW = {"yelp_p": "yelp_polarity"}
ENGLISH_TASKS = tuple(TASK_OF_ROW.get(k, k) for k in FASTBERT_ENGLISH)  # notebook 36's


def row_key(task: str) -> str:
    """Table 2's row (and the claims' key) a task stands for."""
    return next((k for k, t in TASK_OF_ROW.items() if t == task), task)
PAPER_LIMIT = papers.FASTBERT_FLOPS_LIMIT
SELF_DISTILLED, ON_LABELS = "FastBERT (self-distilled)", "without self-distillation"
FIXED = "without adaptive inference"


def learned(backbone_accuracy: float, majority: float) -> bool:
    """Accuracies in %: a drop means nothing if the backbone never learned the task (1 point over the majority)."""
    return verdicts.beats_majority(backbone_accuracy, majority, 1.0)


def _table2_verdict(drop: float, paper_drop: float, share: float, paper_share: float, learned_task: bool) -> str:
    """Both the accuracy given up and the share of the FLOPs limit reached must hold."""
    if not learned_task:
        return "not reproduced"
    return verdicts.worst(verdicts.accuracy_drop(drop, paper_drop), verdicts.share_of_limit(share, paper_share))


# ---- AG News (31) ----
def agnews_claims(sweep: pd.DataFrame, clock: pd.DataFrame, limit: float, layers: int, majority: float,
                  backbone: str, where: str, evidence: str) -> list[Claim]:
    """Accuracy and FLOPs speedup at each of `SPEEDS` against Table 2's Ag.news row, and the wall-clock speedup at
    speed 0.5 against the FLOPs speedup it should realise. `sweep`: `FastBertExperiment.speed_sweep` (accuracy
    0-1); `clock`: `FastBertExperiment.wallclock` at one or more batches; `limit`: our backbone's FLOPs limit;
    `majority`: the majority class's accuracy in %."""
    row = papers.FASTBERT_TABLE2["ag_news"]
    s = sweep.set_index("speed")
    backbone_acc = 100 * s.accuracy[0.0]
    learned_task = learned(backbone_acc, majority)
    claims = []
    for sp in SPEEDS:
        pa, pf = row.by_speed[sp]
        drop = backbone_acc - 100 * s.accuracy[sp]
        claims.append(Claim(f"fastbert.agnews.acc@{sp}", "FastBERT", f"accuracy at speed {sp} (Table 2)",
                            f"{pa} (BERT {row.bert}; drop {row.bert - pa:.2f})",
                            f"{100 * s.accuracy[sp]:.2f} (backbone {backbone_acc:.2f}; drop {drop:.2f}; {where})",
                            "accuracy %", verdicts.accuracy_drop(drop, row.bert - pa, learned_task), evidence))
        # a 6-layer backbone can save at most about 6x, the paper's 12 layers about 12x: compare the share of that
        ours_share, paper_share = s.flops_speedup[sp] / limit, pf / PAPER_LIMIT
        claims.append(Claim(f"fastbert.agnews.flops_speedup@{sp}", "FastBERT", f"FLOPs speedup at speed {sp}, "
                            "and its share of the most exiting can save (every sample after the first layer)",
                            f"{pf}x = {100 * paper_share:.0f}% of {PAPER_LIMIT:.2f}x ({papers.FASTBERT_LAYERS} layers)",
                            f"{s.flops_speedup[sp]:.2f}x = {100 * ours_share:.0f}% of {limit:.2f}x ({backbone}, "
                            f"{layers} layers; mean exit layer {s.mean_exit_layer[sp]:.2f})", "x",
                            verdicts.share_of_limit(100 * ours_share, 100 * paper_share), evidence))
    big = clock[(clock.batch == clock.batch.max()) & (clock.model == "speed 0.5")].iloc[0]
    claims.append(Claim("fastbert.agnews.wallclock_speedup@0.5", "FastBERT",
                        "wall-clock speedup at speed 0.5, batched adaptive inference (our target: >= 70% of the "
                        "FLOPs speedup)", "not reported (FLOPs only)",
                        f"{big.wallclock_speedup:.2f}x at batch {big.batch} = {100 * big.realised:.0f}% of the "
                        f"FLOPs speedup {big.flops_speedup:.2f}x ({clock.hardware.iloc[0]})", "x",
                        verdicts.realised_speedup(big.wallclock_speedup, big.realised), evidence))
    return claims


# ---- exits and LUHA (32) ----
def luha_agreement(luha: pd.DataFrame, min_samples: int = 20) -> tuple[int, int]:
    """Over every layer, the pairs of adjacent uncertainty buckets (each with at least `min_samples` samples) and
    how many of them have accuracy falling (or flat) as uncertainty rises: (falls, pairs)."""
    falls, pairs = 0, 0
    for _, g in luha[luha.samples >= min_samples].groupby("layer"):
        acc = g.sort_values("bucket_mid").accuracy.tolist()
        pairs += max(len(acc) - 1, 0)
        falls += sum(b <= a for a, b in zip(acc, acc[1:]))
    return falls, pairs


def exit_claims(summary: pd.DataFrame, luha: pd.DataFrame, layers: int, backbone: str, evidence: str) -> list[Claim]:
    """Figure 5's mean exit layer at speed 0.8, as a fraction of the depth, and LUHA. `summary`: per speed the
    mean exit layer and the share leaving after the first layer; `luha`: per layer and uncertainty bucket the
    samples and accuracy."""
    falls, pairs = luha_agreement(luha)
    share = falls / pairs if pairs else float("nan")
    at = summary.set_index("speed") if "speed" in summary.columns else summary
    m = at.loc[0.8, "mean"] if 0.8 in at.index else float("nan")
    first = at.loc[0.8, "share_after_first_layer"] if 0.8 in at.index else float("nan")
    paper_mean, paper_layers = papers.FASTBERT_EXIT_MEAN_AT_08, papers.FASTBERT_LAYERS
    return [
        Claim("fastbert.exit_mean@0.8", "FastBERT", "mean exit layer (0-based) at speed 0.8 (Figure 5)",
              f"{paper_mean} of {paper_layers} layers (Book review)", f"{m:.2f} of {layers} layers (AG News, "
              f"{backbone}; {100 * first:.0f}% after the first layer vs the paper's "
              f"{100 * papers.FASTBERT_EXIT_AFTER_FIRST_AT_08:.0f}%)", "layers",
              verdicts.exit_depth(m / layers, paper_mean / paper_layers), evidence),
        Claim("fastbert.luha", "FastBERT", "lower uncertainty, higher accuracy (LUHA)",
              "holds (Figure 4 of the paper)", f"accuracy falls as uncertainty rises in {falls} of {pairs} adjacent "
              f"bucket pairs over {layers} layers", "share", verdicts.agreeing_share(share), evidence),
    ]


# ---- the ablation (33) ----
def ablation_claims(ablation: pd.DataFrame, speeds: list[float], backbone: str, evidence: str) -> list[Claim]:
    """Table 3's two ablations from notebook 33's table (rows: variant, setting, accuracy 0-1, flops_speedup):
    self-distillation against classifiers trained on labels at each of `speeds`, and adaptive exits against each
    fixed exit, compared with the adaptive setting that is at least as fast (or the fastest)."""
    a = ablation.set_index(["variant", "setting"])
    gains = [100 * (a.accuracy[(SELF_DISTILLED, f"speed {s:g}")] - a.accuracy[(ON_LABELS, f"speed {s:g}")])
             for s in speeds]
    fixed = ablation[ablation.variant == FIXED]
    fast = ablation[ablation.variant == SELF_DISTILLED]
    wins = []
    for _, f in fixed.iterrows():
        faster = fast[fast.flops_speedup >= f.flops_speedup]
        pick = faster.iloc[0] if len(faster) else fast.sort_values("flops_speedup").iloc[-1]
        wins.append(100 * (pick.accuracy - f.accuracy))
    sd = papers.FASTBERT_SELF_DISTILLATION_GAIN
    adaptive = ", ".join(f"{g:+.2f} ({x:.2f}x vs {y:.2f}x)" for g, x, y in papers.FASTBERT_ADAPTIVE_GAIN)
    return [
        Claim("fastbert.ablation.self_distillation", "FastBERT", "accuracy gained by self-distillation over "
              "training every classifier on labels, at speeds " + ", ".join(map(str, speeds)),
              f"{', '.join(f'{g:+.2f}' for g in sd.values())} (Book review, speeds {', '.join(map(str, sd))})",
              ", ".join(f"{g:+.2f}" for g in gains) + f" ({backbone}, AG News)", "accuracy points",
              verdicts.consistent_sign(gains), evidence),
        Claim("fastbert.ablation.adaptive", "FastBERT", "accuracy of adaptive exits over fixed exits at a "
              "comparable FLOPs speedup", f"{adaptive} on Book review",
              ", ".join(f"{w:+.2f}" for w in wins) + f" ({backbone}, AG News)", "accuracy points",
              verdicts.consistent_sign(wins), evidence),
    ]


# ---- Table 2, one dataset at a time (35, 36) ----
def table2_claims(task: str, sweep: pd.DataFrame, limit: float, where: str, evidence: str,
                  majority: float, why_gap: str) -> list[Claim]:
    """One claims row per speed of `SPEEDS`. `sweep`: `FastBertExperiment.speed_sweep` over 0 and `SPEEDS`;
    `limit`: our backbone's FLOPs limit; `majority`: the majority class's accuracy (0-1), below which the backbone
    learned nothing and no drop can be judged; `why_gap`: the cause of the absolute gap to the paper."""
    key, row = row_key(task), papers.FASTBERT_TABLE2[row_key(task)]
    s = sweep.set_index("speed")
    ours_backbone = 100 * s.accuracy[0.0]
    learned_task = learned(ours_backbone, 100 * majority)
    rows = []
    for speed in SPEEDS:
        paper_acc, paper_x = row.by_speed[speed]
        acc, x = 100 * s.accuracy[speed], s.flops_speedup[speed]
        drop, paper_drop = ours_backbone - acc, row.bert - paper_acc
        share, paper_share = 100 * x / limit, 100 * paper_x / PAPER_LIMIT
        gap = row.bert - ours_backbone
        rows.append(Claim(
            f"fastbert.{key}.acc@{speed}", "FastBERT",
            f"{row.name}: accuracy at speed {speed} against the backbone's, and the share of the most FLOPs exiting "
            "can save (Table 2)",
            f"{paper_acc:.2f} (BERT {row.bert:.2f}; drop {paper_drop:.2f}); {paper_x:.2f}x = {paper_share:.0f}% of "
            f"{PAPER_LIMIT:.2f}x",
            f"{acc:.2f} (backbone {ours_backbone:.2f}; drop {drop:.2f}); {x:.2f}x = {share:.0f}% of {limit:.2f}x; "
            f"mean exit layer {s.mean_exit_layer[speed]:.2f} ({where}; the backbone is {gap:.1f} points below the "
            f"paper's BERT: {why_gap}"
            + ("" if learned_task else
               f"; it does not beat the majority class {100 * majority:.1f}, so no drop is judged")
            + ")",
            "accuracy %", _table2_verdict(drop, paper_drop, share, paper_share, learned_task), evidence))
    return rows


def not_run_claims(task: str, why: str, evidence: str) -> list[Claim]:
    key = row_key(task)
    row = papers.FASTBERT_TABLE2[key]
    return [Claim(f"fastbert.{key}.acc@{speed}", "FastBERT", f"{row.name}: accuracy at speed {speed} (Table 2)",
                  f"{row.by_speed[speed][0]:.2f} (BERT {row.bert:.2f}); {row.by_speed[speed][1]:.2f}x",
                  f"not run: {why}", "accuracy %", "not run", evidence) for speed in SPEEDS]


def left_out_claims(all_tasks: tuple[str, ...], tasks: list[str], evidence: str) -> list[Claim]:
    """'not run' rows for the datasets a run's task list leaves out (the smoke profile runs two), so that every claim
    keeps its row."""
    why = f"left out of this run's task list ({', '.join(tasks)}); the cpu profile runs all {len(all_tasks)}"
    return [c for t in all_tasks if t not in tasks for c in not_run_claims(t, why, evidence)]


def paper_points(task: str) -> tuple[str, list[float], list[float]]:
    """Table 2's row for a figure: the dataset's name, and per speed of `SPEEDS` the share (%) of the FLOPs limit
    and the accuracy lost against BERT."""
    row = papers.FASTBERT_TABLE2[row_key(task)]
    return (row.name, [100 * row.by_speed[s][1] / PAPER_LIMIT for s in SPEEDS],
            [row.bert - row.by_speed[s][0] for s in SPEEDS])


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
