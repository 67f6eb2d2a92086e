"""Fine-tuning and evaluating DeFormer on SQuAD, BoolQ and RACE: what notebooks 20-24 call.

The recipe is the paper's: fine-tune the original model (a DeFormer with k=0) on the task, then load the same
weights with k>0 and fine-tune again with gamma * task + alpha * KD + beta * LRS, the fine-tuned original model
being the teacher. `DeFormerTask` (one subclass per kind of task) ties a task to its inputs, model head and metric,
so the notebooks differ only in parameters; the heads themselves compute their loss and say what distillation
compares (`deformer.modeling`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from pairlib.core import ledger
from pairlib.core.artifacts import (
    artifact_dir,
    tensors_fingerprint,
    weights_fingerprint,
)
from pairlib.core.backbone import backbone_identity
from pairlib.core.losses import kd_loss, lrs_loss, weighted_sum
from pairlib.core.measure import hardware_label
from pairlib.core.recipe import RecipeBase
from pairlib.core.teacher_cache import TeacherOutputs
from pairlib.core.train import (
    TensorDictDataset,
    TrainConfig,
    TrainResult,
    seed_new_weights,
    train_and_reload,
)
from pairlib.deformer.cache import lower_layers_fingerprint
from pairlib.deformer.inputs import Segments
from pairlib.deformer.modeling import DeFormerPreTrainedModel
from pairlib.deformer.tasks import DeFormerTask, deformer_task, model_inputs


@dataclass(frozen=True)
class LossWeights:
    """gamma (task), alpha (KD) and beta (LRS) of DeFormer's total loss, and the KD temperature."""

    task: float = 1.0
    kd: float = 0.0
    lrs: float = 0.0
    temperature: float = 2.0

    def __post_init__(self) -> None:
        values = (self.task, self.kd, self.lrs, self.temperature)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise ValueError(f"loss weights and temperature must be finite numbers, got {self}")
        if min(self.task, self.kd, self.lrs) < 0 or self.task + self.kd + self.lrs == 0:
            raise ValueError(f"loss weights must be >= 0 and not all zero, got {self}")

    @property
    def needs_teacher(self) -> bool:
        return self.kd > 0 or self.lrs > 0


# the most memory a teacher's cached outputs may take (LRS states dominate: a SQuAD window's two upper layers are
# 0.6 MB in fp32, so 2,000 questions' 4,500 windows take 2.7 GB); above it the teacher runs in every step instead
TEACHER_CACHE_MAX_BYTES = 6 * 2 ** 30

PAPER_SQUAD_WEIGHTS = LossWeights(task=0.7, kd=1.1, lrs=0.5)  # the paper's BERT-base SQuAD setting
PAPER_RACE_WEIGHTS = LossWeights(task=0.7, kd=0.4, lrs=0.4)
TASK_LOSS_ONLY = LossWeights()


def _head(model: torch.nn.Module) -> DeFormerPreTrainedModel:
    """The task head itself, where a multi-process run wraps it (its methods and label names are the head's)."""
    return getattr(model, "module", model)


def deformer_loss(weights: LossWeights):
    """`loss_fn(model, batch, teacher)` for `train.train`: the weighted sum, leaving out switched-off terms. The
    head computes its task loss from the batch's labels and says what KD and LRS compare; the teacher is the
    fine-tuned original model, run in the step, or its outputs computed once (`teacher_outputs`)."""

    def loss_fn(model, batch, teacher):
        head, inputs = _head(model), model_inputs(batch)
        out = model(**inputs, **{k: batch[k] for k in head.label_names}, output_upper_hidden_states=weights.lrs > 0)
        terms = {"task": out.loss}
        if weights.needs_teacher:
            if teacher is None:
                raise ValueError("KD and LRS need the fine-tuned original model as teacher")
            upper = len(out.upper_hidden_states) if weights.lrs > 0 else 0
            t = teacher(batch) if isinstance(teacher, TeacherOutputs) else teacher_targets(teacher, batch, upper)
            if weights.kd > 0:
                terms["kd"] = kd_loss(head.distilled_logits(out), t["logits"], weights.temperature)
            if weights.lrs > 0:
                states = head.states_per_row([t[f"upper_{i}"] for i in range(upper)])
                terms["lrs"] = lrs_loss(out.upper_hidden_states, states, head.joint_attention_mask(inputs))
        return weighted_sum(terms, {"task": weights.task, "kd": weights.kd, "lrs": weights.lrs})

    return loss_fn


def teacher_targets(teacher: DeFormerPreTrainedModel, batch: dict, upper_layers: int) -> dict:
    """What a student is distilled towards: the teacher's logits (KD) and the states of its last `upper_layers`
    layers (LRS: a student with k lower layers matches the teacher's layers above k), kept per training row."""
    with torch.no_grad():
        t = teacher(**model_inputs(batch), output_upper_hidden_states=upper_layers > 0)
    logits = teacher.distilled_logits(t)
    upper = t.upper_hidden_states[len(t.upper_hidden_states) - upper_layers:] if upper_layers else ()
    upper = teacher.states_per_example(upper, len(logits))
    return {"logits": logits, **{f"upper_{i}": h for i, h in enumerate(upper)}}


def teacher_outputs(teacher: DeFormerPreTrainedModel, segments: Segments, upper_layers: int,
                    progress: bool = True) -> TeacherOutputs:
    """`teacher_targets` of every training row, computed once on first use (see `core.teacher_cache`)."""
    def outputs_of(batch: dict) -> dict:
        return teacher_targets(teacher.to(next(iter(batch.values())).device).eval(), batch, upper_layers)

    return TeacherOutputs(outputs_of, segments.tensors, progress=progress)


def fine_tune(task: DeFormerTask, model: DeFormerPreTrainedModel, train_segments: Segments, config: TrainConfig,
              weights: LossWeights = TASK_LOSS_ONLY, teacher: DeFormerPreTrainedModel | TeacherOutputs | None = None
              ) -> tuple[DeFormerPreTrainedModel, TrainResult]:
    """Train (or resume, or find already trained in `output_dir`) and return the trained model from disk.

    No checkpoint selection: the last epoch is kept (SQuAD has no labelled split besides the dev set we report on).
    """
    k = model.config.split_layer
    rows = TensorDictDataset(train_segments.tensors, index=isinstance(teacher, TeacherOutputs))
    return train_and_reload(model, rows, deformer_loss(weights),
                            config, teacher=teacher if weights.needs_teacher else None,
                            load=lambda path: task.load_model(path, split_layer=k))


def run_record(result: TrainResult, weights: LossWeights, split_layer: int, examples: int) -> dict:
    """One row for a notebook's training table."""
    return {"split_layer": split_layer, "train_rows": examples, **{f"w_{k}": v for k, v in asdict(weights).items()},
            "steps": result.global_step, "train_seconds": round(result.seconds, 1),
            "final_train_loss": result.history[-1]["train_loss"] if result.history else float("nan")}


# ----------------------------------------------------------------------------------------------------------------
# One experiment: a task, its data sample and training settings, the fine-tuned original model and DeFormers.


@dataclass(frozen=True)
class DeFormerRecipe(RecipeBase):
    """Everything that decides what is trained and evaluated, so that notebooks sharing a recipe (20, 23, 24) share
    its trained models: each model lives in a folder named by a hash of the settings it depends on."""

    task: str
    question_length: int
    passage_length: int
    doc_stride: int | None = None  # SQuAD windows (BERT's meaning: the step between window starts)
    train_examples: int | None = None  # a fixed sample of the train split (seed 0); None: all
    eval_examples: int | None = None  # a fixed sample of the evaluation split (seed 0); None: all
    eval_split: str = "validation"
    epochs: int = 1  # the original model's fine-tuning
    deformer_epochs: int = 1
    lr: float = 5e-5


def paper_split_layer(num_layers: int) -> int:
    """The paper's share of separately encoded layers (9 of 12 for BERT-base), rounded down: for 6 layers, 4 lower
    and 2 upper, which keeps at least the paper's quarter of joint layers (rounding up would leave one in six)."""
    return max(1, num_layers * 9 // 12)


class DeFormerExperiment:
    def __init__(self, recipe: DeFormerRecipe, backbone: str, out_dir: str | Path, progress: bool = True) -> None:
        from pairlib.core.backbone import load_tokenizer, task_backbone
        backbone = task_backbone(backbone, recipe.task)  # me5-small: its vocabulary pruned to the task's text
        self.recipe, self.backbone, self.progress = recipe, backbone, progress
        self.task = deformer_task(recipe.task, load_tokenizer(backbone), recipe.question_length,
                                 recipe.passage_length, recipe.doc_stride)
        self.out_dir = Path(out_dir)
        self.train_set = self.task.load("train", recipe.train_examples)
        self.eval_set = self.task.load(recipe.eval_split, recipe.eval_examples)
        self.train_segments = self.task.segments(self.train_set, train=True)
        self.eval_segments = self.task.segments(self.eval_set)
        self.records: list[dict] = []
        self._baseline: DeFormerPreTrainedModel | None = None
        self._teacher_cache: tuple[tuple, TeacherOutputs] | None = None

    def artifact_dir(self, name: str, **extra) -> Path:
        """The folder of a model (or cache) of this experiment, named by everything it depends on."""
        return artifact_dir(self.out_dir, f"deformer-{self.recipe.task}-{name}",
                            {"backbone": backbone_identity(self.backbone), **self.recipe.model_settings(), **extra})

    def _fit(self, name: str, model, weights: LossWeights, teacher, epochs: int, segments: Segments, **extra):
        r = self.recipe
        out = self.artifact_dir(name, **extra)
        trained, result = fine_tune(self.task, model, segments,
                                    r.train_config(out, progress=self.progress, epochs=epochs, lr=r.lr), weights,
                                    teacher)
        if all(r["folder"] != out.name for r in self.records):  # a model read back again (or recorded): one row
            self.records.append({"model": name, "folder": out.name,
                                 **run_record(result, weights, trained.config.split_layer, len(segments))})
        return trained

    def baseline(self) -> DeFormerPreTrainedModel:
        """The original model fine-tuned on the task (k=0): the reference and DeFormer's teacher."""
        if self._baseline is None:
            seed_new_weights(self.recipe.seed)
            model = self.task.new_model(self.backbone, split_layer=0, **self.recipe.config_overrides())
            self._baseline = self._fit("original", model, TASK_LOSS_ONLY, None, self.recipe.epochs,
                                       self.train_segments)
        return self._baseline

    def deformer(self, split_layer: int, weights: LossWeights, train_examples: int | None = None,
                 epochs: int | None = None) -> DeFormerPreTrainedModel:
        """DeFormer initialised from the fine-tuned original model and fine-tuned with `weights`; `train_examples`
        below the recipe's trains on the first part of the same sample (a cheaper run, e.g. for the k sweep)."""
        base = self.baseline()
        model = self.task.load_model(self.original_dir, split_layer=split_layer)
        segments = self.train_segments
        if train_examples is not None and train_examples < len(self.train_set):
            segments = self.task.segments(self.train_set.select(range(train_examples)), train=True)
        name, settings = self._deformer_id(split_layer, weights, train_examples)
        teacher = (self._teacher_outputs(base, segments, train_examples, model, weights) if weights.needs_teacher
                   else None)
        return self._fit(name, model, weights, teacher, epochs or self.recipe.deformer_epochs, segments, **settings)

    @staticmethod
    def _deformer_id(split_layer: int, weights: LossWeights, train_examples: int | None = None) -> tuple[str, dict]:
        """A DeFormer's folder name and the settings that, beside the recipe's, name its folder."""
        name = f"k{split_layer}-task{weights.task:g}-kd{weights.kd:g}-lrs{weights.lrs:g}"
        return name, {"split_layer": split_layer, "loss_weights": asdict(weights), "subset": train_examples}

    def recorded_metrics(self, split_layer: int, weights: LossWeights, ds, segments: Segments) -> dict[str, float]:
        """The metrics on `ds` of the original model (`split_layer` 0) or of a DeFormer, read from the ledger
        (`core.ledger`) when a run, on this machine or another, recorded them; else the model is trained (or read
        back) and evaluated and the result recorded. For a study longer than a machine keeps its disk (notebook 25):
        its training table (`records`) then shows each row's machine and date. A DeFormer's entry names the weights
        of the original model it started from, so a reader can check they are the ones whose scores are shown."""
        if split_layer == 0:
            if weights != TASK_LOSS_ONLY:
                raise ValueError(f"the original model (split_layer 0) trains with the task loss only, not {weights}")
            model_dir = self.artifact_dir("original")
        else:
            name, settings = self._deformer_id(split_layer, weights)
            model_dir = self.artifact_dir(name, **settings)
        sample = tensors_fingerprint(segments.tensors)
        found = ledger.recorded_metrics(self.out_dir, model_dir, sample)
        if found is None:
            model = self.baseline() if split_layer == 0 else self.deformer(split_layer, weights)
            scores = self.evaluate(model, ds, segments)
            trained = next(r for r in self.records if r["folder"] == model_dir.name)
            start = {} if split_layer == 0 else {"initialised_from": weights_fingerprint(self.baseline())}
            found = ledger.record(self.out_dir, model_dir, trained, sample, scores, hardware_label(),
                                  weights_fingerprint(model), **start), scores
        training, scores = found
        self.records = [r for r in self.records if r["folder"] != model_dir.name] + [dict(training)]
        return dict(scores)

    def _teacher_outputs(self, teacher, segments: Segments, subset: int | None, student,
                         weights: LossWeights) -> TeacherOutputs | DeFormerPreTrainedModel:
        """The teacher's outputs on these rows, computed on first use and kept for the next student of the same
        rows and split layer (notebook 24 trains several); one set at a time, since a SQuAD sample's take GBs. Rows
        whose outputs would not fit in `TEACHER_CACHE_MAX_BYTES` get the live teacher instead."""
        upper = student.config.num_hidden_layers - student.config.split_layer if weights.lrs > 0 else 0
        question = segments.tensors["question_input_ids"][0]  # (question_length,), or (options, question_length)
        joint_rows = question.numel() // question.shape[-1]  # one joint sequence per option for RACE
        tokens = joint_rows * (question.shape[-1] + segments.tensors["passage_input_ids"].shape[-1])
        if len(segments) * upper * tokens * student.config.hidden_size * 4 > TEACHER_CACHE_MAX_BYTES:
            return teacher
        key = (subset if segments is not self.train_segments else None, upper)
        if self._teacher_cache is None or self._teacher_cache[0] != key:
            self._teacher_cache = key, teacher_outputs(teacher, segments, upper, self.progress)
        return self._teacher_cache[1]

    def release_teacher_outputs(self) -> None:
        """Frees the kept teacher outputs (GBs for a SQuAD sample), for a study that trains at several budgets in
        one process (notebook 25) and needs one budget's at a time."""
        self._teacher_cache = None

    @property
    def original_dir(self) -> Path:
        return self.artifact_dir("original") / "best"

    def split(self, split_layer: int) -> DeFormerPreTrainedModel:
        """The fine-tuned original model's weights loaded with k>0 and not trained further."""
        self.baseline()
        return self.task.load_model(self.original_dir, split_layer=split_layer)

    def cache(self, model: DeFormerPreTrainedModel, rows: int | None = None, segments: Segments | None = None):
        """The evaluation passages (of the first `rows` rows, or all; or of other `segments`, e.g. another
        notebook's evaluation pairs) encoded by `model` up to its layer k, on disk."""
        import hashlib

        from pairlib.deformer.cache import PassageCache
        extra = {}
        if segments is not None:
            extra["passages"] = hashlib.sha1("\n".join(segments.passage_ids).encode()).hexdigest()[:12]
        segments = self.eval_segments if segments is None else segments
        segments = segments if rows is None else segments.head(rows)
        path = self.artifact_dir(f"cache-k{model.config.split_layer}", fingerprint=lower_layers_fingerprint(model),
                                 rows=rows, **extra) / "passages.safetensors"
        return PassageCache.from_inputs(model, segments.passage_ids, segments.tensors["passage_input_ids"],
                                        segments.tensors["passage_attention_mask"], str(path))

    def evaluate(self, model: DeFormerPreTrainedModel, ds=None, segments: Segments | None = None) -> dict[str, float]:
        """The model's metrics on the evaluation sample (or on `ds` and its `segments`, e.g. a sample that several
        experiments share), its logits kept under `artifacts/` for a re-run that reads the model back. On the own
        sample, SQuAD's answers are also kept, under `<out_dir>/predictions/`, named by the model's folder and split
        layer, for scoring or comparing elsewhere."""
        own = ds is None
        if own:
            ds, segments = self.eval_set, self.eval_segments
        elif segments is None:
            segments = self.task.segments(ds)
        answers = self.predictions_file(model) if own and self.task.writes_predictions else None
        return self.task.evaluate(model, ds, segments, progress=self.progress, predictions_file=answers,
                                  kept_in=self.out_dir / "artifacts" / f"deformer-{self.task.name}-eval-logits")

    def predictions_file(self, model: DeFormerPreTrainedModel) -> Path:
        folder = Path(model.config._name_or_path or "unsaved").parent.name or "unsaved"
        return self.out_dir / "predictions" / f"{folder}-k{model.config.split_layer}.json"
