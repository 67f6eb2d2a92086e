"""What scoring a pair costs each model, measured side by side in one process (DiPair's speed claims).

As in the paper, DiPair, DE-Cos and DE-FFNN score from cached encoder outputs (the head alone runs), while a
cross-encoder runs in full for every pair. Because caching moves the encoders' cost rather than removing it, the
end-to-end cost of scoring Q queries against P passages is also given, from measured unit costs:
cross-encoder Q*P*t_pair; DiPair Q*t_query + P*t_passage + Q*P*t_head.
"""
from __future__ import annotations

from typing import Callable

import pandas as pd
import torch

from pairlib.core.measure import hardware_label, time_side_by_side
from pairlib.dipair.modeling import CrossEncoder, DiPairModel, DualEncoder

QUERY_KEYS = ("query_input_ids", "query_attention_mask")
PASSAGE_KEYS = ("passage_input_ids", "passage_attention_mask")
CROSS_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def _rows(tensors: dict[str, torch.Tensor], keys, rows: int | slice) -> dict[str, torch.Tensor]:
    rows = slice(0, rows) if isinstance(rows, int) else rows
    return {k: tensors[k][rows] for k in keys}


@torch.inference_mode()
def scoring_fn(model: torch.nn.Module, tensors: dict[str, torch.Tensor], rows: int | slice,
               query_cached: bool = True) -> Callable[[], torch.Tensor]:
    """A zero-argument call scoring the rows (the first n, or a slice) the way the model is served: cross-encoders
    from text, two-encoder models from their cached sides (encoded here, before timing). With `query_cached=False`
    only the passage side is cached and the query is encoded inside the call, as when a new query arrives."""
    model.eval()
    if isinstance(model, CrossEncoder):
        inputs = _rows(tensors, CROSS_KEYS, rows)
        return lambda: model(**inputs)
    if isinstance(model, (DiPairModel, DualEncoder)):
        q_in = _rows(tensors, QUERY_KEYS, rows)
        p = model.encode_passage(*_rows(tensors, PASSAGE_KEYS, rows).values())
        if not query_cached:
            return lambda: model.score(model.encode_query(*q_in.values()), p)
        q = model.encode_query(*q_in.values())
        return lambda: model.score(q, p)
    raise TypeError(f"cannot time {type(model).__name__}")


@torch.inference_mode()
def scoring_speed(models: dict[str, torch.nn.Module], tensors: dict[str, torch.Tensor], baseline: str,
                  batch_sizes: tuple[int, ...] = (1, 256), repeats: int = 10) -> pd.DataFrame:
    """Pairs per second of each model at each batch size, and the speedup over `baseline` (the teacher)."""
    n = len(tensors["input_ids"])
    rows = []
    for b in batch_sizes:
        if b > n:
            raise ValueError(f"need at least {b} pairs to time batch {b}, got {n}")
        timings = time_side_by_side({name: scoring_fn(m, tensors, b) for name, m in models.items()}, b,
                                    warmup=2, repeats=repeats)
        base = timings[baseline].median_s
        for name, t in timings.items():
            rows.append({"hardware": hardware_label(), "batch": b, "model": name, "ms_per_pair": t.per_example_ms,
                         "pairs_per_s": t.examples_per_s, "speedup_vs_teacher": base / t.median_s})
    return pd.DataFrame(rows)


def quality_and_speed(models: dict[str, torch.nn.Module], evaluate: Callable[[torch.nn.Module], dict],
                      tensors: dict[str, torch.Tensor], batch_sizes: tuple[int, ...], repeats: int,
                      baseline: str = "teacher", chance: dict[str, float] | None = None
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's Table 3 layout: per model its quality, its AUC-ROC against the baseline's, its speedup at the
    smallest and the largest batch, and its pairs/s at the largest; plus the full speed table. `chance`: the
    metrics of a random order, added as a last row (no speed) so that every metric is read beside its floor."""
    quality = pd.DataFrame([{"model": name, **evaluate(m)} for name, m in models.items()])
    speed = scoring_speed(models, tensors, baseline, tuple(batch_sizes), repeats)
    table = quality
    for b in sorted({min(batch_sizes), max(batch_sizes)}):
        cols = {"speedup_vs_teacher": f"speedup_batch{b}"}
        if b == max(batch_sizes):
            cols["pairs_per_s"] = f"pairs_per_s_batch{b}"
        table = table.merge(speed[speed.batch == b][["model", *cols]].rename(columns=cols), on="model")
    if chance is not None:
        table = pd.concat([table, pd.DataFrame([{"model": CHANCE, **chance}])], ignore_index=True)
    table["auc_delta_vs_teacher"] = table.auc_roc - table.set_index("model").auc_roc[baseline]
    table.insert(0, "hardware", hardware_label())
    return table, speed


CHANCE = "chance (random order)"


@torch.inference_mode()
def unit_costs(dipair: DiPairModel, teacher: CrossEncoder, tensors: dict[str, torch.Tensor], batch: int = 64,
               repeats: int = 5) -> dict[str, float]:
    """Seconds per query encoded, per passage encoded, per pair scored by the head, per pair scored by the
    teacher; batched, side by side."""
    q_in, p_in = _rows(tensors, QUERY_KEYS, batch), _rows(tensors, PASSAGE_KEYS, batch)
    fns = {"query": lambda: dipair.encode_query(*q_in.values()),
           "passage": lambda: dipair.encode_passage(*p_in.values()),
           "head": scoring_fn(dipair, tensors, batch), "teacher": scoring_fn(teacher, tensors, batch)}
    return {k: t.median_s / batch for k, t in time_side_by_side(fns, batch, warmup=1, repeats=repeats).items()}


def amortised_cost(units: dict[str, float], queries: list[int], passages: list[int]) -> pd.DataFrame:
    """End-to-end seconds to score every query against every passage, encoding included once per text."""
    rows = []
    for q in queries:
        for p in passages:
            cross = q * p * units["teacher"]
            dipair = q * units["query"] + p * units["passage"] + q * p * units["head"]
            rows.append({"queries": q, "passages": p, "pairs": q * p, "cross_encoder_s": cross, "dipair_s": dipair,
                         "speedup": cross / dipair})
    return pd.DataFrame(rows)
