"""DeFormer's tasks: one class per kind (span QA, pair classification, multiple choice) that turns a dataset into
question and passage segments, names its model head and scores its logits; `deformer_task` picks one by name."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from pairlib.core import data, metrics
from pairlib.core.artifacts import kept_outputs, written_atomically
from pairlib.core.backbone import quiet_transformers
from pairlib.core.progress import bar
from pairlib.deformer.inputs import Segments, best_spans, choice_segments, pair_segments, squad_segments
from pairlib.deformer.modeling import (
    DeFormerForMultipleChoice,
    DeFormerForQuestionAnswering,
    DeFormerForSequenceClassification,
    DeFormerPreTrainedModel,
)

# Pair tasks: (the column read jointly with the cached one, the column cached). The paper caches BoolQ's passage,
# MNLI's premise and QQP's first question (Table 2); the data's text_columns keep the pairs' natural order.
PAIR_COLUMNS = {"boolq": ("question", "passage"), "squad_q2p": ("query", "passage"),
                "mnli": ("hypothesis", "premise"), "qqp": ("question2", "question1")}


def pair_columns(task: str) -> tuple[str, str]:
    """(the column read jointly, the column cached) of a pair task: the paper's choice for its tasks, else the
    task's own order (a user's pairs: the second text is cached, as DeFormer caches a passage)."""
    return PAIR_COLUMNS.get(task) or tuple(data.get_task(task).text_columns)


def model_inputs(batch: dict) -> dict:
    return {k: v for k, v in batch.items() if k.startswith(("question_", "passage_"))}


@torch.inference_mode()
def predict(model: DeFormerPreTrainedModel, segments: Segments, batch_size: int = 64,
            progress: bool = True) -> torch.Tensor:
    """The head's logits for every row (spans: (rows, 2, passage_length)), computed without any cache."""
    model.eval()
    device = next(model.parameters()).device
    chunks = []
    for lo in bar(range(0, len(segments), batch_size), desc="predict", show=progress):
        batch = {k: v.to(device) for k, v in model_inputs(segments.rows(slice(lo, lo + batch_size))).items()}
        chunks.append(model.distilled_logits(model(**batch)).float().cpu())
    return torch.cat(chunks)


class DeFormerTask:
    """One task at one set of segment lengths: its inputs, its model head and its metric. One subclass per kind of
    task (`SpanTask`, `PairTask`, `ChoiceTask`); `deformer_task` picks it by the task's name."""

    head: type[DeFormerPreTrainedModel]
    metric = "accuracy"
    writes_predictions = False  # the official answer file (SQuAD)

    def __init__(self, name: str, tokenizer, question_length: int, passage_length: int, doc_stride: int | None = None,
                 max_answer_length: int = 30) -> None:
        self.name, self.tokenizer = name, tokenizer
        self.question_length, self.passage_length = question_length, passage_length
        self.doc_stride = doc_stride if doc_stride is not None else max(1, (passage_length - 1) // 2)
        self.max_answer_length = max_answer_length

    def settings(self) -> dict:
        return {"task": self.name, "question_length": self.question_length, "passage_length": self.passage_length,
                "doc_stride": self.doc_stride, "max_answer_length": self.max_answer_length}

    def load(self, split: str, n: int | None, seed: int = 0):
        return data.subsample(data.load_task(self.name, split), n, seed=seed)

    def segments(self, ds, train: bool = False) -> Segments:
        raise NotImplementedError

    def new_model(self, backbone: str, split_layer: int = 0, **config) -> DeFormerPreTrainedModel:
        return self.head.from_backbone(backbone, split_layer=split_layer, **config)

    def load_model(self, path: str | Path, split_layer: int | None = None) -> DeFormerPreTrainedModel:
        kw = {"split_layer": split_layer} if split_layer is not None else {}
        with quiet_transformers():
            return self.head.from_pretrained(path, **kw)

    def score(self, logits: torch.Tensor, ds, segments: Segments,
              predictions_file: str | Path | None = None) -> dict[str, float]:
        return metrics.compute("accuracy", predictions=logits.argmax(-1).tolist(),
                               references=[int(x) for x in ds["label"]])

    def evaluate(self, model: DeFormerPreTrainedModel, ds, segments: Segments | None = None,
                 batch_size: int = 64, progress: bool = True, predictions_file: str | Path | None = None,
                 kept_in: Path | None = None) -> dict[str, float]:
        """`kept_in`: a folder where the logits are kept and found again (see `kept_outputs`)."""
        segments = segments if segments is not None else self.segments(ds)
        compute = lambda: predict(model, segments, batch_size, progress)  # noqa: E731
        logits = compute() if kept_in is None else kept_outputs(kept_in, model, segments.tensors, compute)
        return self.score(logits, ds, segments, predictions_file)


class SpanTask(DeFormerTask):
    """SQuAD: windows over the passage, an answer span in each; F1 and EM of the best span per question."""

    head = DeFormerForQuestionAnswering
    metric = "f1"
    writes_predictions = True

    def segments(self, ds, train: bool = False) -> Segments:
        answers = list(ds["answers"])
        return squad_segments(self.tokenizer, list(ds["question"]), list(ds["context"]), self.question_length,
                              self.passage_length, self.doc_stride,
                              answer_starts=[a["answer_start"][0] for a in answers] if train else None,
                              answer_texts=[a["text"][0] for a in answers] if train else None)

    def score(self, logits: torch.Tensor, ds, segments: Segments,
              predictions_file: str | Path | None = None) -> dict[str, float]:
        """F1 and EM; the answers are also written to `predictions_file` in the official `{question id: answer
        text}` format, which the official evaluate-v1.1.py script scores."""
        answers = best_spans(logits[:, 0], logits[:, 1], segments, list(ds["context"]), self.max_answer_length)
        if predictions_file is not None:
            write_predictions(dict(zip(ds["id"], answers)), predictions_file)
        return metrics.compute("squad_v1", predictions=answers, references=[a["text"] for a in ds["answers"]])


class PairTask(DeFormerTask):
    """A text pair classified from the question segment's [CLS], the other text cached (`PAIR_COLUMNS`)."""

    head = DeFormerForSequenceClassification

    def segments(self, ds, train: bool = False) -> Segments:
        question, passage = pair_columns(self.name)
        return pair_segments(self.tokenizer, list(ds[question]), list(ds[passage]), self.question_length,
                             self.passage_length, [int(x) for x in ds["label"]])

    def new_model(self, backbone: str, split_layer: int = 0, **config) -> DeFormerPreTrainedModel:
        return self.head.from_backbone(backbone, split_layer=split_layer,
                                       num_labels=len(data.get_task(self.name).label_names), **config)


class ChoiceTask(DeFormerTask):
    """RACE: each option fills or follows its question in the question segment; the article is cached."""

    head = DeFormerForMultipleChoice

    def segments(self, ds, train: bool = False) -> Segments:
        return choice_segments(self.tokenizer, list(ds["question"]), list(ds["options"]), list(ds["article"]),
                               self.question_length, self.passage_length, [int(x) for x in ds["label"]])


TASKS: dict[str, type[DeFormerTask]] = {"squad": SpanTask, "race": ChoiceTask,
                                        **{name: PairTask for name in PAIR_COLUMNS}}


def deformer_task(name: str, tokenizer, question_length: int, passage_length: int, doc_stride: int | None = None,
                  max_answer_length: int = 30) -> DeFormerTask:
    """The task `name` at these segment lengths."""
    kind = TASKS.get(name) or (PairTask if data.get_task(name).kind in ("pair_cls", "pair_match") else None)
    if kind is None:
        raise ValueError(f"DeFormer runs on {sorted(TASKS)} and on pair tasks of your own (data.user), not {name!r}")
    return kind(name, tokenizer, question_length, passage_length, doc_stride, max_answer_length)


def write_predictions(answers: dict[str, str], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(path) as tmp:
        tmp.write_text(json.dumps(answers, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
