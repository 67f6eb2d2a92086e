"""FastBERT's training steps and evaluation: what notebooks 30-33 call.

The paper's steps: (1) fine-tune the backbone and the teacher classifier (the last layer's) on labels; (2) freeze
them and distil every student classifier at once from the teacher, with no labels needed. Our loop sizes each step's
learning-rate schedule to that step's own epochs (the official code sized the distillation schedule by the
fine-tuning epochs, so the lr hit zero early) and applies weight decay for real. Ablations: all classifiers trained
on labels together with the backbone (no self-distillation); fixed-depth models (the first n layers fine-tuned).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from pairlib.core import data, metrics
from pairlib.core.artifacts import artifact_dir
from pairlib.core.backbone import backbone_identity, load_tokenizer, task_backbone
from pairlib.core.losses import self_distillation_loss
from pairlib.core.progress import bar
from pairlib.core.recipe import RecipeBase
from pairlib.core.train import TensorDictDataset, seed_new_weights, train_and_reload
from pairlib.fastbert.modeling import (
    FastBertForSequenceClassification,
    adaptive_from_all_layers,
    full_model_flops,
    sample_flops,
)


@dataclass(frozen=True)
class FastBertRecipe(RecipeBase):
    task: str
    max_length: int = 128
    train_examples: int | None = None  # a fixed sample of the train split (seed 0); None: all
    eval_examples: int | None = None  # a fixed sample of the evaluation split (seed 0); None: all
    eval_split: str = "test"
    epochs: int = 1  # fine-tuning the backbone and the teacher
    lr: float = 2e-5
    # the fresh classifiers' lr in the label-trained steps; None: `lr`, as in the paper. At the backbone's lr a
    # 250-step run on squad_q2p left them at the label prior (docs/fastbert.md)
    classifier_lr: float | None = None
    distill_epochs: int = 1
    distill_lr: float = 2e-4



def encode(tokenizer, ds, text_columns: tuple[str, ...], max_length: int) -> dict[str, torch.Tensor]:
    """Single texts or pairs (`[CLS] a [SEP] b [SEP]`), padded to `max_length`, with labels."""
    if len(text_columns) not in (1, 2):
        raise ValueError(f"FastBERT reads one text or a pair, got columns {text_columns}")
    texts = [list(ds[c]) for c in text_columns]
    enc = tokenizer(*texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "token_type_ids": enc["token_type_ids"], "labels": torch.tensor([int(x) for x in ds["label"]])}


def _inputs(batch: dict) -> dict:
    return {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids")}


def teacher_loss(model, batch, _teacher=None):
    return F.cross_entropy(model(**_inputs(batch)).logits, batch["labels"])


def all_layers_label_loss(model, batch, _teacher=None):
    """The ablation without self-distillation: every classifier trained on labels, with the backbone."""
    out = model(**_inputs(batch), all_layers=True)
    return sum(F.cross_entropy(logits, batch["labels"]) for logits in out.all_logits) / len(out.all_logits)


def distillation_loss(model, batch, _teacher=None):
    """Students against the (frozen) teacher on the same forward pass; labels unused."""
    out = model(**_inputs(batch), all_layers=True)
    return self_distillation_loss(out.all_logits[:-1], out.all_logits[-1])


def flops_speedup(config, length: int, exits: list[int]) -> float:
    """The full model's FLOPs over the mean FLOPs of samples leaving at these (0-based) layers."""
    return full_model_flops(config, length) * len(exits) / sum(sample_flops(config, length, int(e)) for e in exits)


class FastBertExperiment:
    def __init__(self, recipe: FastBertRecipe, backbone: str, out_dir: str | Path, progress: bool = True) -> None:
        self.task = data.get_task(recipe.task)
        if self.task.language != "en" and backbone in ("minilm-l6",):
            raise ValueError(f"{recipe.task} is Chinese and {backbone} is an English backbone; name a Chinese one "
                             "(me5-small, zh-mini, or bert-base-chinese online)")
        backbone = task_backbone(backbone, recipe.task)  # me5-small: its vocabulary pruned to the task's text
        self.recipe, self.backbone, self.out_dir, self.progress = recipe, backbone, Path(out_dir), progress
        self.num_labels = len(self.task.label_names)
        self.tokenizer = tok = load_tokenizer(backbone)
        self.train_set = data.subsample(data.load_task(recipe.task, "train"), recipe.train_examples)
        self.eval_set = data.subsample(data.load_task(recipe.task, recipe.eval_split), recipe.eval_examples)
        cols = self.task.text_columns
        self.train_tensors = encode(tok, self.train_set, cols, recipe.max_length)
        self.eval_tensors = encode(tok, self.eval_set, cols, recipe.max_length)
        self.records: list[dict] = []

    def artifact_dir(self, name: str, **extra) -> Path:
        return artifact_dir(self.out_dir, f"fastbert-{self.recipe.task}-{name}",
                            {"backbone": backbone_identity(self.backbone), **self.recipe.model_settings(), **extra})

    def _label_lrs(self) -> dict[str, float]:
        lr = self.recipe.classifier_lr
        return {} if lr is None else {"classifiers.": lr}

    def _fit(self, name: str, model, loss_fn, lr: float, epochs: int, frozen=(), lr_by_prefix=None, **extra):
        r = self.recipe
        out = self.artifact_dir(name, **extra)
        config = r.train_config(out, progress=self.progress, epochs=epochs, lr=lr, frozen=tuple(frozen),
                                lr_by_prefix=lr_by_prefix or {})
        trained, result = train_and_reload(model, TensorDictDataset(self.train_tensors), loss_fn, config)
        if any(r["folder"] == out.name for r in self.records):  # asked for again (e.g. as distillation's start)
            return trained
        self.records.append({"model": name, "folder": out.name, "layers": trained.config.num_hidden_layers,
                             "epochs": epochs, "lr": lr, "classifier_lr": (lr_by_prefix or {}).get("classifiers.", lr),
                             "steps": result.global_step,
                             "train_seconds": round(result.seconds, 1),
                             "final_train_loss": result.history[-1]["train_loss"] if result.history else None})
        return trained

    def _new_model(self, num_layers: int | None = None) -> FastBertForSequenceClassification:
        """The backbone's weights (its first `num_layers`), fresh classifiers seeded by the recipe."""
        seed_new_weights(self.recipe.seed)
        return FastBertForSequenceClassification.from_backbone(self.backbone, num_labels=self.num_labels,
                                                               num_layers=num_layers, **self.recipe.config_overrides())

    def fine_tuned(self) -> FastBertForSequenceClassification:
        """Step 1: backbone + teacher classifier on labels (the students are untrained)."""
        model = self._new_model()
        return self._fit("fine-tuned", model, teacher_loss, self.recipe.lr, self.recipe.epochs,
                         lr_by_prefix=self._label_lrs())

    def distilled(self) -> FastBertForSequenceClassification:
        """Step 2: the students distilled from the frozen teacher (backbone and teacher classifier frozen)."""
        model = self.fine_tuned()
        return self._fit("distilled", model, distillation_loss, self.recipe.distill_lr, self.recipe.distill_epochs,
                         frozen=model.teacher_prefixes, step="distil")

    def trained_on_labels(self) -> FastBertForSequenceClassification:
        """Ablation: every classifier and the backbone trained together on labels (no self-distillation)."""
        model = self._new_model()
        return self._fit("all-layers-on-labels", model, all_layers_label_loss, self.recipe.lr, self.recipe.epochs,
                         lr_by_prefix=self._label_lrs())

    def fixed_depth(self, layers: int) -> FastBertForSequenceClassification:
        """Baseline: the backbone's first `layers` layers fine-tuned with one classifier on top (the paper's
        DistilBERT rows stand in here)."""
        model = self._new_model(num_layers=layers)
        return self._fit(f"first-{layers}-layers", model, teacher_loss, self.recipe.lr, self.recipe.epochs,
                         lr_by_prefix=self._label_lrs(), layers=layers)

    @torch.inference_mode()
    def adaptive(self, model: FastBertForSequenceClassification, speed: float, batch_size: int = 64):
        """Every evaluation sample predicted adaptively: (predictions, exit layers, uncertainties)."""
        preds, exits, unc = [], [], []
        n = len(self.eval_set)
        for lo in bar(range(0, n, batch_size), desc=f"speed {speed}", show=self.progress):
            batch = {k: v[lo:lo + batch_size] for k, v in _inputs(self.eval_tensors).items()}
            p = model.adaptive_predict(**batch, speed=speed)
            preds.append(p.logits.argmax(-1))
            exits.append(p.exit_layer)
            unc.append(p.uncertainty)
        return torch.cat(preds), torch.cat(exits), torch.cat(unc)

    @torch.inference_mode()
    def all_layer_logits(self, model: FastBertForSequenceClassification, batch_size: int = 64) -> torch.Tensor:
        """(layers, samples, classes): every classifier's logits on every evaluation sample."""
        chunks = []
        for lo in range(0, len(self.eval_set), batch_size):
            batch = {k: v[lo:lo + batch_size] for k, v in _inputs(self.eval_tensors).items()}
            chunks.append(torch.stack(model(**batch, all_layers=True).all_logits))
        return torch.cat(chunks, dim=1)

    def accuracy(self, predictions: torch.Tensor) -> float:
        return metrics.compute("accuracy", predictions=predictions.tolist(),
                               references=self.eval_tensors["labels"].tolist())["accuracy"]

    def speed_sweep(self, model: FastBertForSequenceClassification, speeds, batch_size: int = 64) -> pd.DataFrame:
        """Accuracy, exit layer (0-based, as the paper's Figure 5 counts: 0 = after the first layer) and FLOPs per
        sample (analytic at the padded length, the paper's convention) at each speed."""
        cfg, length = model.config, self.recipe.max_length
        full = full_model_flops(cfg, length)
        logits = self.all_layer_logits(model, batch_size)  # one pass for every speed (adaptive_from_all_layers)
        rows = []
        for speed in speeds:
            p = adaptive_from_all_layers(logits, speed)
            preds, exits = p.logits.argmax(-1), p.exit_layer
            flops = full / flops_speedup(cfg, length, exits.tolist())
            rows.append({"speed": speed, "accuracy": self.accuracy(preds),
                         "mean_exit_layer": exits.float().mean().item(),
                         "median_exit_layer": exits.float().median().item(), "mflops_per_sample": flops / 1e6,
                         "flops_speedup": full / flops})
        return pd.DataFrame(rows)

    def wallclock(self, model: FastBertForSequenceClassification, speeds, samples: int, batch_size: int,
                  repeats: int = 3) -> pd.DataFrame:
        """Latency of the full model (every layer, the teacher's classifier only) against adaptive inference at each
        speed, over the first `samples` evaluation samples in batches, interleaved in this one process; beside it
        the FLOPs speedup of the same samples (from their exit layers), the limit the wall-clock speedup can reach."""
        from pairlib.core.measure import hardware_label, time_side_by_side
        chunks = [{k: v[lo:lo + batch_size] for k, v in _inputs(self.eval_tensors).items()}
                  for lo in range(0, min(samples, len(self.eval_set)), batch_size)]
        n = sum(len(c["input_ids"]) for c in chunks)
        cfg, length = model.config, self.recipe.max_length
        fns = {"full model": lambda: [model(**c) for c in chunks]}
        speedups = {"full model": 1.0}
        for speed in speeds:
            fns[f"speed {speed}"] = lambda s=speed: [model.adaptive_predict(**c, speed=s) for c in chunks]
            with torch.inference_mode():
                exits = torch.cat([model.adaptive_predict(**c, speed=speed).exit_layer for c in chunks]).tolist()
            speedups[f"speed {speed}"] = flops_speedup(cfg, length, exits)
        timings = time_side_by_side(fns, n, warmup=1, repeats=repeats)
        base = timings["full model"].median_s
        return pd.DataFrame([{"hardware": hardware_label(), "batch": batch_size, "samples": n, "model": name,
                              "ms_per_sample": t.per_example_ms, "samples_per_s": t.examples_per_s,
                              "wallclock_speedup": base / t.median_s, "flops_speedup": speedups[name],
                              "realised": base / t.median_s / speedups[name]} for name, t in timings.items()])
