"""DeFormer's SQuAD accuracy claims (Table 1's F1 drop and Table 5's three loss ablations), judged at the largest
training budget notebook 25 trained. Our first verdicts came from 2,000 questions, about 2% of the paper's training;
a drop measured at one small budget cannot say whether it is the method's or the budget's, so each row also gives
the drop at every budget measured and how much one doubling of the training questions moved it."""
from __future__ import annotations

import pandas as pd

from pairlib.study import report, trend

EVIDENCE = "25_deformer_budget"
ORIGINAL = "original"
KD_LRS, KD_ONLY, TASK_ONLY = "DeFormer (KD + LRS)", "DeFormer (KD only)", "DeFormer (task loss only)"
PAPER_ORIGINAL_F1 = 88.5  # Tables 1 and 5, BERT-base
PAPER_F1 = {KD_LRS: 87.1, KD_ONLY: 86.2, TASK_ONLY: 85.8}
PAPER_TRAIN_QUESTIONS = 87_599  # SQuAD v1.1's whole train set, which the paper trains on (3 epochs)
ABLATION_IDS = {TASK_ONLY: "deformer.ablation.no_aux", KD_ONLY: "deformer.ablation.kd_only",
                KD_LRS: "deformer.ablation.kd_lrs"}


def paper_drop(model: str) -> float:
    return round(PAPER_ORIGINAL_F1 - PAPER_F1[model], 1)


def budget_claims(budget: pd.DataFrame, where: str) -> list[report.Claim]:
    """`budget` holds one row per (train_questions, model) with k, the loss weights w_kd and w_lrs, f1 and f1_drop
    (against the original model trained on the same questions). Every claim is judged at the largest budget, which
    must hold all three DeFormers."""
    f1 = budget.pivot(index="train_questions", columns="model", values="f1").sort_index()
    drop = budget.pivot(index="train_questions", columns="model", values="f1_drop").sort_index()
    n = f1.index[-1]
    absent = [m for m in (ORIGINAL, *PAPER_F1) if m not in f1.columns or f1.loc[n, m] != f1.loc[n, m]]
    if absent:
        raise ValueError(f"the budget table has no rows for {absent} at its largest budget ({n:,} train questions); "
                         "every claim is judged there")
    at = f"{n:,} train questions"
    gain = drop.loc[n, TASK_ONLY] - drop.loc[n, KD_LRS]
    paper_gain = paper_drop(TASK_ONLY) - paper_drop(KD_LRS)

    def lost(model: str) -> str:
        return f"F1 lost {trend.trend_text(drop[model].dropna(), 'train questions', '.1f')}"

    def judged(model: str) -> str:
        return report.verdict(-drop.loc[n, model], -paper_drop(model), tolerance=1.0, partly_tolerance=3.0)

    # the row judges the paper's split share; fewer split layers, where measured, show how much of the drop it causes
    at_n = budget[budget.train_questions == n]
    main_k = at_n.loc[at_n.model == KD_LRS, "k"].iloc[0]
    fewer = at_n[at_n.k.between(1, main_k - 1) & (at_n.w_kd == 0) & (at_n.w_lrs == 0)].sort_values("k")
    at_fewer = (f"; with fewer split layers (task loss only) at {at}: "
                f"{', '.join(f'k={r.k} {r.f1_drop:.1f}' for r in fewer.itertuples())}") if len(fewer) else ""
    claims = [report.Claim(
        "deformer.squad.f1_drop", "DeFormer", "F1 lost by DeFormer (KD+LRS) against the original model",
        f"{paper_drop(KD_LRS)} ({PAPER_ORIGINAL_F1} -> {PAPER_F1[KD_LRS]})",
        f"{drop.loc[n, KD_LRS]:.1f} ({f1.loc[n, ORIGINAL]:.1f} -> {f1.loc[n, KD_LRS]:.1f} at {at}; {lost(KD_LRS)}"
        f"{at_fewer}; {where})", "F1 points", judged(KD_LRS), EVIDENCE)]
    for model, claim_id in ABLATION_IDS.items():
        losses = model.removeprefix("DeFormer (").removesuffix(")")
        claims.append(report.Claim(
            claim_id, "DeFormer", f"F1 drop of DeFormer trained with {losses} (Table 5)",
            f"{paper_drop(model)} (F1 {PAPER_F1[model]})",
            f"{drop.loc[n, model]:.1f} (F1 {f1.loc[n, model]:.1f} at {at}; {lost(model)}; the auxiliary losses "
            f"recover {gain:.1f} points vs the paper's {paper_gain:.1f}; {where})", "F1 points", judged(model),
            EVIDENCE))
    return claims
