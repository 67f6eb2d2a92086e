"""DeFormer's cost against the original model, measured side by side in one process (the paper's Tables 1, 3, 4).

Three ways of answering the same rows: the original model on `[CLS] q [SEP] p [SEP]`; DeFormer computing the
passage's lower layers itself (no cache: the decomposition alone saves only attention across segments); and
DeFormer reading the passage's layer-k states from a `PassageCache` (the paper's setting: only the question's lower
layers and the upper layers run, and reading the cache is inside the timed call). Latency is the median of
interleaved repeats; FLOPs are counted with eager attention (the FLOPs bound of the matrix work: softmax,
LayerNorm and GELU are not counted, so a measured speedup can exceed it slightly). Memory is that of
the tensors one batched call makes (activations plus the cached states it reads; weights excluded): all of them
added up, as the paper's TF profiler counts, and the most alive at once, which the upper layers over the whole
sequence bound, so DeFormer lowers it far less.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Callable, Iterator

import pandas as pd
import torch

from pairlib.core.measure import count_flops, peak_memory_bytes, time_side_by_side
from pairlib.deformer.cache import PassageCache
from pairlib.deformer.inputs import Segments
from pairlib.deformer.modeling import DeFormerPreTrainedModel
from pairlib.deformer.tasks import model_inputs

ORIGINAL, UNCACHED = "original", "deformer (passage computed)"
# served from the passage cache: states held in memory (the paper's setting, and what the claims use), or read
# from the cache file in every call, with the file's pages in the kernel's page cache (warm) or dropped first (cold)
CACHED = "deformer (cached states in memory)"
FROM_DISK_WARM, FROM_DISK_COLD = "deformer (cache file, warm)", "deformer (cache file, cold)"


@contextmanager
def eager_attention(*models: torch.nn.Module) -> Iterator[None]:
    """Count FLOPs with eager attention: torch's counter cannot see the CPU SDPA kernel's matmuls."""
    before = [m.config._attn_implementation for m in models]
    for m in models:
        m.set_attn_implementation("eager")
    try:
        yield
    finally:
        for m, impl in zip(models, before):
            m.set_attn_implementation(impl)


def answer_fns(original: DeFormerPreTrainedModel, deformer: DeFormerPreTrainedModel, segments: Segments,
               cache: PassageCache, rows: slice) -> dict[str, Callable[[], torch.Tensor]]:
    """Zero-argument callables answering `rows` each way (inputs tokenised beforehand, as in serving)."""
    inputs = model_inputs(segments.rows(rows))
    return {ORIGINAL: lambda: original(**inputs), UNCACHED: lambda: deformer(**inputs),
            CACHED: cached_answer_fn(deformer, segments, cache, rows),
            FROM_DISK_WARM: cached_answer_fn(deformer, segments, cache, rows, source="disk"),
            # a cold read needs the OS to drop the file's pages (posix_fadvise: Linux, not macOS or Windows)
            **({FROM_DISK_COLD: cached_answer_fn(deformer, segments, cache, rows, source="cold disk")}
               if hasattr(os, "posix_fadvise") else {})}


def cached_answer_fn(deformer: DeFormerPreTrainedModel, segments: Segments, cache: PassageCache,
                     rows: slice, source: str = "memory") -> Callable[[], torch.Tensor]:
    """Answering `rows` as served: the passages' layer-k states taken from the cache inside the call (`source`:
    'memory', the states held in memory; 'disk', read from the cache file; 'cold disk', read after its pages were
    dropped), the questions' lower layers and the upper layers computed."""
    if source not in ("memory", "disk", "cold disk"):
        raise ValueError(f"source must be 'memory', 'disk' or 'cold disk', got {source!r}")
    if deformer.config.split_layer == 0:
        raise ValueError("the DeFormer to measure has split_layer 0; load it with the k you want to measure")
    inputs = model_inputs(segments.rows(rows))
    passage_ids = segments.passage_ids[rows]
    length = inputs["passage_attention_mask"].shape[1]
    question = {k: v for k, v in inputs.items() if k.startswith("question_")}

    def cached():
        if source == "memory":
            states, mask = cache.batch(passage_ids, length)
        else:
            states, mask = cache.batch_from_disk(passage_ids, length, cold=source == "cold disk")
        return deformer(**question, passage_states=states, passage_attention_mask=mask)

    return cached


@torch.inference_mode()
def benchmark(original: DeFormerPreTrainedModel, deformer: DeFormerPreTrainedModel, segments: Segments,
              cache: PassageCache, batch_sizes: tuple[int, ...] = (1, 32), warmup: int = 2,
              repeats: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(latency table: one row per batch size and way; cost table: FLOPs and peak memory per way)."""
    device = next(deformer.parameters()).device  # a GPU's work is waited for before the clock stops
    cache.check(deformer)
    original.eval()
    deformer.eval()
    if len(segments) < max(batch_sizes):
        raise ValueError(f"need at least {max(batch_sizes)} rows to time batch {max(batch_sizes)}, "
                         f"got {len(segments)}")
    latency = []
    for b in batch_sizes:
        timings = time_side_by_side(answer_fns(original, deformer, segments, cache, slice(0, b)), b, warmup, repeats,
                                    device=device)
        base = timings[ORIGINAL].median_s
        for name, t in timings.items():
            latency.append({"batch": b, "model": name, "median_ms": 1000 * t.median_s,
                            "ms_per_example": t.per_example_ms, "examples_per_s": t.examples_per_s,
                            "speedup": base / t.median_s, "repeats": repeats})
    with eager_attention(original, deformer):
        flops = {name: count_flops(fn) for name, fn in
                 answer_fns(original, deformer, segments, cache, slice(0, 1)).items()}
    big = max(batch_sizes)
    mem = {name: peak_memory_bytes(fn) for name, fn in
           answer_fns(original, deformer, segments, cache, slice(0, big)).items()}
    mb = lambda name, key: mem[name][key] / 2 ** 20 / big  # noqa: E731 (per example)
    cost = pd.DataFrame([{"model": name, "gflops_per_example": flops[name] / 1e9,
                          "flops_ratio": flops[ORIGINAL] / flops[name],
                          "allocated_mb_per_example": mb(name, "tensor_total"),
                          "memory_reduction": 1 - mb(name, "tensor_total") / mb(ORIGINAL, "tensor_total"),
                          "peak_mb_per_example": mb(name, "tensor_peak"),
                          "peak_reduction": 1 - mb(name, "tensor_peak") / mb(ORIGINAL, "tensor_peak"),
                          "memory_batch": big} for name in flops])
    return pd.DataFrame(latency), cost


@torch.inference_mode()
def max_cached_difference(deformer: DeFormerPreTrainedModel, segments: Segments, cache: PassageCache,
                          rows: slice = slice(0, 8)) -> float:
    """Largest absolute difference between logits answered from the cache (in memory or read from its file) and
    computed from text."""
    fns = answer_fns(deformer, deformer, segments, cache, rows)
    a = deformer.distilled_logits(fns[UNCACHED]())
    finite = torch.isfinite(a) & (a > torch.finfo(a.dtype).min / 2)
    return max(float((a - deformer.distilled_logits(fns[way]()))[finite].abs().max())
               for way in fns if way not in (ORIGINAL, UNCACHED))


def cost_tables(experiment, original: DeFormerPreTrainedModel, deformer: DeFormerPreTrainedModel,
                batch_sizes: tuple[int, ...] = (1, 32), repeats: int = 10) -> dict[str, pd.DataFrame]:
    """What notebooks 20-22 report: the evaluation passages cached (checked against uncached answers), then latency
    and FLOPs/memory side by side, each row naming the hardware."""
    from pairlib.core.measure import hardware_label
    cache = experiment.cache(deformer)
    diff = max_cached_difference(deformer, experiment.eval_segments, cache)
    if diff != 0.0:
        raise AssertionError(f"answers from the cache differ from answers computed from text by {diff}")
    hw = hardware_label()
    cache_table = pd.DataFrame([{"hardware": hw, "passages": len(cache.tensors), "dtype": "float32",
                                 "kb_per_passage": cache.bytes_per_passage / 1024,
                                 "bytes_per_token": cache.bytes_per_token,
                                 "kb_per_150_token_passage_fp16": 150 * cache.bytes_per_token / 2 / 1024,
                                 "max_abs_diff_cached_vs_uncached": diff}])
    latency, cost = benchmark(original, deformer, experiment.eval_segments, cache, batch_sizes, repeats=repeats)
    latency.insert(0, "hardware", hw)
    cost.insert(0, "hardware", hw)
    return {"cache": cache_table, "latency": latency, "cost": cost}
