"""Each method trained on a registered task (a user's files, `core.data.user`), with what its model card reports:
quality on the validation split beside the same backbone's full model, and speed beside it on this machine.

Why through the study's experiments: they already train, resume and name models by their settings; a user's run is
one more recipe of them, so the models, checkpoints and equivalences the study tests are the ones a user gets.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch

from pairlib.core import data
from pairlib.core.measure import hardware_label

# FastBERT's recipe as the study's English runs (36) use it: one epoch at 2e-5 left the teacher so unsure that at
# speed 0.5 no review left early (50 at `cpu`, ChnSentiCorp on me5-small); the fresh classifiers learn at 1e-3
FASTBERT_DEFAULTS = {"epochs": 2, "lr": 5e-5, "classifier_lr": 1e-3}
TIMED_EXAMPLES = 64  # the validation rows timed (batched); batch 1 times the first of them


@dataclass
class Trained:
    """A trained model and what its card says about it. `quality`: metric -> {model name: value} on the validation
    split; `speed`: one row per timed model and batch size; `serving`: the lengths `pairlib score` reads with."""

    method: str
    model: torch.nn.Module
    tokenizer: Any
    backbone: str
    recipe: dict
    quality: pd.DataFrame
    speed: pd.DataFrame
    serving: dict[str, int]
    notes: list[str] = field(default_factory=list)


class MethodError(ValueError):
    """A method asked of a task it cannot train on, or options it does not take; the message says what fits."""


def _batch(n: int) -> int:
    return max(1, min(TIMED_EXAMPLES, n))


def train_fastbert(task: str, backbone: str, work: Path, options: dict, progress: bool = True) -> Trained:
    """Fine-tune the backbone with the teacher classifier, distil a classifier after every layer, and keep the speed
    asked for (`speed`, default 0.5) in the model's config for serving."""
    from pairlib.fastbert.experiment import FastBertExperiment, FastBertRecipe
    options = {**FASTBERT_DEFAULTS, **options}
    speed = float(options.pop("speed", 0.5))
    if not 0.0 <= speed <= 1.0:
        raise MethodError(f"--speed must be from 0 to 1 (0: every layer), got {speed}")
    recipe = FastBertRecipe.from_dict({"task": task, "eval_split": "validation", **options})
    exp = FastBertExperiment(recipe, backbone, work, progress=progress)
    model = exp.distilled()
    model.config.speed = speed
    sweep = exp.speed_sweep(model, [0.0, speed]).assign(model=["all layers (the teacher)", f"speed {speed}"])
    quality = sweep[["model", "accuracy", "mean_exit_layer", "flops_speedup"]]
    n = len(exp.eval_set)
    speed_rows = [exp.wallclock(model, [speed], samples=min(16 * b, _batch(n)), batch_size=b)
                  for b in sorted({1, _batch(n)})]
    timing = pd.concat(speed_rows, ignore_index=True)[["hardware", "batch", "model", "ms_per_sample",
                                                        "wallclock_speedup", "flops_speedup"]]
    return Trained("fastbert", model, exp.tokenizer, exp.backbone, asdict(recipe), quality,
                   timing.rename(columns={"ms_per_sample": "ms_per_example", "wallclock_speedup": "speedup"}),
                   {"cross_length": recipe.max_length},
                   [f"Each example leaves at the first layer whose classifier's normalised entropy is below {speed}; its FLOPs "
                    "count every classifier it passed, so at speed 0 they exceed the backbone's own"])


def train_deformer(task: str, backbone: str, work: Path, options: dict, progress: bool = True) -> Trained:
    """Fine-tune the backbone on the pairs (the original model), then DeFormer from it at `split_layer` (default:
    the paper's 9 of 12, scaled to the backbone's depth) with the paper's task, KD and LRS weights."""
    from pairlib.deformer.bench import benchmark
    from pairlib.deformer.experiment import (PAPER_SQUAD_WEIGHTS, DeFormerExperiment, DeFormerRecipe,
                                             paper_split_layer)
    split = options.pop("split_layer", None)
    recipe = DeFormerRecipe.from_dict({"task": task, "eval_split": "validation", "question_length": 32,
                                       "passage_length": 128, **options})
    exp = DeFormerExperiment(recipe, backbone, work, progress=progress)
    original = exp.baseline()
    layers = original.config.num_hidden_layers
    split = paper_split_layer(layers) if split is None else int(split)
    if not 1 <= split < layers:
        raise MethodError(f"--split-layer must be from 1 to {layers - 1} for {backbone} ({layers} layers), got {split}")
    model = exp.deformer(split, PAPER_SQUAD_WEIGHTS)
    quality = pd.DataFrame([{"model": "original (the backbone fine-tuned on the pairs)", **exp.evaluate(original)},
                            {"model": f"DeFormer, k={split} of {layers}", **exp.evaluate(model)}])
    rows = exp.eval_segments.head(_batch(len(exp.eval_set)))
    latency, _ = benchmark(original, model, rows, exp.cache(model, rows=len(rows)),
                           batch_sizes=tuple(sorted({1, len(rows)})), repeats=5)
    latency.insert(0, "hardware", hardware_label())
    timing = latency[["hardware", "batch", "model", "ms_per_example", "speedup"]]
    return Trained("deformer", model, exp.task.tokenizer, exp.backbone, {**asdict(recipe), "split_layer": split},
                   quality, timing, {"query_length": recipe.question_length,
                                     "passage_length": recipe.passage_length},
                   [f"The second text's lower {split} layers are computed alone, so they can be cached per text"])


def train_dipair(task: str, backbone: str, work: Path, options: dict, progress: bool = True) -> Trained:
    """Fine-tune the backbone as a cross-encoder (the teacher), then distil DiPair from its scores on a pool of
    the training queries' candidates, in the paper's two stages."""
    from pairlib.dipair.bench import quality_and_speed
    from pairlib.dipair.experiment import DiPairExperiment, DiPairRecipe
    head = {k: options.pop(k) for k in ("query_tokens", "passage_tokens", "head_dim", "head_layers") if k in options}
    # the pool the students learn from: every training query by default (the recipe's 16 suit the study's sweeps,
    # not one model trained once: 50 measured DiPair far below its teacher from 64 pool pairs)
    options.setdefault("pool_queries", len(set(data.load_task(task, "train")["query_id"])))
    recipe = DiPairRecipe.from_dict({"task": task, "eval_split": "validation", **options})
    exp = DiPairExperiment(recipe, backbone, work, progress=progress)
    models = {"teacher (cross-encoder)": exp.teacher(), "DiPair": exp.dipair("two-stage", **head)}
    b = _batch(len(exp.eval_set))
    table, speed = quality_and_speed(models, exp.evaluate, exp.eval_tensors, tuple(sorted({1, b})), repeats=5,
                                     baseline="teacher (cross-encoder)")
    quality = table.drop(columns=[c for c in table if c.startswith(("speedup", "pairs_per_s", "hardware"))])
    timing = speed.rename(columns={"ms_per_pair": "ms_per_example", "speedup_vs_teacher": "speedup"})
    return Trained("dipair", models["DiPair"], exp.tokenizer, exp.backbone, {**asdict(recipe), **head}, quality,
                   timing[["hardware", "batch", "model", "ms_per_example", "speedup"]],
                   {"query_length": recipe.query_length, "passage_length": recipe.passage_length,
                    "cross_length": recipe.cross_length},
                   ["Queries and passages are encoded alone (each once, cacheable); a small head scores each pair"])


METHODS: dict[str, Callable[..., Trained]] = {"fastbert": train_fastbert, "deformer": train_deformer,
                                              "dipair": train_dipair}
# the task kinds each method trains on (FastBERT classifies one text or a pair; DeFormer needs two texts)
KINDS = {"fastbert": ("single_cls", "pair_cls", "pair_match"), "deformer": ("pair_cls", "pair_match"),
         "dipair": ("pair_match",)}
WHAT_FITS = {"fastbert": "FastBERT classifies one text or a pair",
             "deformer": "DeFormer reads two texts: give --text-a and --text-b (or --query and --passage)",
             "dipair": "DiPair ranks a query's candidates: give --query, --passage and --label columns (and "
                       "--query-id where one query has several rows)"}


def train(method: str, task: str, backbone: str, work: str | Path, options: dict | None = None,
          progress: bool = True) -> Trained:
    """`method` trained on the registered `task`; `options` are the method's recipe fields (checked by it)."""
    if method not in METHODS:
        raise MethodError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
    kind = data.get_task(task).kind
    if kind not in KINDS[method]:
        raise MethodError(f"{method} does not train on {kind} data ({', '.join(KINDS[method])} only). "
                          f"{WHAT_FITS[method]}")
    return METHODS[method](task, backbone, Path(work), dict(options or {}), progress)
