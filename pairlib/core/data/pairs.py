"""BoolQ, MNLI, QQP and RACE: DeFormer's classification and multiple-choice tasks; derived splits documented."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import datasets

from pairlib.core.data.files import _open_text, _read_jsonl, _records, split_by_hash
from pairlib.core.data.registry import Task, _register


# BoolQ and RACE (DeFormer); their train splits are derived

def _boolq_rows(items: list[dict]) -> list[dict]:
    return [{"question": r["question"], "passage": r["passage"], "title": r.get("title", ""),
             "label": int(r["answer"] if "answer" in r else r["label"])} for r in items]


def _load_boolq(root: Path) -> datasets.DatasetDict:
    return datasets.DatasetDict({
        "train": _records(_boolq_rows(_read_jsonl(root / "boolq/train.jsonl.gz"))),
        "validation": _records(_boolq_rows(_read_jsonl(root / "boolq/dev.jsonl.gz"))),
        "fewglue32": _records(_boolq_rows(_read_jsonl(root / "boolq/fewglue_train32.jsonl.gz"))),
    })


def _hub_boolq() -> datasets.DatasetDict:
    dd = datasets.load_dataset("google/boolq")
    return dd.map(lambda r: {"label": int(r["answer"])}, remove_columns=["answer"])


_register(Task(
    name="boolq", kind="pair_cls", language="en",
    files=("boolq/train.jsonl.gz", "boolq/dev.jsonl.gz", "boolq/fewglue_train32.jsonl.gz"),
    columns={"question": "yes/no question", "passage": "Wikipedia passage", "title": "passage title",
             "label": "1 = yes (True), 0 = no (False)"},
    text_columns=("question", "passage"), label_names=("false", "true"),
    deviations=("train is the official train set (9,427) rebuilt byte-identical from a PyPI package's copy (see "
                "MANIFEST.md); validation is the official dev set (3,270), the split the paper reports on",
                "fewglue32 holds the 32 FewGLUE train examples (all of them in train), for reference only"),
    source="BoolQ (Clark et al. 2019)", hub="google/boolq", load_local=_load_boolq, load_hub=_hub_boolq,
    data_version="official-train",  # before: train and validation derived from the dev set
))

MNLI_LABELS = ("entailment", "neutral", "contradiction")  # GLUE's label ids 0, 1, 2


def _read_json_samples(path: Path) -> list[dict]:
    """The GLUE train samples' format: one JSON object {"<i>": {"text_a", "text_b", "label"}}, in key order."""
    with _open_text(path) as f:
        rows = json.load(f)
    return [rows[k] for k in sorted(rows, key=int)]


def _load_mnli(root: Path) -> datasets.DatasetDict:
    def pairs(items: list[dict], first: str, second: str, label: str) -> list[dict]:
        return [{"premise": r[first], "hypothesis": r[second], "label": MNLI_LABELS.index(r[label])} for r in items]

    train = [*_read_json_samples(root / "mnli/train_sample_a8999.json.gz"),
             *_read_json_samples(root / "mnli/train_sample_b1000.json.gz")]
    return datasets.DatasetDict({
        "train": _records(pairs(train, "text_a", "text_b", "label")),
        "validation": _records(pairs(_read_jsonl(root / "mnli/dev_matched.jsonl.gz"), "premise", "hypothesis",
                                     "label")),
    })


def _hub_glue(config: str, validation: str = "validation") -> Callable[[], datasets.DatasetDict]:
    """GLUE's train and dev splits from the Hub, without GLUE's row index (the local files have none)."""
    def load() -> datasets.DatasetDict:
        dd = datasets.load_dataset("nyu-mll/glue", config)
        return datasets.DatasetDict({"train": dd["train"].remove_columns(["idx"]),
                                     "validation": dd[validation].remove_columns(["idx"])})
    return load


_register(Task(
    name="mnli", kind="pair_cls", language="en",
    files=("mnli/train_sample_a8999.json.gz", "mnli/train_sample_b1000.json.gz", "mnli/dev_matched.jsonl.gz"),
    columns={"premise": "premise sentence", "hypothesis": "hypothesis sentence",
             "label": "0 entailment, 1 neutral, 2 contradiction (GLUE's ids)"},
    text_columns=("premise", "hypothesis"), label_names=MNLI_LABELS,
    deviations=("train is a random sample of 9,999 of the 392,702 official train pairs (its seed is not recorded); "
                "validation is the official dev_matched set (9,815); dev_mismatched is not available",),
    source="MultiNLI (Williams et al. 2018), GLUE", hub="nyu-mll/glue", load_local=_load_mnli,
    load_hub=_hub_glue("mnli", validation="validation_matched"),
))

QQP_SPLIT_BUCKETS = (80, 90)  # train / validation / test cuts of the train sample, by hash of the question pair


def _qqp_pair(row: dict) -> str:
    return row["question1"] + "\t" + row["question2"]


def _load_qqp(root: Path) -> datasets.DatasetDict:
    rows = [{"question1": r["text_a"], "question2": r["text_b"], "label": int(r["label"])}
            for name in ("train_sample_a8999.json.gz", "train_sample_b1000.json.gz")
            for r in _read_json_samples(root / "qqp" / name)]
    lo, hi = QQP_SPLIT_BUCKETS
    return datasets.DatasetDict(split_by_hash(rows, _qqp_pair, {"train": lo, "validation": hi, "test": 100}))


_register(Task(
    name="qqp", kind="pair_cls", language="en",
    files=("qqp/train_sample_a8999.json.gz", "qqp/train_sample_b1000.json.gz"),
    columns={"question1": "Quora question", "question2": "Quora question",
             "label": "1 if the two ask the same thing (duplicate), else 0"},
    text_columns=("question1", "question2"), label_names=("different", "duplicate"),
    deviations=("only a random sample of 9,999 of the 363,846 official train pairs is available (no dev set): "
                f"train / validation / test are derived from it {QQP_SPLIT_BUCKETS[0]}/"
                f"{QQP_SPLIT_BUCKETS[1] - QQP_SPLIT_BUCKETS[0]}/{100 - QQP_SPLIT_BUCKETS[1]} by a hash of the "
                "question pair; a question asked in two pairs can fall in two splits",),
    source="Quora Question Pairs, GLUE", hub="nyu-mll/glue", load_local=_load_qqp, load_hub=_hub_glue("qqp"),
))

RACE_TRAIN_BUCKETS = 80  # % of RACE-M dev articles used for the derived train split


def _race_rows(items: list[dict]) -> list[dict]:
    return [{"example_id": r["example_id"], "article": r["article"], "question": r["question"],
             "options": list(r["options"]), "label": "ABCD".index(r["answer"])} for r in items]


def _load_race(root: Path) -> datasets.DatasetDict:
    dev = _race_rows(_read_jsonl(root / "race/middle_dev.jsonl.gz"))
    return datasets.DatasetDict({
        **split_by_hash(dev, "example_id", {"train": RACE_TRAIN_BUCKETS, "validation": 100}),
        "test": _records(_race_rows(_read_jsonl(root / "race/middle_test.jsonl.gz"))),
    })


def _hub_race() -> datasets.DatasetDict:
    dd = datasets.load_dataset("ehovy/race", "middle")
    return dd.map(lambda r: {"label": "ABCD".index(r["answer"])}, remove_columns=["answer"])


_register(Task(
    name="race", kind="multiple_choice", language="en",
    files=("race/middle_dev.jsonl.gz", "race/middle_test.jsonl.gz"),
    columns={"example_id": "article file name", "article": "passage", "question": "question (may contain _ blanks)",
             "options": "4 answer options", "label": "index of the correct option (0-3)"},
    text_columns=("question", "article"), label_names=("A", "B", "C", "D"),
    deviations=("RACE-M only (RACE-H and the official train set are not available offline)",
                f"train and validation are derived from the official RACE-M dev set, split by article "
                f"({RACE_TRAIN_BUCKETS}% to train); test is the official RACE-M test set"),
    source="RACE (Lai et al. 2017)", hub="ehovy/race", load_local=_load_race, load_hub=_hub_race,
))
