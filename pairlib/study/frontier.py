"""Every method on one pair task, one evaluation set, one machine and one process: quality against serving cost,
and the Pareto frontier (notebook 91). None of the three papers compares itself with the other two.

Serving cost is counted as each method is deployed for query-passage scoring: passages are known in advance, so
whatever a method computes from the passage alone is precomputed (DeFormer's lower layers, taken from its passage
cache held in memory inside the timed call; DiPair's and the dual encoders' passage encoder), and everything that
depends on the query is paid for every pair (DiPair's and the dual encoders' query encoder included, which the
DiPair paper's head-only speed leaves out). Cross-encoders and FastBERT read each pair whole. One candidate passage
per query is the worst case for the two-encoder methods: scoring many candidates per query would share the query's
encoding.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
import torch

from pairlib.core import metrics
from pairlib.core.measure import count_flops, hardware_label, time_side_by_side
from pairlib.deformer.bench import cached_answer_fn, eager_attention
from pairlib.deformer.cache import PassageCache
from pairlib.deformer.experiment import DeFormerExperiment, DeFormerRecipe
from pairlib.deformer.inputs import Segments
from pairlib.deformer.modeling import DeFormerPreTrainedModel
from pairlib.deformer.tasks import model_inputs
from pairlib.deformer.tasks import predict as deformer_predict
from pairlib.dipair.bench import scoring_fn
from pairlib.dipair.experiment import DiPairExperiment, DiPairRecipe
from pairlib.dipair.experiment import predict as pair_predict
from pairlib.dipair.modeling import CrossEncoder, DiPairModel, DualEncoder
from pairlib.fastbert.modeling import FastBertForSequenceClassification

# (lo, hi) -> a zero-argument call that scores rows lo:hi of the evaluation set as served (inputs prepared before)
Server = Callable[[int, int], Callable[[], object]]


@dataclass
class Candidate:
    """One point of the frontier: a method at one setting, its scores on the shared evaluation pairs and how it is
    served. `models` are switched to eager attention while FLOPs are counted."""

    name: str
    method: str
    scores: list[float]
    serve: Server
    models: tuple[torch.nn.Module, ...]
    extra: dict = field(default_factory=dict)


def shared_pair_settings(r: DiPairRecipe) -> dict:
    """What every method trained on the DiPair task shares with its cross-encoder teacher: the labelled pairs, the
    evaluation split, the learning rate, batch size and warm-up, and how often a run leaves a checkpoint to resume
    from (an hour-long model stopped part-way otherwise starts over)."""
    return {"task": r.task, "train_examples": r.train_examples, "eval_examples": r.eval_examples,
            "eval_split": r.eval_split, "lr": r.teacher_lr, "batch_size": r.batch_size, "warmup_ratio": r.warmup_ratio,
            "save_every_steps": r.save_every_steps}


def deformer_on_pairs(pairs: DiPairExperiment, deformer_epochs: int, out_dir) -> DeFormerExperiment:
    """DeFormer trained with the teacher's recipe: its question segment is DiPair's query length and its passage
    segment the rest of the cross-encoder's, so that it reads what the cross-encoder reads (notebooks 91 and 94 share
    its models)."""
    r = pairs.recipe
    return DeFormerExperiment(DeFormerRecipe.from_dict({
        **shared_pair_settings(r), "question_length": r.query_length, "passage_length": r.cross_length - r.query_length,
        "epochs": r.teacher_epochs, "deformer_epochs": deformer_epochs}), pairs.backbone, out_dir)


def pair_model_candidate(name: str, method: str, model: torch.nn.Module, tensors: dict[str, torch.Tensor],
                         progress: bool = False) -> Candidate:
    """A cross-encoder (pairs read whole) or a two-encoder model (DiPair, DE-Cos, DE-FFNN: passages cached, the
    query encoded per pair) on `encode_pairs` tensors."""
    if not isinstance(model, (CrossEncoder, DiPairModel, DualEncoder)):
        raise TypeError(f"{type(model).__name__} is not a cross-encoder, DiPair or dual encoder")
    scores = pair_predict(model, tensors, progress=progress).tolist()
    serve = lambda lo, hi: scoring_fn(model, tensors, slice(lo, hi), query_cached=False)  # noqa: E731
    return Candidate(name, method, scores, serve, (model,))


@torch.inference_mode()
def fastbert_candidate(name: str, model: FastBertForSequenceClassification, tensors: dict[str, torch.Tensor],
                       speed: float, batch_size: int = 64) -> Candidate:
    """FastBERT at one speed: every pair predicted adaptively in batches (exited pairs leave the batch)."""
    model.eval()
    keys = ("input_ids", "attention_mask", "token_type_ids")
    rows = lambda lo, hi: {k: tensors[k][lo:hi] for k in keys}  # noqa: E731
    logits, exits = [], []
    for lo in range(0, len(tensors["input_ids"]), batch_size):
        out = model.adaptive_predict(**rows(lo, lo + batch_size), speed=speed)
        logits.append(out.logits)
        exits.append(out.exit_layer)

    def serve(lo: int, hi: int) -> Callable[[], object]:
        inputs = rows(lo, hi)
        return lambda: model.adaptive_predict(**inputs, speed=speed)

    return Candidate(name, "FastBERT", metrics.pair_scores(torch.cat(logits)).tolist(), serve, (model,),
                     {"speed": speed, "mean_exit_layer": torch.cat(exits).float().mean().item()})


def deformer_candidate(name: str, model: DeFormerPreTrainedModel, segments: Segments, cache: PassageCache,
                       progress: bool = False) -> Candidate:
    """DeFormer answering from its passage cache (k > 0), or the original model (k = 0) reading pairs whole."""
    logits = deformer_predict(model, segments, progress=progress)
    k = model.config.split_layer

    def serve(lo: int, hi: int) -> Callable[[], object]:
        if k == 0:
            inputs = model_inputs(segments.rows(slice(lo, hi)))
            return torch.inference_mode()(lambda: model(**inputs))
        return torch.inference_mode()(cached_answer_fn(model, segments, cache, slice(lo, hi)))

    return Candidate(name, "DeFormer" if k else "cross-encoder", metrics.pair_scores(logits).tolist(), serve, (model,),
                     {"split_layer": k})


def _batched(serve: Server, pairs: int, batch: int) -> Callable[[], None]:
    """One call scoring `pairs` pairs in batches of `batch` (all inputs prepared beforehand)."""
    calls = [serve(lo, min(lo + batch, pairs)) for lo in range(0, pairs, batch)]

    def run() -> None:
        for call in calls:
            call()
    return run


def measure_frontier(candidates: list[Candidate], labels: list[int], groups: list[str],
                     batch_sizes: tuple[int, ...] = (1, 64), timed_pairs: int = 256, repeats: int = 5) -> pd.DataFrame:
    """Quality (AUC-ROC, MRR@10 over every evaluation pair) and serving cost of every candidate: ms per pair at each
    batch size over the first `timed_pairs` pairs, all candidates interleaved in this process; FLOPs per pair
    counted with eager attention over the same pairs."""
    if len({c.name for c in candidates}) != len(candidates):
        raise ValueError("candidate names must be unique")
    for c in candidates:
        if len(c.scores) != len(labels):
            raise ValueError(f"{c.name} scored {len(c.scores)} pairs, the evaluation set has {len(labels)}")
    if timed_pairs > len(labels) or timed_pairs < max(batch_sizes):
        raise ValueError(f"timed_pairs must lie between the largest batch ({max(batch_sizes)}) and the "
                         f"evaluation pairs ({len(labels)}), got {timed_pairs}")
    rows = {c.name: {"model": c.name, "method": c.method, **c.extra,
                     **metrics.compute("auc_roc", predictions=c.scores, references=labels),
                     **metrics.compute("ranking", predictions=c.scores, references=labels, groups=groups, k=10)}
                 for c in candidates}
    models = tuple(m for c in candidates for m in c.models)
    with eager_attention(*{id(m): m for m in models}.values()), torch.inference_mode():
        for c in candidates:
            rows[c.name]["gflops_per_pair"] = count_flops(_batched(c.serve, timed_pairs, max(batch_sizes))) \
                / timed_pairs / 1e9
    with torch.inference_mode():
        for b in batch_sizes:
            fns = {c.name: _batched(c.serve, timed_pairs, b) for c in candidates}
            for name, t in time_side_by_side(fns, timed_pairs, warmup=1, repeats=repeats).items():
                rows[name][f"ms_per_pair_batch{b}"] = t.per_example_ms
                rows[name][f"pairs_per_s_batch{b}"] = t.examples_per_s
    table = pd.DataFrame(list(rows.values()))
    table.insert(0, "hardware", hardware_label())
    for b in batch_sizes:
        table[f"frontier_batch{b}"] = pareto_front(table[f"ms_per_pair_batch{b}"], table.auc_roc)
    return table


def pareto_front(cost: pd.Series | list[float], quality: pd.Series | list[float]) -> list[bool]:
    """True for the points no other point beats: none is at least as cheap and at least as good, and strictly
    better in one of the two."""
    pts = list(zip(list(cost), list(quality)))
    return [not any((c2 <= c and q2 >= q) and (c2 < c or q2 > q) for c2, q2 in pts) for c, q in pts]


TRAINING_COLUMNS = ("method", "model", "stage", "rows", "epochs", "lr", "steps", "train_seconds", "final_train_loss",
                    "settings")


def training_table(records_by_method: dict[str, list[dict]]) -> pd.DataFrame:
    """Every model trained for the frontier in one narrow table: the columns all methods share, and the rest of each
    record (DeFormer's k and loss weights, FastBERT's classifier lr, ...) as one readable `settings` string, so that
    no method's fields show as empty columns on the others' rows."""
    shared = {"model", "stage", "folder", "epochs", "lr", "steps", "train_seconds", "final_train_loss"}
    rows = []
    for method, records in records_by_method.items():
        for r in records:
            row = {"method": method, "rows": r.get("pairs", r.get("train_rows")),
                   **{k: r.get(k) for k in shared - {"folder"}}}
            rest = {k: v for k, v in r.items() if k not in shared | {"pairs", "train_rows"} and v is not None}
            row["settings"] = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in rest.items())
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(TRAINING_COLUMNS))
    for col in ("rows", "epochs", "steps"):
        table[col] = table[col].astype("Int64")  # counts stay integers where a method leaves one out
    return table
