"""How fast pairlib's one training loop trains, against the forward pass and against Hugging Face's Trainer
(notebook 93).

Each workload is a method's real training step as its experiment builds it (model, loss, real inputs at the
profile's lengths and batch size). In this one process, on this machine, each is measured three ways:
- forward: the trained model's forward pass on one batch in inference mode, median of repeats;
- pairlib: `core.train.train` on the same rows, timed from one call of the loss to the next, so that each interval is
  one whole step (the batch loaded, forward, backward, clipping, AdamW, the schedule), median after warm-up steps;
- Trainer: `transformers.Trainer` on a fresh copy of the same model, with the same rows, batch size, loss (through
  `compute_loss`), learning rate, warm-up, weight decay and clipping, and its defaults for a CPU machine otherwise;
  timed from one step's end to the next.
Training efficiency is 3 x forward / pairlib's step (1.0: a step costs the usual three forward passes; a step with a
frozen teacher's forward inside it, as DeFormer's KD + LRS, is dearer by that forward, unless the teacher's outputs
are cached). Peak memory is the most bytes of tensors alive at once during one forward and backward pass
(`measure.peak_memory_bytes`), the same work for both loops. `step_phases` says where a step's time goes (forward,
backward, clipping, AdamW, and what dropout costs), so that an efficiency below 1 has its cause beside it.
"""
from __future__ import annotations

import copy
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
import torch

from pairlib.core.measure import cpu_features, hardware_label, peak_memory_bytes
from pairlib.core.teacher_cache import TeacherOutputs
from pairlib.core.train import LossFn, TensorDictDataset, TrainConfig, adamw, freeze, train


@dataclass
class Workload:
    """One method's training step: a model builder (called for each loop, so each trains a fresh copy), its loss,
    the rows it trains on, and the forward pass the efficiency is measured against."""

    name: str
    build: Callable[[], torch.nn.Module]
    loss_fn: LossFn
    rows: dict[str, torch.Tensor]
    forward: Callable[[torch.nn.Module, dict], object]
    teacher: torch.nn.Module | TeacherOutputs | None = None
    frozen: tuple[str, ...] = ()
    lr: float = 5e-5
    length: str = ""  # the input shape, for the table
    extra: dict = field(default_factory=dict)

    def dataset(self) -> TensorDictDataset:
        """The rows, each with its index where the teacher is outputs looked up by row."""
        return TensorDictDataset(self.rows, index=isinstance(self.teacher, TeacherOutputs))

    def batch(self, size: int) -> dict[str, torch.Tensor]:
        data = self.dataset()
        return {k: v[:size] for k, v in data.tensors.items()}


def _median_step(stamps: list[float], warmup: int) -> float:
    steps = [b - a for a, b in zip(stamps, stamps[1:])][warmup:]
    if not steps:
        raise ValueError(f"need more than {warmup + 1} steps to time one after warm-up")
    return statistics.median(steps)


def time_pairlib(w: Workload, batch_size: int, steps: int, warmup: int, precision: str = "fp32") -> float:
    """Median seconds per step of `core.train.train`."""
    stamps: list[float] = []

    def timed_loss(model, batch, teacher):
        stamps.append(time.perf_counter())
        return w.loss_fn(model, batch, teacher)

    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(output_dir=out, epochs=1, lr=w.lr, batch_size=batch_size, max_steps=steps + warmup + 1,
                             frozen=w.frozen, resume=False, progress=False, precision=precision)
        train(w.build(), w.dataset(), None, timed_loss, config, teacher=w.teacher)
    return _median_step(stamps, warmup)


def time_trainer(w: Workload, batch_size: int, steps: int, warmup: int, precision: str = "fp32") -> float:
    """Median seconds per step of `transformers.Trainer` doing the same work."""
    from transformers import Trainer, TrainerCallback, TrainingArguments

    stamps: list[float] = []

    class Stamp(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    class SameLoss(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = w.loss_fn(model, inputs, w.teacher)
            return out[0] if isinstance(out, tuple) else out  # (loss, logged terms) from some losses

    model = w.build()
    freeze(model, w.frozen)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=batch_size,
                                 max_steps=steps + warmup + 1, learning_rate=w.lr, warmup_steps=0.1,
                                 weight_decay=0.01, max_grad_norm=1.0, use_cpu=not torch.cuda.is_available(),
                                 report_to="none", save_strategy="no", logging_strategy="no", disable_tqdm=True,
                                 remove_unused_columns=False, seed=42, bf16=precision == "bf16")
        SameLoss(model=model, args=args, train_dataset=w.dataset(), callbacks=[Stamp()]).train()
    return _median_step(stamps, warmup)


def _autocast(precision: str):
    return torch.autocast("cuda" if torch.cuda.is_available() else "cpu", torch.bfloat16, enabled=precision == "bf16")


def time_forward(w: Workload, batch_size: int, repeats: int, precision: str = "fp32") -> float:
    model = w.build().eval()
    batch = w.batch(batch_size)
    with torch.inference_mode(), _autocast(precision):
        w.forward(model, batch)  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            w.forward(model, batch)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _backward(w: Workload, model: torch.nn.Module, batch: dict, precision: str) -> None:
    with _autocast(precision):
        out = w.loss_fn(model, batch, w.teacher)
    (out[0] if isinstance(out, tuple) else out).backward()


def step_memory_mb(w: Workload, batch_size: int, precision: str = "fp32") -> float:
    model = w.build().train()
    freeze(model, w.frozen)
    batch = w.batch(batch_size)
    return peak_memory_bytes(lambda: _backward(w, model, batch, precision), grad=True)["tensor_peak"] / 2 ** 20


def step_phases(w: Workload, batch_size: int, repeats: int, precision: str = "fp32") -> dict[str, float]:
    """Where a step's time goes, each phase timed on its own (median of `repeats`) on one batch: the forward pass in
    training mode (with autograd and dropout), the backward pass, gradient clipping, and one AdamW update, both
    torch's default on this device (a loop over the parameters on CPU) and the fused kernel `core.train.adamw`
    picks; and forward + backward once more with dropout off (`eval()` mode, autograd kept), which prices dropout.
    On CPU, dropout on the attention weights also keeps SDPA off its fused kernel, so its price includes that."""
    model = w.build()
    freeze(model, w.frozen)
    batch = w.batch(batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizers = {"adamw_default_ms": torch.optim.AdamW(params, lr=1e-9),
                  "adamw_fused_ms": adamw([{"params": params}], 1e-9)}

    def once() -> dict[str, float]:
        times = {}
        model.train()
        t0 = time.perf_counter()
        with _autocast(precision):
            out = w.loss_fn(model, batch, w.teacher)
        loss = out[0] if isinstance(out, tuple) else out
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        times.update(train_forward_ms=t1 - t0, backward_ms=t2 - t1, clip_ms=time.perf_counter() - t2)
        for name, opt in optimizers.items():
            t0 = time.perf_counter()
            opt.step()
            times[name] = time.perf_counter() - t0
        model.zero_grad(set_to_none=True)
        model.eval()  # dropout off, autograd on
        t0 = time.perf_counter()
        _backward(w, model, batch, precision)
        times["forward_backward_no_dropout_ms"] = time.perf_counter() - t0
        model.zero_grad(set_to_none=True)
        return times

    once()  # warm-up; allocates the optimizers' moments
    runs = [once() for _ in range(repeats)]
    return {name: 1000 * statistics.median(r[name] for r in runs) for name in runs[0]}


def measure_training(workloads: list[Workload], batch_size: int, steps: int = 10, warmup: int = 3,
            repeats: int = 5, trainer: bool = True, precisions: tuple[str, ...] = ("fp32",)) -> pd.DataFrame:
    """One row per workload and precision: examples/s of each loop, training efficiency, pairlib's speed over
    Trainer's (both in that precision), peak memory, the hardware and its CPU features. bf16 is autocast in both
    loops and in the forward pass."""
    if steps < 2 or warmup < 1:
        raise ValueError(f"need steps >= 2 and warmup >= 1, got {steps} and {warmup}")
    features = cpu_features()
    rows = []
    for w in workloads:
        need = (steps + warmup + 1) * batch_size
        if len(next(iter(w.rows.values()))) < need:
            raise ValueError(f"{w.name}: {steps} + {warmup} + 1 steps of batch {batch_size} need {need} rows, "
                             f"got {len(next(iter(w.rows.values())))}")
        for precision in precisions:
            rows.append(_row(w, batch_size, steps, warmup, repeats, trainer, precision, features))
    return pd.DataFrame(rows)


def _row(w: Workload, batch_size: int, steps: int, warmup: int, repeats: int, trainer: bool, precision: str,
         features: dict[str, bool]) -> dict:
    forward = time_forward(w, batch_size, repeats, precision)
    ours = time_pairlib(w, batch_size, steps, warmup, precision)
    theirs = time_trainer(w, batch_size, steps, warmup, precision) if trainer else float("nan")
    return {"workload": w.name, "inputs": w.length, "precision": precision, "batch": batch_size,
            "forward_ms": 1000 * forward, "pairlib_step_ms": 1000 * ours, "trainer_step_ms": 1000 * theirs,
            "pairlib_examples_per_s": batch_size / ours, "trainer_examples_per_s": batch_size / theirs,
            "efficiency": 3 * forward / ours, "pairlib_over_trainer": theirs / ours,
            "step_peak_mb": step_memory_mb(w, batch_size, precision), "steps_timed": steps,
            **step_phases(w, batch_size, repeats, precision), **w.extra,
            "hardware": hardware_label(), **{f"cpu_{k}": v for k, v in features.items()}}


# ----------------------------------------------------------------------------------------------------------------
# The workloads: each method's step as its experiment trains it, on real rows


def squad_workloads(backbone: str, question_length: int, passage_length: int, doc_stride: int, rows: int,
                    split_layer: int) -> list[Workload]:
    """The original model on SQuAD windows, and DeFormer (k = `split_layer`) with KD + LRS from it."""
    from pairlib.deformer.experiment import (
        PAPER_SQUAD_WEIGHTS,
        TASK_LOSS_ONLY,
        DeFormerExperiment,
        DeFormerRecipe,
        deformer_loss,
        teacher_outputs,
    )
    from pairlib.deformer.tasks import model_inputs
    from pairlib.deformer.modeling import DeFormerForQuestionAnswering

    with tempfile.TemporaryDirectory() as out:
        exp = DeFormerExperiment(DeFormerRecipe(task="squad", question_length=question_length,
                                                passage_length=passage_length, doc_stride=doc_stride,
                                                train_examples=rows, eval_examples=1), backbone, out,
                         progress=False)
    tensors = exp.train_segments.tensors
    base = DeFormerForQuestionAnswering.from_backbone(backbone, split_layer=0)
    teacher = copy.deepcopy(base).eval()
    shape = f"question {question_length} + passage {passage_length}"

    def original():
        return copy.deepcopy(base)

    def with_config(**changes):  # the original's weights in a model built with other settings
        config = copy.deepcopy(base.config)
        for name, value in changes.items():
            setattr(config, name, value)
        model = DeFormerForQuestionAnswering(config)
        model.load_state_dict(base.state_dict())
        return model

    def without_attention_dropout():  # dropout on the attention weights keeps SDPA off its fused CPU kernel
        return with_config(attention_probs_dropout_prob=0.0)

    def deformer():  # the lower layers split, as DeFormer starts its training
        return with_config(split_layer=split_layer)

    def forward(model, batch):
        return model(**model_inputs(batch))

    upper = base.config.num_hidden_layers - split_layer
    cached = teacher_outputs(teacher, exp.train_segments, upper, progress=False)
    distil = deformer_loss(PAPER_SQUAD_WEIGHTS)
    return [Workload("original model (SQuAD)", original, deformer_loss(TASK_LOSS_ONLY), tensors, forward,
                     length=shape),
            Workload("original model, no attention dropout (SQuAD)", without_attention_dropout,
                     deformer_loss(TASK_LOSS_ONLY), tensors, forward, length=shape),
            Workload(f"DeFormer k={split_layer}, KD + LRS (SQuAD)", deformer, distil, tensors, forward,
                     teacher=teacher, length=shape),
            Workload(f"DeFormer k={split_layer}, KD + LRS, teacher outputs cached (SQuAD)", deformer, distil,
                     tensors, forward, teacher=cached, length=shape)]


def fastbert_workload(backbone: str, max_length: int, rows: int) -> Workload:
    """FastBERT's self-distillation step (backbone and teacher classifier frozen) on AG News."""
    from pairlib.fastbert.experiment import FastBertExperiment, FastBertRecipe, distillation_loss
    from pairlib.fastbert.modeling import FastBertForSequenceClassification

    with tempfile.TemporaryDirectory() as out:
        exp = FastBertExperiment(FastBertRecipe(task="ag_news", max_length=max_length, train_examples=rows,
                                                eval_examples=1), backbone, out, progress=False)
    base = FastBertForSequenceClassification.from_backbone(backbone, num_labels=exp.num_labels)

    def forward(model, batch):
        return model(**{k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}, all_layers=True)

    return Workload("FastBERT self-distillation (AG News)", lambda: copy.deepcopy(base), distillation_loss,
                    exp.train_tensors, forward, frozen=base.teacher_prefixes, lr=2e-4, length=f"text {max_length}")


def pair_workloads(backbone: str, query_length: int, passage_length: int, cross_length: int, rows: int,
                   head: dict) -> list[Workload]:
    """DiPair's stage 2 (everything trained on the teacher's scores) and the cross-encoder, on squad_q2p pairs."""
    from pairlib.dipair.experiment import DiPairExperiment, DiPairRecipe, _features, label_loss, score_loss
    from pairlib.dipair.modeling import CrossEncoder, DiPairModel

    with tempfile.TemporaryDirectory() as out:
        exp = DiPairExperiment(DiPairRecipe(query_length=query_length, passage_length=passage_length,
                                            cross_length=cross_length, train_examples=rows, eval_examples=3,
                                            pool_queries=1, pool_passages=1), backbone, out, progress=False)
    tensors = dict(exp.train_tensors)
    tensors["targets"] = torch.randn(len(tensors["labels"]), generator=torch.Generator().manual_seed(0))
    dipair = DiPairModel.from_backbone(backbone, **head)
    cross = CrossEncoder.from_backbone(backbone)

    def forward(model, batch):
        return model(**_features(batch))

    return [Workload("DiPair stage 2 (squad_q2p)", lambda: copy.deepcopy(dipair), score_loss, tensors, forward,
                     length=f"query {query_length}, passage {passage_length}"),
            Workload("cross-encoder (squad_q2p)", lambda: copy.deepcopy(cross), label_loss, tensors, forward,
                     length=f"pair {cross_length}")]
