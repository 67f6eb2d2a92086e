"""DiPair's experiment: a cross-encoder teacher, a pool of unlabeled pairs it scores, and students distilled from
those scores (DiPair, small cross-encoders, dual encoders); what notebooks 40-43 call.

The teacher is fine-tuned on the labelled pairs. The distillation pool pairs each of many queries with several
passages (its own, others of its article, others at random), far more pairs than are labelled; the teacher's
logits on it are cached on disk. Students learn to reproduce those logits (MSE), optionally plus the label loss
where labels exist. DiPair trains in two stages (encoders frozen, then everything) or end to end. With the encoders
frozen, stage 1 encodes the pool once and trains the projections and head on those states for many epochs: at
MiniLM's cost on 2 cores, a stage 1 that re-ran the encoders every step got 300 steps and left the head near the
mean of the teacher's logits (an earlier `cpu` run of 41).
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from pairlib.core import data, metrics
from pairlib.core.artifacts import artifact_dir, kept_outputs, written_atomically
from pairlib.core.backbone import backbone_identity, load_tokenizer, task_backbone
from pairlib.core.progress import bar
from pairlib.core.recipe import RecipeBase
from pairlib.core.train import (
    TensorDictDataset,
    TrainConfig,
    TrainResult,
    finished_result,
    saved_state_file,
    seed_new_weights,
    train,
    train_and_reload,
)
from pairlib.dipair.modeling import (
    DIPAIR_SETTINGS,
    CrossEncoder,
    DiPairModel,
    DualEncoder,
    EncodedSide,
    TwoEncoderModel,
)

SCHEDULES = ("two-stage", "end-to-end")


@dataclass(frozen=True)
class DiPairRecipe(RecipeBase):
    task: str = "squad_q2p"
    query_length: int = 32  # the paper's query encoder length
    passage_length: int = 128  # the paper's passage encoder length
    cross_length: int = 160  # the teacher reads query and passage together
    train_examples: int | None = None  # labelled train pairs for the teacher (seed 0 sample); None: all
    eval_examples: int | None = None  # evaluation pairs, whole queries kept together; None: all
    eval_split: str = "test"
    pool_queries: int = 16  # distillation pool: this many train queries ...
    pool_passages: int = 4  # ... each with this many passages (its own, same-article, random)
    teacher_epochs: int = 1
    teacher_lr: float = 5e-5
    student_epochs: int = 1  # stage 2 (everything trained), or the whole end-to-end run
    student_lr: float = 5e-5
    stage1_epochs: int = 1  # stage 1: encoders frozen, only the new layers train (DiPair: on states computed once)
    stage1_lr: float = 3e-4  # 1e-3 left the transformer head underfitting (docs/dipair.md)
    # the layers the backbone lacks (score layers, DiPair's projections and head) start untrained when a student
    # trains end to end: they learn at this lr; None: at student_lr like the encoders, as before
    new_layer_lr: float | None = 3e-4
    # in stage 2 the new layers were trained in stage 1 already: their lr there (None: student_lr, as before)
    stage2_head_lr: float | None = None
    # DE-Cos's scale and bias fitted to the teacher's pool scores before distillation (else 10 and 0)
    calibrate_cosine: bool = True

    def settings_for(self, model: str) -> dict:
        """The fields a `model` ('teacher', 'pool', 'end-to-end' or 'two-stage' student) depends on, which name its
        artifact folder: a change to a student's settings must not retrain the teacher or students it cannot affect
        (a 20-minute teacher on 2 cores), and the evaluation settings affect no model."""
        if model not in MODEL_DEPENDENCIES:
            raise ValueError(f"model must be one of {list(MODEL_DEPENDENCIES)}, got {model!r}")
        settings = self.model_settings()
        names: list[str] = ["precision", "data", "schema"]  # what every model shares (RecipeBase.model_settings)
        names += [n for n in self.NAMED_WHEN_SET if n in settings]  # e.g. attention dropout, where it is set
        for kind, own in MODEL_DEPENDENCIES.items():
            names += own
            if kind == model:
                return {name: settings[name] for name in names}
        raise AssertionError("unreachable")


# each kind of model depends on its own fields and on those of every kind before it (the teacher scores the pool,
# whose scores the students learn; two-stage training adds stage 1 to end-to-end's fields)
MODEL_DEPENDENCIES = {
    "teacher": ("task", "cross_length", "train_examples", "teacher_epochs", "teacher_lr", "batch_size",
                "warmup_ratio", "seed", "max_steps"),
    "pool": ("pool_queries", "pool_passages"),
    "end-to-end": ("query_length", "passage_length", "student_epochs", "student_lr", "new_layer_lr",
                   "calibrate_cosine"),
    "two-stage": ("stage1_epochs", "stage1_lr", "stage2_head_lr"),
}



def encode_pairs(tokenizer, queries: list[str], passages: list[str], query_length: int, passage_length: int,
                 cross_length: int) -> dict[str, torch.Tensor]:
    """Both views of each pair: joint (for cross-encoders) and separate (for dual encoders and DiPair)."""
    cross = tokenizer(queries, passages, padding="max_length", truncation="longest_first", max_length=cross_length,
                      return_tensors="pt")
    q = tokenizer(queries, padding="max_length", truncation=True, max_length=query_length, return_tensors="pt")
    p = tokenizer(passages, padding="max_length", truncation=True, max_length=passage_length, return_tensors="pt")
    return {"input_ids": cross["input_ids"], "attention_mask": cross["attention_mask"],
            "token_type_ids": cross["token_type_ids"], "query_input_ids": q["input_ids"],
            "query_attention_mask": q["attention_mask"], "passage_input_ids": p["input_ids"],
            "passage_attention_mask": p["attention_mask"]}


def _features(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k not in ("labels", "targets")}


def label_loss(model, batch, _teacher=None):
    return F.binary_cross_entropy_with_logits(model(**_features(batch)), batch["labels"].float())


def score_loss(model, batch, _teacher=None):
    """MSE to the teacher's logits (the paper's distillation loss)."""
    return F.mse_loss(model(**_features(batch)), batch["targets"])


def whole_queries(ds, n: int | None, seed: int = 0):
    """A sample of about n pairs that keeps each query's candidates together (so MRR stays meaningful)."""
    if n is None or n >= len(ds):
        return ds
    ids = list(dict.fromkeys(ds["query_id"]))
    per_query = len(ds) / len(ids)
    keep = set(random.Random(seed).sample(ids, max(1, round(n / per_query))))
    return ds.select([i for i, q in enumerate(ds["query_id"]) if q in keep])


def distillation_pool(ds, queries: int, passages_per_query: int, seed: int = 0) -> pd.DataFrame:
    """Unlabeled (query, passage) pairs: each sampled query with its own passage, the others of its article, and
    random ones, up to `passages_per_query`. Labels are not kept: the teacher's scores are the targets."""
    rng = random.Random(seed)
    frame = ds.select_columns(["query_id", "query", "passage_id", "passage"]).to_pandas()
    texts = frame.drop_duplicates("passage_id").set_index("passage_id").passage
    article = {pid: pid.split("-")[0] for pid in texts.index}
    by_article: dict[str, list[str]] = {}
    for pid, a in article.items():
        by_article.setdefault(a, []).append(pid)
    own = frame.drop_duplicates("query_id").set_index("query_id")
    chosen = rng.sample(list(own.index), min(queries, len(own)))
    all_ids = list(texts.index)
    rows = []
    for qid in chosen:
        q, pid = own.loc[qid, "query"], own.loc[qid, "passage_id"]
        picks = [pid] + [p for p in by_article[article[pid]] if p != pid][: max(0, passages_per_query // 2 - 1)]
        while len(picks) < passages_per_query:
            p = rng.choice(all_ids)
            if p not in picks:
                picks.append(p)
        rows += [{"query_id": qid, "query": q, "passage_id": p, "passage": texts[p]} for p in picks]
    return pd.DataFrame(rows)


@torch.inference_mode()
def predict(model: torch.nn.Module, tensors: dict[str, torch.Tensor], batch_size: int = 128,
            progress: bool = True) -> torch.Tensor:
    model.eval()
    n = len(tensors["input_ids"])
    out = []
    for lo in bar(range(0, n, batch_size), desc="score", show=progress):
        out.append(model(**{k: v[lo:lo + batch_size] for k, v in _features(tensors).items()}).float())
    return torch.cat(out)


class HeadOnKeptStates(nn.Module):
    """DiPair's new layers (projections and head) reading encoder states computed once: stage 1 with the encoders
    frozen costs one encoder pass over the pool instead of one per epoch, so the head can train for many epochs.
    The modules are the model's own, so training this trains the model. The states are buffers (moved with the
    module, not saved): each unique query and passage once, indexed per pair."""

    def __init__(self, model: DiPairModel, query_states, query_mask, passage_states, passage_mask) -> None:
        super().__init__()
        self.query_projection, self.passage_projection, self.head = (model.query_projection,
                                                                     model.passage_projection, model.head)
        for name, t in [("query_states", query_states), ("query_mask", query_mask),
                        ("passage_states", passage_states), ("passage_mask", passage_mask)]:
            self.register_buffer(name, t, persistent=False)

    def forward(self, query_index: torch.Tensor, passage_index: torch.Tensor, **_) -> torch.Tensor:
        query = EncodedSide(self.query_projection(self.query_states[query_index]), self.query_mask[query_index])
        passage = EncodedSide(self.passage_projection(self.passage_states[passage_index]),
                              self.passage_mask[passage_index])
        return self.head(query, passage)


@torch.inference_mode()
def kept_states(model: DiPairModel, side: str, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    parts = [model.kept_states(side, input_ids[lo:lo + batch_size], attention_mask[lo:lo + batch_size])
             for lo in range(0, len(input_ids), batch_size)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


class DiPairExperiment:
    def __init__(self, recipe: DiPairRecipe, backbone: str, out_dir: str | Path, progress: bool = True) -> None:
        backbone = task_backbone(backbone, recipe.task)  # me5-small: its vocabulary pruned to the task's text
        self.recipe, self.backbone, self.out_dir, self.progress = recipe, backbone, Path(out_dir), progress
        self.tokenizer = load_tokenizer(backbone)
        task = data.load_task(recipe.task)
        self.train_set = data.subsample(task["train"], recipe.train_examples)
        self.eval_set = whole_queries(task[recipe.eval_split], recipe.eval_examples)
        self.pool_pairs = distillation_pool(task["train"], recipe.pool_queries, recipe.pool_passages, recipe.seed)
        self.train_tensors = self._encode(list(self.train_set["query"]), list(self.train_set["passage"]))
        self.train_tensors["labels"] = torch.tensor(list(self.train_set["label"]))
        self.eval_tensors = self._encode(list(self.eval_set["query"]), list(self.eval_set["passage"]))
        self.records: list[dict] = []
        self._teacher: CrossEncoder | None = None
        self._pool_tensors: dict[str, torch.Tensor] | None = None

    def _encode(self, queries: list[str], passages: list[str]) -> dict[str, torch.Tensor]:
        r = self.recipe
        return encode_pairs(self.tokenizer, queries, passages, r.query_length, r.passage_length, r.cross_length)

    def artifact_dir(self, name: str, depends_on: str, **extra) -> Path:
        """`depends_on`: the kind of model (see `DiPairRecipe.settings_for`), whose settings name the folder."""
        settings = {"backbone": backbone_identity(self.backbone), **self.recipe.settings_for(depends_on), **extra}
        return artifact_dir(self.out_dir, f"dipair-{self.recipe.task}-{name}", settings)

    def _config(self, out: Path, epochs: int, lr: float, frozen=(), lr_by_prefix=None) -> TrainConfig:
        return self.recipe.train_config(out, progress=self.progress, epochs=epochs, lr=lr, frozen=tuple(frozen),
                                        lr_by_prefix=lr_by_prefix or {})

    def _record(self, name: str, stage: str, out: Path, pairs: int, epochs: int, lr: float,
                result: TrainResult, new_layer_lr: float | None = None) -> None:
        self.records.append({"model": name, "stage": stage, "folder": out.name, "pairs": pairs,
                             "epochs": epochs, "lr": lr, "new_layer_lr": new_layer_lr or lr,
                             "steps": result.global_step,
                             "train_seconds": round(result.seconds, 1),
                             "final_train_loss": result.history[-1]["train_loss"] if result.history else None})

    def _fit(self, name: str, depends_on: str, model, tensors, loss_fn, epochs: int, lr: float, frozen=(),
             stage: str = "", new_layer_lr: float | None = None,
             prepare: Callable[[torch.nn.Module], None] | None = None, **extra):
        """`new_layer_lr`: the rate of the model's `new_layer_prefixes` (None: `lr`). `prepare` sets starting values
        before training; it is skipped when the model is only reloaded or resumes from a checkpoint."""
        out = self.artifact_dir(name, depends_on, **extra)
        if prepare is not None and not saved_state_file(out).exists():  # a resumed run loads its own weights
            prepare(model)
        lr_by_prefix = {} if new_layer_lr is None else dict.fromkeys(model.new_layer_prefixes, new_layer_lr)
        dataset = TensorDictDataset(tensors)
        trained, result = train_and_reload(model, dataset, loss_fn, self._config(out, epochs, lr, frozen,
                                                                                  lr_by_prefix))
        self._record(name, stage, out, len(dataset), epochs, lr, result, new_layer_lr)
        return trained

    def _fit_student(self, name: str, depends_on: str, model, epochs: int, stage: str, new_layer_lr: float | None,
                     **extra):
        """A student trained whole on the teacher's pool scores. Its new layers get their own rate: end to end they
        start untrained, and at the encoders' 5e-5 they move little in a few hundred steps while the encoders bend
        to absorb their offset from the teacher's logits; in stage 2 they were fitted in stage 1, which a lower
        rate may keep."""
        return self._fit(name, depends_on, model, self.pool(), score_loss, epochs, self.recipe.student_lr,
                         stage=stage, new_layer_lr=new_layer_lr, **extra)

    def _fit_head(self, name: str, model: DiPairModel, **extra) -> DiPairModel:
        """Stage 1: the encoders frozen, so their kept states are computed once (each unique query and passage)
        and the projections and head train on them for `stage1_epochs`."""
        r, pool = self.recipe, self.pool()
        out = self.artifact_dir(name, "two-stage", **extra)
        result = finished_result(out)
        queries = pd.factorize(self.pool_pairs.query_id)
        passages = pd.factorize(self.pool_pairs.passage_id)
        if result is None:
            # factorize numbers values in order of first appearance, so these rows hold unique 0, 1, 2, ...
            first_q = torch.tensor(pd.Series(queries[0]).drop_duplicates().index.tolist())
            first_p = torch.tensor(pd.Series(passages[0]).drop_duplicates().index.tolist())
            states = [*kept_states(model, "query", pool["query_input_ids"][first_q],
                                   pool["query_attention_mask"][first_q]),
                      *kept_states(model, "passage", pool["passage_input_ids"][first_p],
                                   pool["passage_attention_mask"][first_p])]
        else:  # finished earlier: only the trained weights are needed
            states = [torch.zeros(0)] * 4
        head = HeadOnKeptStates(model, *states)
        if result is None:
            dataset = TensorDictDataset({"query_index": torch.as_tensor(queries[0]),
                                         "passage_index": torch.as_tensor(passages[0]), "targets": pool["targets"]})
            result = train(head, dataset, None, score_loss, self._config(out, r.stage1_epochs, r.stage1_lr))
        head.load_state_dict(torch.load(Path(result.best_dir) / "model.pt"))
        self._record(name, "1 (encoders frozen, on their kept states)", out, len(self.pool_pairs),
                     r.stage1_epochs, r.stage1_lr, result)
        return model

    def teacher(self) -> CrossEncoder:
        """The full backbone as a cross-encoder, fine-tuned on the labelled pairs."""
        if self._teacher is None:
            r = self.recipe
            seed_new_weights(r.seed)
            model = CrossEncoder.from_backbone(self.backbone, **r.config_overrides())
            self._teacher = self._fit("teacher", "teacher", model, self.train_tensors, label_loss, r.teacher_epochs,
                                      r.teacher_lr)
        return self._teacher

    def pool(self) -> dict[str, torch.Tensor]:
        """The distillation pool's inputs with the teacher's logits as `targets`, scored once and kept on disk."""
        if self._pool_tensors is None:
            tensors = self._encode(list(self.pool_pairs["query"]), list(self.pool_pairs["passage"]))
            path = self.artifact_dir("pool-scores", "pool") / "teacher_logits.pt"
            if path.exists():
                targets = torch.load(path)
            else:
                targets = predict(self.teacher(), tensors, progress=self.progress)
                with written_atomically(path) as tmp:  # never a truncated file that a later run would load
                    torch.save(targets, tmp)
            tensors["targets"] = targets
            self._pool_tensors = tensors
        return self._pool_tensors

    def distil(self, name: str, model, schedule: str = "two-stage", prepare=None, **extra):
        """A student trained on the teacher's pool scores: two-stage (stage 1 with the pretrained encoders frozen,
        then everything) or end to end with one more full epoch (see below). `prepare`: see `_fit` (end to end)."""
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
        r, pool = self.recipe, self.pool()
        two_encoders = isinstance(model, TwoEncoderModel)
        if schedule == "two-stage" and isinstance(model, DiPairModel):
            model = self._fit_head(f"{name}-stage1", model, **extra)
            return self._fit_student(f"{name}-stage2", "two-stage", model, r.student_epochs, "2 (all)",
                                     r.stage2_head_lr, **extra)
        if schedule == "two-stage" and two_encoders:
            model = self._fit(f"{name}-stage1", "two-stage", model, pool, score_loss, r.stage1_epochs, r.stage1_lr,
                              frozen=model.encoder_prefixes, stage="1 (encoders frozen)", **extra)
            return self._fit_student(f"{name}-stage2", "two-stage", model, r.student_epochs, "2 (all)",
                                     r.stage2_head_lr, **extra)
        # end to end, a two-encoder student gets one more full epoch: the pass over the encoders that two-stage
        # training spends on stage 1 (once, however many head epochs follow)
        epochs = r.student_epochs + (1 if two_encoders else 0)
        return self._fit_student(f"{name}-end-to-end", "end-to-end", model, epochs, "end to end", r.new_layer_lr,
                                 prepare=prepare, **extra)

    def dipair(self, schedule: str = "two-stage", **head) -> DiPairModel:
        seed_new_weights(self.recipe.seed)
        model = DiPairModel.from_backbone(self.backbone, **head, **self.recipe.config_overrides())
        # every DiPair setting, defaults included, names the folder: a changed default is a different model
        settings = {k: getattr(model.config, k) for k in DIPAIR_SETTINGS}
        return self.distil("dipair", model, schedule, head=settings)

    def small_cross(self, layers: int) -> CrossEncoder:
        seed_new_weights(self.recipe.seed)
        return self.distil(f"cross-{layers}l", CrossEncoder.from_backbone(self.backbone, num_layers=layers,
                                                                         **self.recipe.config_overrides()),
                           "end-to-end", layers=layers)

    def dual(self, scorer: str) -> DualEncoder:
        seed_new_weights(self.recipe.seed)
        model = DualEncoder.from_backbone(self.backbone, scorer=scorer, **self.recipe.config_overrides())
        calibrate = None
        if scorer == "cosine" and self.recipe.calibrate_cosine:
            def calibrate(m: DualEncoder) -> None:
                m.calibrate(self.pool_cosines(m), self.pool()["targets"])
        return self.distil(f"de-{scorer}", model, "end-to-end", prepare=calibrate)

    def pool_cosines(self, model: DualEncoder) -> torch.Tensor:
        """The dual encoder's cosine for each pool pair (its scale and bias set aside)."""
        pool = self.pool()  # outside no_grad: it may train the teacher first
        scale, bias = model.scale.item(), model.bias.item()
        with torch.no_grad():
            model.scale.fill_(1.0)
            model.bias.fill_(0.0)
            cosines = predict(model, pool, progress=self.progress)
            model.scale.fill_(scale)
            model.bias.fill_(bias)
        return cosines

    def zero_shot_dual(self) -> DualEncoder:
        """DE-Cos with no training at all: the backbone's mean-pooled embeddings and their cosine. all-MiniLM-L6-v2
        was trained as a dual encoder on question-answer and search pairs, so this is the baseline any distilled
        student of it has to beat (its fixed scale and bias change no ranking, AUC-ROC or MRR)."""
        return DualEncoder.from_backbone(self.backbone, scorer="cosine").eval()

    def chance(self) -> dict[str, float]:
        """The evaluation's chance levels (random order within each query), beside which its metrics are read:
        about 0.61 MRR@10 on `squad_q2p` test's 3 candidates, 0.29 on test_ranked's 10."""
        return metrics.chance_levels(list(self.eval_set["label"]), list(self.eval_set["query_id"]), k=10)

    def evaluate(self, model: torch.nn.Module) -> dict[str, float]:
        scores = self.eval_scores(model).tolist()
        labels, groups = list(self.eval_set["label"]), list(self.eval_set["query_id"])
        return {**metrics.compute("auc_roc", predictions=scores, references=labels),
                **metrics.compute("ranking", predictions=scores, references=labels, groups=groups, k=10)}

    def eval_scores(self, model: torch.nn.Module) -> torch.Tensor:
        """The model's scores on the evaluation pairs, kept on disk (see `kept_outputs`)."""
        return kept_outputs(self.out_dir / "artifacts" / f"dipair-{self.recipe.task}-eval-scores", model,
                            _features(self.eval_tensors),
                            lambda: predict(model, self.eval_tensors, progress=self.progress))
