"""How every speed, memory and FLOP number in the outputs is measured.

- Latency: warm-up calls, then the median of repeated calls. Models that are compared are measured side by side in one
  process, interleaved repeat by repeat, so that a change in machine load hits all of them alike.
- FLOPs: 2 x multiply-accumulates, counted by torch's `FlopCounterMode` and cross-checked with an analytic count of a
  BERT layer (`bert_layer_flops`). The FLOPs ratio is the FLOPs bound of the matrix work: softmax, LayerNorm
  and GELU are not counted, so a wall-clock speedup can exceed it slightly (2.35x against 2.29x in notebook 20).
- Peak memory: the most bytes of tensors alive at once during a call, counted by intercepting every torch op
  (parameters excluded). It does not depend on the allocator or the machine, so it is comparable across hardware;
  on CUDA the allocator's peak is reported as well.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

# ----------------------------------------------------------------------------------------------------------------
# Hardware


def hardware() -> dict[str, Any]:
    """What the numbers were measured on; stamped into every table."""
    info: dict[str, Any] = {"cpu": _cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "machine": platform.machine(), "python": platform.python_version(),
                            "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def hardware_label() -> str:
    h = hardware()
    return (f"{h['gpu']} GPU" if "gpu" in h else f"{h['cpu']}, {h['torch_threads']} threads ({h['cores']} cores)")


CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def cpu_features() -> dict[str, bool]:
    """The instruction sets that decide which fast paths this CPU has (read, never assumed: machines differ)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    return {name: name in flags for name in CPU_FEATURES}


def native_bf16(device: str | None = None) -> bool:
    """Whether bf16 arithmetic runs natively: a CUDA GPU that supports it, or a CPU with AMX or AVX512-BF16 (elsewhere
    PyTorch emulates it, slower than fp32)."""
    if (device or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    features = cpu_features()
    return features["amx_bf16"] or features["avx512_bf16"]


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


# ----------------------------------------------------------------------------------------------------------------
# Latency


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


@dataclass
class Timing:
    name: str
    batch_size: int
    median_s: float
    repeats: int

    @property
    def per_example_ms(self) -> float:
        return 1000 * self.median_s / self.batch_size

    @property
    def examples_per_s(self) -> float:
        return self.batch_size / self.median_s


@torch.inference_mode()
def time_side_by_side(fns: dict[str, Callable[[], Any]], batch_size: int, warmup: int = 2, repeats: int = 10,
                      device: torch.device | str | None = None) -> dict[str, Timing]:
    """Median wall time of each zero-argument callable, interleaved repeat by repeat in this one process.

    Each callable processes one batch of `batch_size` examples (inputs prepared beforehand, so tokenisation is not
    timed unless the callable does it on purpose).
    """
    if warmup < 0 or repeats < 1:
        raise ValueError(f"need warmup >= 0 and repeats >= 1, got {warmup} and {repeats}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    _sync(device)
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            _sync(device)
            samples[name].append(time.perf_counter() - t0)
    return {k: Timing(k, batch_size, statistics.median(v), repeats) for k, v in samples.items()}


def speedup(timings: dict[str, Timing], baseline: str) -> dict[str, float]:
    base = timings[baseline].median_s
    return {k: base / t.median_s for k, t in timings.items()}


# ----------------------------------------------------------------------------------------------------------------
# FLOPs


@torch.inference_mode()
def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs (2 x MACs) of one call, as counted by torch's FlopCounterMode (matmuls, convolutions, attention).

    Count with `attn_implementation="eager"`: the CPU kernel behind SDPA attention is invisible to the counter, which
    then misses the two L^2 attention matmuls (tests/test_measure.py shows both cases). torch's own transformer layers
    (DiPair's head) are counted with their inference fast path off, since its fused kernel hides even the linear
    layers; their attention matmuls still run in SDPA and stay unseen (small for a head over 40 tokens).
    """
    counter = FlopCounterMode(display=False)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with counter:
            fn()
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return int(counter.get_total_flops())


def bert_layer_flops(seq_len: int, hidden: int, intermediate: int, attention_matmuls: bool = True) -> int:
    """Analytic FLOPs (2 x MACs) of one BERT encoder layer over one sequence.

    Q, K, V and output projections: 4 L h^2 MACs; scores Q K^T and the weighted sum over V: 2 L^2 h MACs;
    feed-forward: 2 L h i MACs. `attention_matmuls=False` drops the L^2 terms, which is what module-based counters
    such as `thop` (used by FastBERT's paper) see.
    """
    macs = 4 * seq_len * hidden * hidden + 2 * seq_len * hidden * intermediate
    if attention_matmuls:
        macs += 2 * seq_len * seq_len * hidden
    return 2 * macs


def linear_flops(tokens: int, d_in: int, d_out: int) -> int:
    return 2 * tokens * d_in * d_out


# ----------------------------------------------------------------------------------------------------------------
# Memory


class _LiveTensorBytes(TorchDispatchMode):
    """Tracks the bytes of tensor storages created inside the mode that are still alive, and their peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[StorageWeakRef, int] = {}
        self.current = 0
        self.peak = 0
        self.total = 0

    def _collect(self) -> None:
        dead = [ref for ref in self.live if ref.expired()]
        for ref in dead:
            self.current -= self.live.pop(ref)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self._collect()
        for t in torch.utils._pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                ref = StorageWeakRef(t.untyped_storage())
                if ref not in self.live:
                    n = t.untyped_storage().nbytes()
                    self.live[ref] = n
                    self.current += n
                    self.total += n
        self.peak = max(self.peak, self.current)
        return out


def peak_memory_bytes(fn: Callable[[], Any], grad: bool = False) -> dict[str, int]:
    """Bytes of tensors made during one call (inputs and parameters made before it not counted): `tensor_peak`, the
    most alive at once, and `tensor_total`, all of them added up (what TF's profiler reports as requested bytes,
    the measure DeFormer's paper gives; it follows the work done, where the peak follows the widest layer). In
    inference mode, unless `grad` (a training step's forward and backward)."""
    with torch.inference_mode(not grad):
        return _peak_memory_bytes(fn)


def _peak_memory_bytes(fn: Callable[[], Any]) -> dict[str, int]:
    result: dict[str, int] = {}
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        result["cuda_allocator_peak"] = torch.cuda.max_memory_allocated() - before
    tracker = _LiveTensorBytes()
    with tracker:
        out = fn()
    del out
    result["tensor_peak"] = tracker.peak
    result["tensor_total"] = tracker.total
    return result


class PeakResidentMemory:
    """The largest resident memory of this process and all its children (Ray's workers, say) seen while the block
    runs, sampled every `interval` seconds: `ru_maxrss` would only give this process's peak since it started."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval, self.peak_bytes, self.start_bytes = interval, 0, 0

    def _sample(self) -> int:
        import psutil
        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:  # a child that ended between listing and reading
                pass
        return total

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_bytes = max(self.peak_bytes, self._sample())

    @property
    def added_bytes(self) -> int:
        """The peak above what was resident when the block began: what the block itself cost."""
        return self.peak_bytes - self.start_bytes

    def __enter__(self) -> "PeakResidentMemory":
        import threading
        self.peak_bytes = self.start_bytes = self._sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._sample())
