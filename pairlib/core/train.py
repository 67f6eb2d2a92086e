"""The one training loop every method uses (Accelerate): CPU, one GPU, or several processes via `accelerate launch`.

A method supplies a model, a dataset, a collate function and a loss function `loss_fn(model, batch, teacher)`; the
loop supplies the rest: seeding, AdamW with weight decay that really applies (not to biases and LayerNorm), linear
warm-up and decay sized to *this* run's epochs, gradient accumulation and clipping, frozen parameter groups,
evaluation after each epoch, the best checkpoint kept in `<output_dir>/best`, and a resumable state in
`<output_dir>/last` written each epoch (and every `save_every_steps`), so an interrupted run continues where it
stopped. Once a run finishes, `last` keeps only its trainer state: the optimizer's moments are twice the model's size,
and a notebook trains dozens of models, so keeping them filled disks. A frozen teacher for distillation is moved to
the device and handed to the loss function; so are its outputs computed once (`teacher_cache.TeacherOutputs`).

Longer than most modules (about 450 lines) because the loop, its settings and the format of its checkpoints change
together; `_Loop` reads top to bottom: set up, resume, one epoch, one step, finish.
"""
from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedDataParallelKwargs, set_seed
from torch.utils.data import DataLoader
from transformers import get_linear_schedule_with_warmup

from pairlib.core.artifacts import held, recover_folder, replace_folder, shown
from pairlib.core.progress import bar
from pairlib.core.teacher_cache import ROW_INDEX, TeacherOutputs

Teacher = torch.nn.Module | TeacherOutputs | None  # a live teacher, or its outputs computed once
LossFn = Callable[[torch.nn.Module, dict, Teacher], "torch.Tensor | tuple[torch.Tensor, dict]"]
EvalFn = Callable[[torch.nn.Module], dict[str, float]]

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
PRECISIONS = ("fp32", "bf16")


class CheckpointError(RuntimeError):
    """A saved training state that cannot be read; the message names the folder and what to do."""


@dataclass
class TrainConfig:
    output_dir: str
    epochs: int = 1
    lr: float = 5e-5
    batch_size: int = 16
    grad_accum: int = 1
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float | None = 1.0
    seed: int = 42
    max_steps: int | None = None  # stop after this many optimizer steps (smoke runs)
    metric: str | None = None  # key of evaluate()'s dict that picks the best checkpoint
    greater_is_better: bool = True
    frozen: Sequence[str] = ()  # parameter-name prefixes that stay frozen
    # parameter-name prefix -> its own peak lr: freshly initialised layers beside a pretrained encoder can need far
    # more than the encoder's lr to leave their initialisation within a short run (FastBERT's classifiers)
    lr_by_prefix: dict[str, float] = field(default_factory=dict)
    save_every_steps: int | None = None
    # evaluate every this many optimizer steps as well (a learning curve in `TrainResult.curve`); the best
    # checkpoint is still chosen at the ends of epochs
    eval_every_steps: int | None = None
    resume: bool = True
    find_unused_parameters: bool = False
    progress: bool = True
    cpu: bool = False
    # "bf16": matrix products in bfloat16 under autocast (weights and optimizer state stay fp32); pays where the
    # hardware has native bf16 (AMX, AVX512-BF16, recent GPUs): see measure.native_bf16
    precision: str = "fp32"

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name, lr in {"lr": self.lr, **{f"lr_by_prefix[{p!r}]": v for p, v in self.lr_by_prefix.items()}}.items():
            if lr <= 0:
                raise ValueError(f"TrainConfig.{name} must be > 0, got {lr}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"TrainConfig.warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"TrainConfig.precision must be one of {PRECISIONS}, got {self.precision!r}")


@dataclass
class TrainResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_metric: float | None = None
    best_epoch: int | None = None
    best_dir: str | None = None
    global_step: int = 0
    seconds: float = 0.0
    resumed_from_step: int = 0
    # with `eval_every_steps`: {"step", "train_loss" (mean since the previous point), **evaluate()} per point
    curve: list[dict[str, Any]] = field(default_factory=list)


class TensorDictDataset(torch.utils.data.Dataset):
    """Rows of a dict of equally long tensors, as dicts (the default collate stacks them back into a batch); with
    `index`, each row also carries its position under `teacher_cache.ROW_INDEX`, by which cached teacher outputs
    are found."""

    def __init__(self, tensors: dict[str, torch.Tensor], index: bool = False) -> None:
        lengths = {len(v) for v in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"tensors of different lengths: { {k: len(v) for k, v in tensors.items()} }")
        self.tensors = dict(tensors)
        if index:
            self.tensors[ROW_INDEX] = torch.arange(lengths.pop())

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}


def freeze(model: torch.nn.Module, prefixes: Sequence[str]) -> int:
    """Set requires_grad=False on parameters whose name starts with a prefix; returns how many were frozen."""
    n = 0
    for name, p in model.named_parameters():
        if any(name.startswith(pre) for pre in prefixes):
            p.requires_grad_(False)
            n += 1
    if prefixes and n == 0:
        raise ValueError(f"freeze: no parameter name starts with any of {list(prefixes)}")
    return n


def _param_groups(model: torch.nn.Module, weight_decay: float, lr: float,
                  lr_by_prefix: dict[str, float] | None = None) -> list[dict]:
    """One AdamW group per (learning rate, decays or not); a parameter takes the lr of the first prefix it matches."""
    lr_by_prefix = lr_by_prefix or {}
    groups: dict[tuple[float, bool], list] = {}
    used = set()
    for name, p in model.named_parameters():
        if p.requires_grad:
            prefix = next((pre for pre in lr_by_prefix if name.startswith(pre)), None)
            used.add(prefix)
            decays = not any(name.endswith(s) for s in NO_DECAY)
            groups.setdefault((lr_by_prefix.get(prefix, lr), decays), []).append(p)
    if not groups:
        raise ValueError("nothing to train: every parameter is frozen")
    unused = set(lr_by_prefix) - used
    if unused:
        raise ValueError(f"lr_by_prefix: no trainable parameter name starts with {sorted(unused)}")
    return [{"params": ps, "lr": group_lr, "weight_decay": weight_decay if decays else 0.0}
            for (group_lr, decays), ps in groups.items()]


def adamw(groups: list[dict], lr: float) -> torch.optim.AdamW:
    """AdamW as one fused kernel where torch has one for the device (CPU and CUDA): on CPU torch's default is a
    loop over the parameters. For MiniLM the fused update took 22 ms against the loop's 117 ms (notebook 93, a 2-core
    Xeon), the same arithmetic (tests/test_train_fast_paths.py)."""
    params = [p for g in groups for p in g["params"]]
    fused = {p.device.type for p in params} <= {"cpu", "cuda"} and all(p.is_floating_point() for p in params)
    return torch.optim.AdamW(groups, lr=lr, fused=fused or None)


def seed_new_weights(seed: int) -> None:
    """Seed every generator before a model with new layers (heads, classifiers, score layers) is built: they are
    initialised when the model is built, before `train` seeds anything, and torch seeds its default generator
    differently in every process, so without this one recipe gives two different models in two processes."""
    set_seed(seed)


def save_model(model: torch.nn.Module, path: Path) -> None:
    """Written beside `path` and moved into place whole, so that a kill never leaves a half-written model there."""
    from pairlib.core.backbone import quiet_transformers
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if hasattr(model, "save_pretrained"):
        with quiet_transformers():  # no "Writing model shards" bar in executed notebooks
            model.save_pretrained(tmp)
    else:
        torch.save(model.state_dict(), tmp / "model.pt")
    replace_folder(tmp, path)


class _TiedWeightsNotice(logging.Filter):
    """Drops Accelerate's "Removed shared tensor ... while saving" notice. A model with tied weights (a masked-LM
    decoder sharing the word embeddings) stores the tensor once, and loading it into the same model restores the tie,
    so the notice says nothing a reader can act on; it repeated at every checkpoint of an executed notebook."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Removed shared tensor" not in record.getMessage()


@contextmanager
def _tied_weights_quiet():
    logger, notice = logging.getLogger("accelerate.utils.other"), _TiedWeightsNotice()
    logger.addFilter(notice)
    try:
        yield
    finally:
        logger.removeFilter(notice)


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss); the message says where it stopped and what to change."""


def train(model: torch.nn.Module, train_data, collate_fn: Callable, loss_fn: LossFn, config: TrainConfig,
          evaluate: EvalFn | None = None, teacher: Teacher = None) -> TrainResult:
    """Train `model` on `train_data` with `loss_fn`, resuming from `<output_dir>/last` where a run stopped, keeping
    the best weights in `<output_dir>/best`. The loop reads top to bottom in `_Loop`: set up, resume, one epoch at a
    time, finish."""
    if config.metric and evaluate is None:
        raise ValueError(f"TrainConfig.metric={config.metric!r} needs an evaluate function")
    # one process trains a model folder at a time; the ranks of one multi-process run share it (rank 0 holds it)
    first_rank = int(os.environ.get("RANK", "0")) == 0
    with held(Path(config.output_dir) / ".lock", "training this model") if first_rank else nullcontext():
        loop = _Loop(model, train_data, collate_fn, loss_fn, config, evaluate, teacher)
        if loop.resume():  # finished earlier: nothing left to train, the weights are in `best`
            return loop.result
        while not loop.done:
            loop.epoch()
        return loop.finish()


EPOCH_LOSS = {"epoch_loss_sum": 0.0, "epoch_loss_batches": 0}  # the epoch's loss so far, kept across a resume


class _Loop:
    """One training run's state and its steps, so that `train` can say them in order."""

    def __init__(self, model: torch.nn.Module, train_data, collate_fn: Callable, loss_fn: LossFn,
                 config: TrainConfig, evaluate: EvalFn | None, teacher: Teacher) -> None:
        self.config, self.train_data, self.collate_fn, self.loss_fn = config, train_data, collate_fn, loss_fn
        self.evaluate = evaluate
        self.out = Path(config.output_dir)
        self.last, self.best = self.out / "last", self.out / "best"
        self.acc = acc = _accelerator(config)
        set_seed(config.seed)
        freeze(model, config.frozen)
        optimizer = adamw(_param_groups(model, config.weight_decay, config.lr, config.lr_by_prefix), config.lr)
        self.model, self.optimizer = acc.prepare(model, optimizer)
        if isinstance(teacher, torch.nn.Module):
            teacher = teacher.to(acc.device).eval().requires_grad_(False)
        self.teacher = teacher
        steps_per_epoch = math.ceil(len(self.loader(0)) / config.grad_accum)
        self.total = steps_per_epoch * config.epochs
        if config.max_steps is not None:
            self.total = min(self.total, config.max_steps)
        self.scheduler = get_linear_schedule_with_warmup(self.optimizer, int(config.warmup_ratio * self.total),
                                                         self.total)
        self.result = TrainResult()
        # the epoch's loss is summed in the state, so that an epoch resumed mid-way still averages all its batches
        self.state = {"epoch": 0, "batch_in_epoch": 0, "global_step": 0, **EPOCH_LOSS}
        self.t0 = time.perf_counter()
        self.done = False

    def loader(self, epoch: int) -> DataLoader:
        g = torch.Generator().manual_seed(self.config.seed + epoch)
        return self.acc.prepare(DataLoader(self.train_data, batch_size=self.config.batch_size, shuffle=True,
                                           generator=g, collate_fn=self.collate_fn))

    def resume(self) -> bool:
        """Continue from the saved state where there is one; True when that run had finished."""
        acc, out = self.acc, self.out
        if acc.is_main_process:
            recover_folder(self.last)
            recover_folder(self.best)
        acc.wait_for_everyone()
        if self.config.resume and saved_state_file(out).exists():
            saved = _read_state(out)
            # a state saved before the epoch's loss was kept in it averages the batches after the resume only
            self.state, self.result = {**EPOCH_LOSS, **saved["state"]}, _saved_result(saved, out)
            self.result.resumed_from_step = self.state["global_step"]
            if saved.get("finished"):
                acc.print(f"{shown(out)} finished training earlier (step {self.state['global_step']}); "
                          "not training again")
                return True
            try:
                acc.load_state(str(self.last))  # model, optimizer and random states, read without unpickling code
                self.scheduler.load_state_dict(_scheduler_state(saved, self.last))
            except Exception as e:  # written whole or not at all since checkpoints are atomic, but disks fail
                raise CheckpointError(f"the checkpoint in {self.last} cannot be read ({type(e).__name__}: {e}). "
                                      "Delete that folder to train this model from the start.") from e
            acc.print(f"resuming from {shown(self.last)} at epoch {self.state['epoch']}, "
                      f"step {self.state['global_step']}")
        self.t0 = time.perf_counter() - self.result.seconds
        self.done = self.state["global_step"] >= self.total or self.state["epoch"] >= self.config.epochs
        return False

    def epoch(self) -> None:
        """The batches left in this epoch, then its record, its evaluation and the best weights."""
        config, state, acc = self.config, self.state, self.acc
        epoch = state["epoch"]
        self.model.train()
        dl = self.loader(epoch)
        skip = state["batch_in_epoch"]
        batches = acc.skip_first_batches(dl, skip) if skip else dl
        # counted by hand after each step: iterating the bar would leave it one short when the loop breaks early
        shown_bar = bar(total=len(dl), initial=skip, desc=f"epoch {epoch + 1}/{config.epochs}",
                        show=config.progress and acc.is_local_main_process, leave=True)
        running: list[float] = []
        for batch in batches:
            running.append(self.step(batch))
            shown_bar.update()
            if acc.sync_gradients:
                shown_bar.set_postfix(loss=f"{sum(running[-20:]) / len(running[-20:]):.4f}",
                                      lr=f"{self.scheduler.get_last_lr()[0]:.2e}", refresh=False)
                self.after_optimizer_step(running)
                if state["global_step"] >= self.total:
                    self.done = True
                    break
        shown_bar.close()
        self.end_epoch(epoch, running)

    def step(self, batch: dict) -> float:
        """One batch forward and backward (an optimizer step every `grad_accum` batches); its loss."""
        config, acc, model = self.config, self.acc, self.model
        with acc.accumulate(model):
            # torch's autocast, not Accelerator's mixed_precision: that is fixed once per process, and one
            # notebook trains models of either precision; it covers a teacher's forward inside the loss too
            with torch.autocast(acc.device.type, torch.bfloat16, enabled=config.precision == "bf16"):
                out = self.loss_fn(model, batch, self.teacher)
            loss = out[0] if isinstance(out, tuple) else out
            if not torch.isfinite(loss.detach()).all():
                raise TrainingError(
                    f"the training loss is {loss.item()} at epoch {self.state['epoch'] + 1}, step "
                    f"{self.state['global_step']} of {shown(self.out)}: the weights would turn to NaN. Lower the "
                    f"lr ({config.lr}) or check the inputs; the last checkpoint kept is the one before this step")
            acc.backward(loss)
            if acc.sync_gradients and config.max_grad_norm:
                acc.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            self.optimizer.step()
            self.optimizer.zero_grad()
        value = loss.item()
        self.state["batch_in_epoch"] += 1
        self.state["epoch_loss_sum"] += value
        self.state["epoch_loss_batches"] += 1
        if acc.sync_gradients:
            self.scheduler.step()
            self.state["global_step"] += 1
        return value

    def after_optimizer_step(self, running: list[float]) -> None:
        """A learning-curve point and a checkpoint where they fall due."""
        config, step = self.config, self.state["global_step"]
        if self.evaluate is not None and config.eval_every_steps and step % config.eval_every_steps == 0:
            self.result.curve.append(self.evaluated({"step": step, "train_loss": self.loss_since_last_point(running)}))
        if config.save_every_steps and step % config.save_every_steps == 0:
            self.result.seconds = time.perf_counter() - self.t0
            self.checkpoint()

    def end_epoch(self, epoch: int, running: list[float]) -> None:
        config, state, result = self.config, self.state, self.result
        record: dict[str, Any] = {"epoch": epoch + 1, "step": state["global_step"],
                                  "train_loss": state["epoch_loss_sum"] / max(state["epoch_loss_batches"], 1)}
        if self.evaluate is not None:
            self.evaluated(record)
            if config.eval_every_steps and (not result.curve or result.curve[-1]["step"] != state["global_step"]):
                # a point at the epoch's end too, its train loss since the previous point as every other's
                result.curve.append({**record, "train_loss": self.loss_since_last_point(running)})
        result.history.append(record)
        self.acc.print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items()))
        metric = record.get(config.metric) if config.metric else None
        improved = (config.metric is None or (metric is not None and (
            result.best_metric is None
            or (metric > result.best_metric if config.greater_is_better else metric < result.best_metric))))
        if improved:
            result.best_metric, result.best_epoch, result.best_dir = metric, epoch + 1, str(self.best)
            if self.acc.is_main_process:
                save_model(self.acc.unwrap_model(self.model), self.best)
        state.update(epoch=epoch + 1, batch_in_epoch=0, **EPOCH_LOSS)
        result.global_step = state["global_step"]
        result.seconds = time.perf_counter() - self.t0
        self.done = self.done or state["epoch"] >= config.epochs
        if not self.done:
            self.checkpoint()

    def finish(self) -> TrainResult:
        self.acc.wait_for_everyone()
        self.result.global_step = self.state["global_step"]
        self.result.seconds = time.perf_counter() - self.t0
        self.checkpoint(finished=True)
        self.acc.wait_for_everyone()
        return self.result

    def checkpoint(self, finished: bool = False) -> None:
        """A resumable state written to `last.tmp`, the trainer state last, then moved into place whole: a kill
        at any moment leaves the previous checkpoint or this one, never weights of one step beside the state of
        another. Once finished, only the record is kept (the weights are in `best`)."""
        acc, tmp = self.acc, self.last.with_name("last.tmp")
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()  # every rank writes its own random state into tmp: it must exist first
        if not finished:
            with _tied_weights_quiet():
                acc.save_state(str(tmp))
        acc.wait_for_everyone()  # ... and must have finished before tmp is moved
        if acc.is_main_process:
            (tmp / "trainer_state.json").write_text(json.dumps(
                {"state": self.state, "result": asdict(self.result), "config": asdict(self.config),
                 "scheduler": self.scheduler.state_dict(), "finished": finished}, indent=1, default=str))
            replace_folder(tmp, self.last)
        acc.wait_for_everyone()

    def evaluated(self, record: dict[str, Any]) -> dict[str, Any]:
        """`record` with the evaluation's metrics, computed by the main process while the others wait."""
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            self.model.eval()
            record.update(self.evaluate(self.acc.unwrap_model(self.model)))
            self.model.train()
        return record

    def loss_since_last_point(self, running: list[float]) -> float:
        since = self.state["global_step"] - (self.result.curve[-1]["step"] if self.result.curve else 0)
        recent = running[-since * self.config.grad_accum:] if since else running
        return sum(recent) / max(len(recent), 1)


def _accelerator(config: TrainConfig) -> Accelerator:
    ddp = DistributedDataParallelKwargs(find_unused_parameters=config.find_unused_parameters)
    # Accelerate only sets up several CPU processes (gloo) when told it runs on CPU, so say so on a GPU-less machine.
    on_cpu = config.cpu or not torch.cuda.is_available()
    # Accelerate keeps one process-wide state: a `transformers.Trainer` run with bf16=True earlier in the process
    # (notebook 93) leaves it in bf16, and a new Accelerator would silently inherit that. This loop's precision is
    # its own (autocast), so it starts from "no" mixed precision whatever ran before.
    if AcceleratorState._shared_state.get("_mixed_precision", "no") != "no":
        AcceleratorState._reset_state()
    return Accelerator(gradient_accumulation_steps=config.grad_accum, cpu=on_cpu, kwargs_handlers=[ddp],
                       mixed_precision="no")


def _read_state(output_dir: Path) -> dict:
    path = saved_state_file(output_dir)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{shown(path)} is not a readable training state ({e}). Delete {shown(path.parent)} "
                              "to train this model from the start.") from None


def _scheduler_state(saved: dict, last: Path) -> dict:
    """The schedule's position: kept in the trainer state; a checkpoint written before that kept it in Accelerate's
    `custom_checkpoint_0.pkl`, read here as plain data (weights_only), never as code."""
    if "scheduler" in saved:
        return saved["scheduler"]
    return torch.load(last / "custom_checkpoint_0.pkl", map_location="cpu", weights_only=True)


def train_and_reload(model: torch.nn.Module, train_data, loss_fn: LossFn, config: TrainConfig,
                     teacher: Teacher = None, load: Callable | None = None):
    """`train`, then the trained model read back from `<output_dir>/best` (so a run that was already finished, or
    resumed, gives the same model as a fresh one). `load(path)` defaults to the model class's `from_pretrained`."""
    from pairlib.core.backbone import quiet_transformers
    result = train(model, train_data, None, loss_fn, config, teacher=teacher)
    try:
        with quiet_transformers():
            trained = (load or type(model).from_pretrained)(result.best_dir)
    except Exception as e:  # a damaged or half-copied folder: transformers' errors do not name it
        raise CheckpointError(f"the trained model in {shown(result.best_dir)} cannot be read ({type(e).__name__}: "
                              f"{e}). Delete {shown(Path(result.best_dir).parent)} to train it again.") from e
    return trained.eval(), result


def saved_state_file(output_dir: str | Path) -> Path:
    """Where a run in `output_dir` keeps its state: present once it has a checkpoint to resume from (or finished)."""
    return Path(output_dir) / "last" / "trainer_state.json"


def finished_result(output_dir: str | Path) -> TrainResult | None:
    """The record of a run that finished in `output_dir`, or None (not run, or interrupted)."""
    state = saved_state_file(output_dir)
    if not state.exists():
        return None
    saved = _read_state(Path(output_dir))
    return _saved_result(saved, output_dir) if saved.get("finished") else None


def _saved_result(saved: dict, output_dir: str | Path) -> TrainResult:
    """A saved run's record with its best weights looked up in `output_dir` as it is now, so that a folder that was
    moved, renamed or cloned elsewhere still finds them."""
    result = TrainResult(**saved["result"])
    if result.best_dir is not None:
        result.best_dir = str(Path(output_dir) / Path(result.best_dir).name)
    return result
