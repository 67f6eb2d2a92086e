"""A task from a user's own files or `datasets` objects, registered beside the built-in ones so that every method's
experiment (and `pairlib train`) runs on it by name.

Why here and not in each method: the experiments read a task by name through the registry; a user's pairs become
one more registered task, checked as the built-in ones are (a missing column, an empty text, an unknown label, a
duplicate id, a file that is not what its extension says: a clear error naming file, row and column), before any
model loads. Columns are renamed to the task kind's own, so the methods need nothing new.
"""
from __future__ import annotations

import hashlib
import json
import numbers
from pathlib import Path
from typing import Any, Sequence

import datasets
import pandas as pd

from pairlib.core.artifacts import shown
from pairlib.core.data.files import DataError, _records, split_by_hash
from pairlib.core.data.registry import TASKS, Task, _load_local_once, _register

# kind -> (role the user names a column for, ...), the first roles being the texts a model reads, in order
ROLES = {"single_cls": ("text", "label"), "pair_cls": ("text_a", "text_b", "label"),
         "pair_match": ("query", "passage", "label")}
OPTIONAL = ("id", "query_id")  # an id per row (checked for duplicates); pair_match's query id (groups its candidates)
READERS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}
VALIDATION_SHARE = 10  # % of the train rows held out (by a hash of their texts) when no validation split is given

Source = str | Path | datasets.Dataset | pd.DataFrame


def read_table(source: Source) -> tuple[pd.DataFrame, str]:
    """A user's split as a DataFrame and how to name it in errors."""
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True), "the DataFrame"
    if isinstance(source, datasets.Dataset):
        return source.to_pandas(), "the Dataset"
    path = Path(source)
    name = shown(path)  # errors name the file as the repository or home sees it, not by this machine's folders
    fmt = READERS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{name}: unknown file type {path.suffix!r}; use {', '.join(READERS)}")
    if not path.is_file():
        raise DataError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise DataError(f"{name} is empty")
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(path)
        elif fmt in ("csv", "tsv"):
            frame = pd.read_csv(path, sep="," if fmt == "csv" else "\t", dtype=str, keep_default_na=False)
        else:
            frame = pd.read_json(path, lines=fmt == "jsonl", dtype=False)
    except Exception as e:  # pyarrow, the csv and json parsers each raise their own
        raise DataError(f"{name} is not a readable {fmt} file ({type(e).__name__}: {e}); is it what its extension "
                        "says?") from None
    return frame, name


def _numeric(value: Any) -> bool:
    if isinstance(value, numbers.Number):
        return True
    try:
        float(str(value))
        return True
    except ValueError:
        return False


def canonical_rows(frame: pd.DataFrame, where: str, kind: str, columns: dict[str, str]) -> list[dict]:
    """The split's rows under the kind's own column names, every text checked; labels kept as read."""
    roles = ROLES[kind]
    if len(frame) == 0:
        raise DataError(f"{where} holds no rows")
    for role in roles:
        if role not in columns:
            raise DataError(f"name the column for {role!r} (kind {kind} needs {', '.join(roles)})")
    for role, column in columns.items():
        if column not in frame.columns:
            raise DataError(f"{where}: no column {column!r} (named for {role}); its columns: "
                            f"{', '.join(map(str, frame.columns))}")
    texts = roles[:-1]
    for role in texts:
        column = frame[columns[role]]
        for i, value in enumerate(column, 1):
            if value is None or (isinstance(value, float) and pd.isna(value)) or not str(value).strip():
                raise DataError(f"{where}, row {i}: column {columns[role]!r} ({role}) is empty")
        if all(_numeric(v) for v in column):
            raise DataError(f"{where}: column {columns[role]!r} ({role}) holds only numbers, not text; is it the "
                            "label or an id column?")
    rows = []
    for i, r in enumerate(frame.to_dict("records")):
        row = {role: str(r[columns[role]]) for role in texts}
        row["label"] = r[columns["label"]]
        for role in OPTIONAL:
            if role in columns:
                row[role] = str(r[columns[role]])
        rows.append(row)
    if "id" in columns:
        seen: dict[str, int] = {}
        for i, row in enumerate(rows, 1):
            if row["id"] in seen:
                raise DataError(f"{where}, row {i}: id {row['id']!r} ({columns['id']!r}) repeats row {seen[row['id']]}")
            seen[row["id"]] = i
    return rows


def label_map(train_labels: list, label_names: Sequence[str] | None, where: str) -> tuple[dict, tuple[str, ...]]:
    """Each label value read -> its class index, and the class names. Given names: a label is one of them or its
    index; not given: integer labels are their own index, text labels are sorted."""
    if label_names is not None:
        names = tuple(str(n) for n in label_names)
        mapping: dict = {n: i for i, n in enumerate(names)}
        mapping.update({i: i for i in range(len(names))})
        mapping.update({str(i): i for i in range(len(names))})
        return mapping, names
    values = sorted({v for v in train_labels}, key=str)
    if all(_numeric(v) and float(v).is_integer() for v in values):
        top = max(int(float(v)) for v in values)
        if min(int(float(v)) for v in values) < 0:
            raise DataError(f"{where}: integer labels must be 0 or more, or name the classes with label_names")
        names = tuple(str(i) for i in range(top + 1))
        mapping = {v: int(float(v)) for v in values}
        mapping.update({str(i): i for i in range(top + 1)})
        mapping.update({i: i for i in range(top + 1)})
        return mapping, names
    names = tuple(str(v) for v in values)
    return {v: i for i, v in enumerate(values)}, names


def _labelled(rows: list[dict], mapping: dict, names: tuple[str, ...], where: str) -> list[dict]:
    for i, row in enumerate(rows, 1):
        value = row["label"]
        key = value if value in mapping else str(value)
        if key not in mapping:
            raise DataError(f"{where}, row {i}: label {value!r} is not one of the classes ({', '.join(names)})")
        row["label"] = mapping[key]
    return rows


def _pair_ids(rows: list[dict]) -> list[dict]:
    """pair_match's ids: a query's id (given, or a hash of its text) groups its candidates; a passage's id is
    `<query id>-<n>`, as WikiQA's (DiPair's distillation pool draws a query's other candidates by that prefix)."""
    seen: dict[str, int] = {}
    out = []
    for row in rows:
        qid = row.get("query_id") or hashlib.sha1(row["query"].encode("utf-8")).hexdigest()[:12]
        n = seen[qid] = seen.get(qid, -1) + 1
        out.append({"query_id": qid, "query": row["query"], "passage_id": f"{qid}-{n}", "passage": row["passage"],
                    "label": row["label"]})
    return out


def from_files(name: str, kind: str, train: Source, validation: Source | None = None, test: Source | None = None,
               *, columns: dict[str, str], label_names: Sequence[str] | None = None, language: str = "en",
               validation_share: int = VALIDATION_SHARE) -> Task:
    """Read, check and register a task of `kind` (single_cls, pair_cls, pair_match) from the user's splits (CSV,
    TSV, JSON lines, JSON, Parquet, a `datasets.Dataset` or a DataFrame); `columns` names the user's column for each
    role of the kind (see `ROLES`; optionally `id`, and `query_id` for pair_match). Without a validation split,
    `validation_share`% of the train rows are held out by a hash of their texts. Every check runs here, before
    anything trains; the task's `data_version` is a digest of its rows, so models trained on other data are never
    reused for it."""
    if kind not in ROLES:
        raise DataError(f"kind must be one of {', '.join(ROLES)}, got {kind!r}")
    if name in TASKS and TASKS[name].load_local is not None and TASKS[name].load_local.__module__ != __name__:
        raise DataError(f"{name!r} is a built-in task; give your task another name")
    unknown = set(columns) - set(ROLES[kind]) - set(OPTIONAL)
    if unknown:
        raise DataError(f"unknown role(s) {sorted(unknown)} for kind {kind}; roles: {', '.join(ROLES[kind] + OPTIONAL)}")
    read = {split: read_table(src) for split, src in (("train", train), ("validation", validation), ("test", test))
            if src is not None}
    rows = {split: canonical_rows(frame, where, kind, columns) for split, (frame, where) in read.items()}
    mapping, names = label_map([r["label"] for r in rows["train"]], label_names, read["train"][1])
    for split in rows:
        rows[split] = _labelled(rows[split], mapping, names, read[split][1])
    classes = {r["label"] for r in rows["train"]}
    if len(classes) < 2:
        raise DataError(f"{read['train'][1]}: every train row has label {names[classes.pop()]!r}; a classifier needs "
                        "at least two classes")
    texts = ROLES[kind][:-1]
    if "validation" not in rows:
        key = lambda r: "\x1f".join(r[t] for t in texts)  # noqa: E731
        held = split_by_hash(rows["train"], key, {"validation": validation_share, "train": 100})
        rows["train"], rows["validation"] = held["train"].to_list(), held["validation"].to_list()
        if not rows["validation"] or not rows["train"]:
            raise DataError(f"{read['train'][1]}: too few rows to hold {validation_share}% out as validation; give a "
                            "validation split")
    if kind == "pair_match":
        rows = {split: _pair_ids(r) for split, r in rows.items()}
    else:
        rows = {split: [{k: v for k, v in r.items() if k not in OPTIONAL} for r in rs] for split, rs in rows.items()}
    version = hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:12]
    dd = datasets.DatasetDict({split: _records(r) for split, r in rows.items()})
    text_columns = {"single_cls": ("text",), "pair_cls": ("text_a", "text_b"), "pair_match": ("query", "passage")}
    task = Task(name=name, kind=kind, language=language, files=(), columns={**{t: f"{columns[t]} (yours)" for t in texts},
                "label": ", ".join(f"{i} {n}" for i, n in enumerate(names))},
                text_columns=text_columns[kind], label_names=names, data_version=version, cached=False,
                deviations=(f"your data: {', '.join(f'{s} {len(r)}' for s, r in rows.items())} rows"
                            + ("" if validation is not None else f", validation = {validation_share}% of train by "
                               "text hash"),),
                source="user data", load_local=lambda _root: dd)
    _register(task)
    _load_local_once.cache_clear()  # a task registered again under this name must not read the earlier one
    return task
