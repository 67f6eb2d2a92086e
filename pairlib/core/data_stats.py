"""What the data notebook reports about each task: split sizes, label balance, token lengths, provenance checks."""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pandas as pd

from pairlib.core.data import Task, data_root, manifest_entries


def split_summary(task: Task, dd: datasets.DatasetDict) -> pd.DataFrame:
    """One row per split: size and label balance (percent per label name)."""
    rows = []
    for split, ds in dd.items():
        row = {"task": task.name, "kind": task.kind, "language": task.language, "split": split, "rows": len(ds),
               "labels": "", "queries": pd.NA}
        if "label" in ds.column_names:
            counts = Counter(ds["label"])
            names = task.label_names or tuple(str(k) for k in sorted(counts))
            row["labels"] = ", ".join(f"{names[k] if k < len(names) else k} {100 * counts[k] / len(ds):.1f}%"
                                      for k in sorted(counts))
        if "query_id" in ds.column_names or "question_id" in ds.column_names:
            row["queries"] = len(set(ds["query_id" if "query_id" in ds.column_names else "question_id"]))
        rows.append(row)
    df = pd.DataFrame(rows)
    if "queries" in df:
        df["queries"] = df["queries"].astype("Int64")
    return df


def model_input_lengths(task: Task, ds: datasets.Dataset, tokenizer, batch_size: int = 1000) -> np.ndarray:
    """Tokens per model input, untruncated, with special tokens: [CLS] a [SEP] (b [SEP]) as a cross-encoder sees
    it; for multiple choice, the longest of question+option with the article over the options."""
    lengths: list[int] = []
    cols = task.text_columns
    for start in range(0, len(ds), batch_size):
        batch = ds[start:start + batch_size]
        if task.kind == "multiple_choice":
            firsts = [f"{q} {o}" for q, opts in zip(batch["question"], batch["options"]) for o in opts]
            seconds = [a for a, opts in zip(batch["article"], batch["options"]) for _ in opts]
            enc = tokenizer(firsts, seconds, add_special_tokens=True, verbose=False)["input_ids"]
            per = [len(e) for e in enc]
            i = 0
            for opts in batch["options"]:
                lengths.append(max(per[i:i + len(opts)]))
                i += len(opts)
        elif len(cols) == 2:
            enc = tokenizer(batch[cols[0]], batch[cols[1]], add_special_tokens=True, verbose=False)["input_ids"]
            lengths.extend(len(e) for e in enc)
        else:
            enc = tokenizer(batch[cols[0]], add_special_tokens=True, verbose=False)["input_ids"]
            lengths.extend(len(e) for e in enc)
    return np.asarray(lengths)


def length_summary(task: str, split: str, lengths: np.ndarray, limits=(128, 256, 320, 512)) -> dict:
    row = {"task": task, "split": split, "counted": len(lengths), "mean": float(lengths.mean()),
           "median": float(np.median(lengths)), "p90": float(np.percentile(lengths, 90)),
           "p99": float(np.percentile(lengths, 99)), "max": int(lengths.max())}
    row.update({f"over_{n}_%": 100 * float((lengths > n).mean()) for n in limits})
    return row


def verify_files(task: Task, root: Path | None = None) -> pd.DataFrame:
    """sha256 of each local file the task reads, against the manifest's value."""
    root = root or data_root()
    expected = {path: sha for path, (_, sha) in manifest_entries(root).items()} if (root / "MANIFEST.md").is_file() \
        else {}
    rows = []
    for f in task.files:
        path = root / f
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
        want = expected.get(f)
        status = ("missing" if digest is None else "no manifest entry" if want is None
                  else "ok" if digest == want else "MISMATCH")
        rows.append({"task": task.name, "file": f, "sha256": (digest or "")[:16], "manifest": status})
    return pd.DataFrame(rows)
