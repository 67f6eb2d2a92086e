"""What Q4_0 weights cost after fine-tuning (notebook 37): the weights' own error, and per seed the accuracy from
fp32 and from Q4_0 weights beside the seed-to-seed spread."""
from __future__ import annotations

import pandas as pd
import torch

from pairlib.core.q4 import QUANTIZED


def weight_error(fp32: torch.nn.Module, q4: torch.nn.Module) -> pd.DataFrame:
    """||w_q4 - w|| / ||w|| for each tensor Q4_0 stores."""
    quantized = dict(q4.named_parameters())
    with torch.no_grad():
        return pd.DataFrame([{"tensor": name, "relative_error": float((quantized[name] - w).norm() / w.norm())}
                             for name, w in fp32.named_parameters() if name.endswith(QUANTIZED)])


def summary(results: pd.DataFrame, predictions: dict[tuple[int, str], torch.Tensor]) -> pd.DataFrame:
    """Per seed: both accuracies (%), Q4_0 minus fp32, and the share of evaluation examples on which the two
    predict the same label; then the mean difference beside the standard deviation of fp32's accuracy over seeds
    (the noise a difference is read against)."""
    acc = results.pivot(index="seed", columns="weights", values="accuracy")
    rows = [{"seed": str(seed), "fp32": acc.loc[seed, "fp32"], "Q4_0": acc.loc[seed, "Q4_0"],
             "difference": acc.loc[seed, "Q4_0"] - acc.loc[seed, "fp32"],
             "same_prediction_%": 100 * float((predictions[(seed, "fp32")] == predictions[(seed, "Q4_0")])
                                              .float().mean())} for seed in acc.index]
    table = pd.DataFrame(rows)
    spread = float(acc["fp32"].std()) if len(acc) > 1 else float("nan")
    table.loc[len(table)] = {"seed": "mean", "fp32": acc["fp32"].mean(), "Q4_0": acc["Q4_0"].mean(),
                             "difference": table.difference.mean(),
                             "same_prediction_%": table["same_prediction_%"].mean()}
    table["fp32_seed_std"] = ["" if s != "mean" else round(spread, 3) for s in table.seed]
    return table
