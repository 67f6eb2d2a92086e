"""Do the three papers' speedups carry over to other hardware? The same architectures, lengths and comparisons as the
cpu profile's speed tables, timed on whatever device is given (a GPU, or this machine's CPU for the same code's
CPU column).

Wall time does not depend on the weights' values, so the models are built from the backbone's shape with random
weights and fed random token ids with every position real (the worst case of a padded batch). That lets this run
where the backbone package and the data are absent, as on a bare GPU machine: `python -m pairlib.study.hardware_speed
--device cuda --out DIR`. Quality is not measured here; the notebooks measure it with trained models.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

import pandas as pd
import torch
import transformers

from pairlib.core.artifacts import REPO_ROOT
from pairlib.core.measure import count_flops, hardware, hardware_label, time_side_by_side
from pairlib.deformer.modeling import DeFormerConfig, DeFormerForQuestionAnswering
from pairlib.dipair.bench import scoring_fn
from pairlib.dipair.modeling import (
    CrossEncoder,
    CrossEncoderConfig,
    DiPairConfig,
    DiPairModel,
    DualEncoder,
    DualEncoderConfig,
)
from pairlib.fastbert.modeling import FastBertConfig, FastBertForSequenceClassification

# all-MiniLM-L6-v2's shape (tests/test_hardware_speed.py checks it against the installed backbone's config).
MINILM_SHAPE = dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                    intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2)

# The cpu profile's settings (params/cpu.yaml) that decide each comparison's cost.
DEFORMER = dict(split_layer=4, question_length=32, passage_length=160)
FASTBERT = dict(max_length=128, num_labels=4)
DIPAIR = dict(query_length=32, passage_length=128, cross_length=160,
              head=dict(query_tokens=8, passage_tokens=32, head_dim=128, head_layers=2, head_heads=4))


# Each builder returns zero-argument callables by model name and the name of the baseline they are compared with.
Comparison = tuple[dict[str, Callable[[], object]], str]


def _ids(batch: int, length: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(1000, MINILM_SHAPE["vocab_size"], (batch, length), device=device)
    return ids, torch.ones_like(ids)


def _ready(model: torch.nn.Module, device: str, dtype: torch.dtype, attention: str | None) -> torch.nn.Module:
    if attention is not None:
        model.set_attn_implementation(attention)
    return model.to(device=device, dtype=dtype).eval()


def deformer_fns(batch: int, device: str, dtype: torch.dtype,
                 attention: str | None = None) -> Comparison:
    """The original model (k=0) on question + passage against the DeFormer with the passage's lower layers cached."""
    s = DEFORMER
    original = _ready(DeFormerForQuestionAnswering(DeFormerConfig(split_layer=0, **MINILM_SHAPE)), device, dtype,
                      attention)
    deformer = _ready(DeFormerForQuestionAnswering(DeFormerConfig(split_layer=s["split_layer"], **MINILM_SHAPE)),
                      device, dtype, attention)
    q_ids, q_mask = _ids(batch, s["question_length"], device)
    p_ids, p_mask = _ids(batch, s["passage_length"], device)
    with torch.inference_mode():
        states = deformer.encode_passage(p_ids, p_mask)
    question = dict(question_input_ids=q_ids, question_attention_mask=q_mask)
    return {"original": lambda: original(**question, passage_input_ids=p_ids, passage_attention_mask=p_mask),
            f"deformer k={s['split_layer']}, passage cached": lambda: deformer(
                **question, passage_states=states, passage_attention_mask=p_mask)}, "original"


def fastbert_fns(batch: int, device: str, dtype: torch.dtype,
                 attention: str | None = None) -> Comparison:
    """The teacher (all layers, last classifier) against adaptive inference in which every sample exits at layer l:
    FastBERT's speedup when the exits fall there (which exits occur depends on the trained model and the speed)."""
    s = FASTBERT
    layers = MINILM_SHAPE["num_hidden_layers"]
    ids, mask = _ids(batch, s["max_length"], device)

    def model(n: int) -> FastBertForSequenceClassification:
        return _ready(FastBertForSequenceClassification(FastBertConfig(
            **{**MINILM_SHAPE, "num_hidden_layers": n}, num_labels=s["num_labels"])), device, dtype, attention)
    teacher = model(layers)
    fns: dict[str, Callable] = {"teacher": lambda: teacher(input_ids=ids, attention_mask=mask)}
    for n in (1, layers // 2, layers):
        fns[f"all exit at layer {n}"] = (lambda m: lambda: m.adaptive_predict(ids, mask, speed=0.0))(model(n))
    return fns, "teacher"


def dipair_fns(batch: int, device: str, dtype: torch.dtype,
               attention: str | None = None) -> Comparison:
    """The teacher cross-encoder and its 1-layer cut against DiPair's head and DE-Cos scoring from cached sides."""
    s = DIPAIR
    q_ids, q_mask = _ids(batch, s["query_length"], device)
    p_ids, p_mask = _ids(batch, s["passage_length"], device)
    c_ids, c_mask = _ids(batch, s["cross_length"], device)
    tensors = dict(query_input_ids=q_ids, query_attention_mask=q_mask, passage_input_ids=p_ids,
                   passage_attention_mask=p_mask, input_ids=c_ids, attention_mask=c_mask,
                   token_type_ids=torch.zeros_like(c_ids))
    models = {"teacher": CrossEncoder(CrossEncoderConfig(**MINILM_SHAPE)),
              "cross-1l": CrossEncoder(CrossEncoderConfig(**{**MINILM_SHAPE, "num_hidden_layers": 1})),
              "dipair-tsf": DiPairModel(DiPairConfig(**MINILM_SHAPE, **s["head"])),
              "de-cos": DualEncoder(DualEncoderConfig(scorer="cosine", **MINILM_SHAPE))}
    fns = {name: scoring_fn(_ready(m, device, dtype, attention), tensors, batch) for name, m in models.items()}
    return fns, "teacher"


COLUMNS = ["hardware", "dtype", "method", "batch", "model", "baseline", "ms_per_example", "examples_per_s", "speedup",
           "gflops_per_example", "flops_ratio"]


METHODS = {"deformer": deformer_fns, "fastbert": fastbert_fns, "dipair": dipair_fns}


def flops_per_example(method: str) -> dict[str, float]:
    """Each model's FLOPs for one example (counted on the CPU with eager attention, whose matmuls the counter sees;
    FLOPs do not depend on the hardware): the limit a measured speedup can reach. The counter sees matrix products
    only, so DE-Cos's cosine (elementwise work) counts as 0 and gets no ratio."""
    torch.manual_seed(0)
    fns, _ = METHODS[method](1, "cpu", torch.float32, attention="eager")
    return {name: float(count_flops(fn)) for name, fn in fns.items()}


def measure_devices(device: str = "cpu", batch_sizes: tuple[int, ...] = (1, 32, 256),
                    dtypes: tuple[str, ...] = ("float32",), repeats: int = 10) -> pd.DataFrame:
    """Per method, dtype and batch size: each model's ms per example and speedup over the method's baseline, beside
    its FLOPs ratio over the baseline."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no GPU here; use --device cpu")
    flops = {method: flops_per_example(method) for method in METHODS}
    rows = []
    for dtype_name in dtypes:
        dtype = getattr(torch, dtype_name)
        for method, make in METHODS.items():
            for b in batch_sizes:
                torch.manual_seed(0)
                fns, baseline = make(b, device, dtype)
                timings = time_side_by_side(fns, b, warmup=3, repeats=repeats, device=device)
                for name, t in timings.items():
                    rows.append({"hardware": hardware_label(), "dtype": dtype_name, "method": method, "batch": b,
                                 "model": name, "baseline": baseline, "ms_per_example": t.per_example_ms,
                                 "examples_per_s": t.examples_per_s,
                                 "speedup": timings[baseline].median_s / t.median_s,
                                 "gflops_per_example": flops[method][name] / 1e9,
                                 "flops_ratio": (flops[method][baseline] / flops[method][name]
                                                 if flops[method][name] else float("nan"))})
                del fns
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
    return pd.DataFrame(rows)


def other_hardware(root: str | os.PathLike | None = None) -> pd.DataFrame:
    """The same measurement from other machines: every `<root>/<machine>/hardware_speed.csv` (by default
    outputs/hardware/ in the repository), with its machine's folder name."""
    root = Path(root) if root is not None else REPO_ROOT / "outputs" / "hardware"
    frames = [pd.read_csv(f).assign(machine=f.parent.name) for f in sorted(root.glob("*/hardware_speed.csv"))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*COLUMNS, "machine"])


def speedup_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per method and model, one column per machine (its `machine` name where given, else its hardware),
    precision and batch size; the baselines left out."""
    t = table[table.model != table.baseline].copy()
    machine = t["machine"].fillna(t.hardware) if "machine" in t else t.hardware
    t["where"] = machine + " " + t.dtype + " b" + t.batch.astype(str)
    order = list(dict.fromkeys(t.assign(m=machine).sort_values(["m", "dtype", "batch"])["where"]))
    wide = t.pivot_table(index=["method", "model"], columns="where", values="speedup", sort=False)
    return wide[order].reset_index()


def summary_lines(table: pd.DataFrame) -> list[str]:
    """Per method, machine and precision: each model's speedup at the smallest and the largest batch measured."""
    lines = []
    for (method, hw, dtype), g in table.groupby(["method", "hardware", "dtype"], sort=False):
        lo, hi = g.batch.min(), g.batch.max()
        parts = []
        for model, m in g[g.model != g.baseline].groupby("model", sort=False):
            s = m.set_index("batch").speedup
            parts.append(f"{model} {s[lo]:.1f}x at batch {lo}, {s[hi]:.1f}x at batch {hi}")
        lines.append(f"{method} on {hw} ({dtype}): " + "; ".join(parts))
    return lines


def plot_speedups(table: pd.DataFrame, title: str):
    """One panel per method: each model's speedup against batch size. A colour per machine and precision, a marker
    per model, so that lines from a dozen machine-model pairs stay apart (the default colour cycle repeats after
    ten); the batch axis is labelled with the batch sizes measured."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from pairlib.study.plots import plain_log_ticks

    rows = table[table.model != table.baseline]
    machine = rows.machine.fillna(rows.hardware) if "machine" in rows else rows.hardware
    where = machine + " " + rows.dtype
    colours = {w: f"C{i}" for i, w in enumerate(dict.fromkeys(sorted(where)))}
    methods = list(dict.fromkeys(rows.method))
    fig, axes = plt.subplots(len(methods), 1, figsize=(8, 3.2 * len(methods)), squeeze=False)
    for ax, method in zip(axes[:, 0], methods):
        sub = rows[rows.method == method]
        models = list(dict.fromkeys(sub.model))
        markers = dict(zip(models, "osD^vP*X"))
        for (w, model), g in sub.groupby([where[sub.index], "model"], sort=False):
            g = g.sort_values("batch")
            ax.plot(g.batch, g.speedup, marker=markers[model], color=colours[w], lw=1.2, ms=6)
        ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        batches = sorted(sub.batch.unique())
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.xaxis.set_minor_locator(plt.NullLocator())
        plain_log_ticks(ax.yaxis)
        ax.set(xlabel="batch", ylabel="speedup over the baseline (log)")
        ax.set_title(method, fontsize=9)
        handles = ([Line2D([], [], color=colours[w], lw=2, label=w) for w in colours if w in set(where[sub.index])]
                   + [Line2D([], [], color="0.3", marker=markers[m], ls="", label=m) for m in models])
        ax.legend(handles=handles, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", required=True, help="folder for hardware_speed.csv and hardware.json")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32, 256])
    parser.add_argument("--dtypes", nargs="+", default=["float32"], choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--repeats", type=int, default=10)
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    table = measure_devices(args.device, tuple(args.batch_sizes), tuple(args.dtypes), args.repeats)
    os.makedirs(args.out, exist_ok=True)
    table.to_csv(os.path.join(args.out, "hardware_speed.csv"), index=False)
    with open(os.path.join(args.out, "hardware.json"), "w") as f:
        json.dump({**hardware(), "transformers": transformers.__version__,
                   "command": "python -m pairlib.study.hardware_speed " + " ".join(argv)}, f, indent=1)
    print(table.to_string())


if __name__ == "__main__":
    main()
