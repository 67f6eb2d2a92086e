"""DiPair's claims, from the tables its notebooks save: two-stage training (41), the speed over the teacher and the
smallest cross-encoder (42), and the three accuracy claims (against its teacher, against the smallest cross-encoder,
against DE-Cos), judged at the largest distillation pool notebook 45 trained. A gap measured at one small pool cannot
say whether it is the method's or the budget's, so each of those rows also gives the gap at every pool size and how
much one doubling of the pool moved it."""
from __future__ import annotations

import pandas as pd

from pairlib.study import papers, trend, verdicts
from pairlib.study.report import Claim
from pairlib.study.verdicts import learned_teacher

STUDENT = "DiPair-TSF"
DE_COS = "DE-Cos"
EVIDENCE = "45_dipair_pool_curve"


def trend_text(gaps: pd.Series) -> str:
    """'at 4,800 / 9,600 pool pairs: -0.244 / -0.210, +0.034 per doubling'."""
    return trend.trend_text(gaps, "pool pairs")


def accuracy_claims(curve: pd.DataFrame, teacher_auc: float, small_cross: str, where: str) -> list[Claim]:
    """`curve` holds one row per (pool_pairs, model) with its auc_roc; `small_cross` names the smallest
    cross-encoder's rows. DiPair against the small cross-encoder is judged only where both learned the teacher: a
    difference between two students that did not says nothing about their methods."""
    for model in (STUDENT, DE_COS, small_cross):
        if model not in set(curve.model):
            raise ValueError(f"the pool curve has no rows for {model!r}; it has {sorted(set(curve.model))}")
    auc = curve.pivot(index="pool_pairs", columns="model", values="auc_roc").sort_index()
    largest = auc.iloc[-1]
    pool = f"{auc.index[-1]:,} pool pairs"
    dp, tiny, dec = largest[STUDENT], largest[small_cross], largest[DE_COS]
    vs_teacher = auc[STUDENT] - teacher_auc
    vs_small = auc[STUDENT] - auc[small_cross]
    de_cos = auc[DE_COS] - auc[STUDENT]
    both_learned = all(learned_teacher(a, teacher_auc) for a in (dp, tiny))
    small_ours = (f"{vs_small.iloc[-1]:+.3f} ({dp:.3f} vs {tiny:.3f} of the {small_cross} at {pool}; "
                  f"{trend_text(vs_small)}; {where})")
    if not both_learned:
        small_ours += (f"; not judgeable: a student that did not learn the teacher (AUC-ROC {teacher_auc:.3f}) is "
                       "compared")
    return [
        Claim("dipair.q2p.auc_delta_vs_teacher", "DiPair", "AUC-ROC of DiPair-TSF minus the teacher's",
                     f"minimal (DiPair {papers.DIPAIR_AUC}; the teacher's AUC is not in our sources)",
                     f"{vs_teacher.iloc[-1]:+.3f} ({dp:.3f} vs {teacher_auc:.3f} at {pool}; {trend_text(vs_teacher)}; "
                     f"{where})", "AUC-ROC", verdicts.auc_gap(vs_teacher.iloc[-1], 0.0), EVIDENCE),
        Claim("dipair.vs_small_cross.auc_delta", "DiPair", "AUC-ROC of DiPair-TSF minus the smallest "
                     "cross-encoder's (BERT-Tiny in the paper)",
                     f"{papers.DIPAIR_VS_TINY_AUC:+.3f} ({papers.DIPAIR_AUC} vs {papers.DIPAIR_TINY_AUC})", small_ours,
                     "AUC-ROC", verdicts.auc_gap(vs_small.iloc[-1], papers.DIPAIR_VS_TINY_AUC) if both_learned
                     else "not reproduced",
                     EVIDENCE),
        Claim("dipair.de_cos.auc_delta", "DiPair", "AUC-ROC of DE-Cos minus DiPair-TSF's (the paper: DE-Cos is "
                     "the fastest and the worst)", "negative (value not in our sources)",
                     f"{de_cos.iloc[-1]:+.3f} ({dec:.3f} vs {dp:.3f} at {pool}; {trend_text(de_cos)}; {where})",
                     "AUC-ROC", verdicts.is_lower(dec, dp), EVIDENCE),
    ]


def two_stage_claim(results: pd.DataFrame, teacher_auc: float, where: str, evidence: str) -> Claim:
    """`dipair.two_stage.gain` from notebook 41's table (rows: model, schedule, auc_roc): DiPair-TSF trained in two
    stages against end to end. Between students that did not learn the teacher a gain shows its direction, not its
    size."""
    r = results.set_index(["model", "schedule"])
    two_stage, end_to_end = r.auc_roc[(STUDENT, "two-stage")], r.auc_roc[(STUDENT, "end-to-end")]
    gain = two_stage - end_to_end
    learned = learned_teacher(max(two_stage, end_to_end), teacher_auc)
    ours = f"{gain:+.3f} ({two_stage:.3f} vs {end_to_end:.3f}; {where})"
    if not learned:
        ours += (f"; neither student learned the teacher (AUC-ROC {teacher_auc:.3f}), so only the direction "
                 "is judgeable at this budget")
    return Claim("dipair.two_stage.gain", "DiPair", "AUC-ROC gained by two-stage over end-to-end training "
                 "(DiPair-TSF; the paper trains in two stages, so a gain is expected)",
                 "unknown (not in our sources)", ours, "AUC-ROC", verdicts.direction(gain, learned), evidence)


def speed_claims(table: pd.DataFrame, small_cross: str, where: str, evidence: str) -> list[Claim]:
    """DiPair-TSF's scoring speed over the teacher and over the smallest cross-encoder (`small_cross` names its
    row), at the largest batch of notebook 42's table (`speedup_batch<n>` columns)."""
    big = max(int(c.removeprefix("speedup_batch")) for c in table.columns if c.startswith("speedup_batch"))
    t = table.set_index("model")
    tiny, dp = t.loc[small_cross], t.loc[STUDENT]
    sp = f"speedup_batch{big}"
    paper, ratio = papers.DIPAIR_SPEEDUP, papers.DIPAIR_VS_TINY_SPEEDUP
    return [
        Claim("dipair.q2p.speedup_vs_teacher", "DiPair", "scoring speed from cached encoder outputs over the "
              "teacher cross-encoder", f"{paper}x", f"{dp[sp]:.0f}x at batch {big}, {dp.speedup_batch1:.0f}x at "
              f"batch 1 ({where})", "x", verdicts.share_of_paper(dp[sp], paper), evidence),
        Claim("dipair.vs_small_cross.speedup_ratio", "DiPair", "DiPair-TSF's speed over the smallest "
              "cross-encoder's", f"{ratio}x ({paper}x / {papers.DIPAIR_TINY_SPEEDUP}x)",
              f"{dp[sp] / tiny[sp]:.1f}x at batch {big} ({where})", "x",
              verdicts.share_of_paper(dp[sp] / tiny[sp], ratio), evidence),
    ]
