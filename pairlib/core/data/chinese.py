"""The Chinese tasks of FastBERT's Table 2."""
from __future__ import annotations

from pathlib import Path

import datasets

from pairlib.core.data.files import _read_csv, _read_tsv, _records, split_by_hash
from pairlib.core.data.registry import Task, _register


# Chinese tasks (FastBERT). They need a Chinese backbone; no pretrained one is available offline, so notebook 34
# pretrains a small one here.

_ZH_NOTE = ("Chinese: needs a Chinese backbone; offline, `zh-mini`, a small BERT pretrained here on the Chinese "
            "tasks' train splits (notebook 34); online, e.g. bert-base-chinese from the Hub")


def _label_text_tsv(root: Path, folder: str) -> datasets.DatasetDict:
    def rows(split):
        return [{"text": t, "label": int(lab)} for lab, t in _read_tsv(root / f"{folder}/{split}.tsv.gz")]
    return datasets.DatasetDict({"train": _records(rows("train")), "validation": _records(rows("dev")),
                                 "test": _records(rows("test"))})


def _zh_sentiment(name: str, folder: str, source: str, extra: tuple[str, ...] = ()) -> Task:
    return _register(Task(
        name=name, kind="single_cls", language="zh",
        files=tuple(f"{folder}/{s}.tsv.gz" for s in ("train", "dev", "test")),
        columns={"text": "review text", "label": "1 positive, 0 negative"},
        text_columns=("text",), label_names=("negative", "positive"), deviations=(_ZH_NOTE, *extra),
        source=source, load_local=lambda root: _label_text_tsv(root, folder),
    ))


_zh_sentiment("chnsenticorp", "chnsenticorp", "ChnSentiCorp (ERNIE/UER version used by FastBERT)")
_zh_sentiment("book_review", "douban_book_review", "Douban book review, as shipped by the FastBERT authors")
_zh_sentiment("shopping", "shopping", "Shopping review, UER-py's split used by FastBERT")


def _load_lcqmc(root: Path) -> datasets.DatasetDict:
    def rows(split):
        return [{"text_a": a, "text_b": b, "label": int(lab)} for a, b, lab in _read_tsv(root / f"lcqmc/{split}.tsv.gz")]
    return datasets.DatasetDict({"train": _records(rows("train")), "validation": _records(rows("dev")),
                                 "test": _records(rows("test"))})


_register(Task(
    name="lcqmc", kind="pair_cls", language="zh",
    files=("lcqmc/train.tsv.gz", "lcqmc/dev.tsv.gz", "lcqmc/test.tsv.gz"),
    columns={"text_a": "question 1", "text_b": "question 2", "label": "1 same intent, 0 different"},
    text_columns=("text_a", "text_b"), label_names=("different", "same"), deviations=(_ZH_NOTE,),
    source="LCQMC (Liu et al. 2018)", load_local=_load_lcqmc,
))

THUCNEWS_LABELS = ("finance", "realty", "stocks", "education", "science", "society", "politics", "sports", "game",
                   "entertainment")


def _load_thucnews(root: Path) -> datasets.DatasetDict:
    def rows(fname):
        return [{"text": t, "label": int(lab)} for t, lab in _read_tsv(root / f"thucnews_titles/{fname}", header=False)]
    return datasets.DatasetDict({"train": _records(rows("train_first45000.txt.gz")),
                                 "validation": _records(rows("dev.txt.gz")), "test": _records(rows("test.txt.gz"))})


_register(Task(
    name="thucnews", kind="single_cls", language="zh",
    files=("thucnews_titles/train_first45000.txt.gz", "thucnews_titles/dev.txt.gz", "thucnews_titles/test.txt.gz"),
    columns={"text": "news title", "label": "class id 0-9 (see label_names)"},
    text_columns=("text",), label_names=THUCNEWS_LABELS,
    deviations=(_ZH_NOTE, "the news-title subset (train: first 45,000 of 180,000 lines), not the full-article "
                "cnews split FastBERT probably used"),
    source="THUCNews titles (649453932/Chinese-Text-Classification-Pytorch)", load_local=_load_thucnews,
))

WEIBO_SPLIT_BUCKETS = (80, 90)  # hash bucket < 80 -> train, < 90 -> validation, else test


def _load_weibo(root: Path) -> datasets.DatasetDict:
    rows = [{"text": t, "label": int(lab)} for lab, t in _read_csv(root / "weibo_senti_100k/test_split_23998.csv.gz")]
    lo, hi = WEIBO_SPLIT_BUCKETS
    return datasets.DatasetDict(split_by_hash(rows, "text", {"train": lo, "validation": hi, "test": 100}))


_register(Task(
    name="weibo", kind="single_cls", language="zh",
    files=("weibo_senti_100k/test_split_23998.csv.gz",),
    columns={"text": "Weibo post", "label": "1 positive, 0 negative"},
    text_columns=("text",), label_names=("negative", "positive"),
    deviations=(_ZH_NOTE, "only 23,998 of weibo_senti_100k's 119,988 rows are available; train/validation/test are "
                "derived from them 80/10/10 by text hash"),
    source="weibo_senti_100k (SophonPlus)", load_local=_load_weibo,
))
