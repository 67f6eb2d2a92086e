"""Controlled comparisons of two ways to fine-tune the same model (notebooks 37 and 38): per seed, both accuracies,
their difference and how often the two predict the same label, read against the seed-to-seed spread of the
reference, the noise any difference has to clear."""
from __future__ import annotations

import pandas as pd
import torch


def paired_summary(results: pd.DataFrame, predictions: dict[tuple[int, str], torch.Tensor], reference: str,
                   other: str) -> pd.DataFrame:
    """`results` holds one row per (seed, variant) with `accuracy` (%); `predictions` each run's predicted labels.
    One row per seed, then a `mean` row with the standard deviation of the reference's accuracy over seeds."""
    acc = results.pivot(index="seed", columns="variant", values="accuracy")
    missing = {reference, other} - set(acc.columns)
    if missing:
        raise ValueError(f"no results for variant(s) {sorted(missing)}; results hold {sorted(acc.columns)}")
    rows = [{"seed": str(seed), reference: acc.loc[seed, reference], other: acc.loc[seed, other],
             "difference": acc.loc[seed, other] - acc.loc[seed, reference],
             "same_prediction_%": 100 * float((predictions[(seed, reference)] == predictions[(seed, other)])
                                              .float().mean())} for seed in acc.index]
    table = pd.DataFrame(rows)
    spread = float(acc[reference].std()) if len(acc) > 1 else float("nan")
    table.loc[len(table)] = {"seed": "mean", reference: acc[reference].mean(), other: acc[other].mean(),
                             "difference": table.difference.mean(),
                             "same_prediction_%": table["same_prediction_%"].mean()}
    table[f"{reference}_seed_std"] = ["" if s != "mean" else round(spread, 3) for s in table.seed]
    return table


def within_seed_spread(table: pd.DataFrame, reference: str) -> bool:
    """Whether the mean difference of `paired_summary`'s table is no larger than the reference's seed-to-seed
    standard deviation: the rule by which a cheaper way to train is taken (38: training without attention dropout)."""
    mean = table[table.seed == "mean"].iloc[0]
    return abs(float(mean["difference"])) <= float(mean[f"{reference}_seed_std"])
