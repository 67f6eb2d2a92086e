"""DeFormer on a classification task, as notebooks 21 (BoolQ) and 26 (MNLI, QQP) report it: the accuracy of the
original model, its weights split without retraining and DeFormer, and the two claims the paper makes per task (the
accuracy lost, the speedup from cached segments), judged the same way on every task."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from pairlib.core import data
from pairlib.deformer.bench import CACHED, speedup_verdict
from pairlib.deformer.experiment import Experiment, LossWeights
from pairlib.deformer.modeling import DeFormerPreTrainedModel
from pairlib.study import report


@dataclass(frozen=True)
class PaperRow:
    """One task's row of the paper's table: accuracy of the original model and of DeFormer (points), speedup."""
    original: float
    deformer: float
    speedup: float

    @property
    def drop(self) -> float:
        return self.original - self.deformer


def accuracy_table(exp: Experiment, original: DeFormerPreTrainedModel, deformer: DeFormerPreTrainedModel
                   ) -> tuple[pd.DataFrame, float]:
    """The three models' metrics with the drop against the original, and the evaluation set's majority-class share:
    a drop means something only where the original model beats that share."""
    k = deformer.config.split_layer
    acc = pd.DataFrame([
        {"model": "original (k=0)", **exp.evaluate(original)},
        {"model": f"split at k={k}, not retrained", **exp.evaluate(exp.split(k))},
        {"model": f"DeFormer k={k}", **exp.evaluate(deformer)},
    ])
    acc["accuracy_drop"] = acc.accuracy.iloc[0] - acc.accuracy
    majority = float(pd.Series(exp.eval_set["label"]).value_counts(normalize=True).max())
    return acc, majority


def accuracy_notes(exp: Experiment, backbone: str, k: int, weights: LossWeights, majority: float) -> list[str]:
    return [f"{backbone}, k={k}, loss weights {asdict(weights)}; {len(exp.train_set)} train and "
            f"{len(exp.eval_set)} {exp.recipe.eval_split} examples; majority-class accuracy {majority:.3f}",
            *data.get_task(exp.recipe.task).deviations]


def task_claims(exp: Experiment, backbone: str, acc: pd.DataFrame, majority: float,
                tables: dict[str, pd.DataFrame], layers: int, k: int, paper: PaperRow, notebook: str,
                cached: str = "passages") -> list[report.Claim]:
    """`deformer.<task>.acc_drop` and `deformer.<task>.speedup`. The speedup is judged at the largest batch timed,
    against the paper's and against our own FLOPs ratio (see `speedup_verdict`)."""
    task = exp.recipe.task
    latency = tables["latency"]
    big = int(latency.batch.max())
    speed = latency.set_index(["batch", "model"]).speedup
    flops_ratio = tables["cost"].set_index("model").flops_ratio[CACHED]
    drop = 100 * acc.accuracy_drop.iloc[-1]
    where = (f"{backbone}, k={k} of {layers}, {len(exp.train_set)} train / {len(exp.eval_set)} "
             f"{exp.recipe.eval_split} examples")
    learned = acc.accuracy.iloc[0] > majority + 0.01
    caveat = "" if learned else "the original model did not beat the majority class here, so no drop can be judged; "
    return [
        report.Claim(f"deformer.{task}.acc_drop", "DeFormer", "accuracy lost by DeFormer against the original model",
                     f"{paper.drop:.1f} ({paper.original} -> {paper.deformer})",
                     f"{caveat}{drop:.1f} ({100 * acc.accuracy.iloc[0]:.1f} -> {100 * acc.accuracy.iloc[-1]:.1f}; "
                     f"majority class {100 * majority:.1f}; {where})", "accuracy points",
                     report.verdict(-drop, -paper.drop, 1.0, 3.0) if learned else "not reproduced", notebook),
        report.Claim(f"deformer.{task}.speedup", "DeFormer", f"latency of the original / DeFormer from cached {cached}",
                     f"{paper.speedup}x (k=9 of 12)", f"{speed[(big, CACHED)]:.2f}x at batch {big}, "
                     f"{speed[(1, CACHED)]:.2f}x at batch 1; FLOPs ratio {flops_ratio:.2f}x ({where}; "
                     f"{latency.hardware.iloc[0]})", "x",
                     speedup_verdict(speed[(big, CACHED)], paper.speedup, flops_ratio), notebook),
    ]
