"""MS MARCO passage ranking's dev.small as a query-passage task (`msmarco_q2p`): DiPair's own domain.

What is available offline (MANIFEST, "MS MARCO passage ranking, dev.small") decides the shape. Evaluation is MS
MARCO's own form: 600 official dev.small queries, each against its 20 BM25 candidates with the official labels,
ranked per query (MRR@10). Training needs queries none of those 600 are, and passages none of their candidates are:
the other dev.small queries, each with the one relevant passage the titled file gives, and as negatives the training
side's own passages that BM25 ranks closest to the query (MS MARCO's collection itself is not available).

Titles. The training passages come prefixed by their document's title (not delimited: the boundary cannot be found
in general), the evaluation passages without one. They are kept as given on the training side, where every passage,
positive or negative, is some query's titled positive, so the title says nothing about the label; the "- " that
stands for a missing title is stripped. What remains is a shift between training and evaluation text, stated in
the task's deviations.
"""
from __future__ import annotations

import json
from pathlib import Path

import datasets
import numpy as np

from pairlib.core.data.files import DataError, _open_text, _read_jsonl, _read_tsv, _records, hash_bucket
from pairlib.core.data.registry import Task, _register

FOLDER = "msmarco_passage"
TRAIN_NEGATIVES = 3  # per training query: its relevant passage and the 3 other training passages BM25 ranks closest
VALIDATION_BUCKETS = 5  # % of the training queries (by qid hash) held out as validation
BM25_K1, BM25_B = 1.5, 0.75  # as squad_q2p's ranking
UNTITLED = "- "  # the titled file's prefix for a passage without a title
SUFFIX = 40  # characters of a passage's end that index the evaluation passages, to find one inside a titled text

FEATURES = datasets.Features({
    "query_id": datasets.Value("string"), "query": datasets.Value("string"),
    "passage_id": datasets.Value("string"), "passage": datasets.Value("string"),
    "label": datasets.Value("int64"), "negative": datasets.Value("string"), "bm25_rank": datasets.Value("int64"),
})


def _normalised(text: str) -> str:
    return " ".join(text.split()).casefold()


def evaluation_rows(root: Path) -> list[dict]:
    """The 600 queries x 20 BM25 candidates, in the file's order, with the official relevance labels."""
    rows = _read_jsonl(root / FOLDER / "dev_small_bm25_top20.jsonl.gz")
    return [{"query_id": str(r["query_id"]), "query": r["query_text"], "passage_id": str(r["passage_id"]),
             "passage": r["passage_text"], "label": int(r["relevance_label"]),
             "negative": "positive" if r["relevance_label"] else "bm25", "bm25_rank": int(r["ranking"])}
            for r in rows]


def titled_positives(root: Path) -> list[dict]:
    """Every dev.small query with its titled relevant passage and its official qid (found by the query's text)."""
    qids: dict[str, str] = {}
    for qid, text in _read_tsv(root / FOLDER / "queries.dev.small.tsv.gz", header=False):
        qids.setdefault(_normalised(text), qid)
    with _open_text(root / FOLDER / "dev_small_positives_titled.json.gz") as f:
        entries = json.load(f)
    out = []
    for e in entries:
        qid = qids.get(_normalised(e["query"]))
        if qid is None:
            raise DataError(f"dev_small_positives_titled.json.gz: query {e['query']!r} (id {e['id']}) matches no "
                            "official dev.small query; the file is not the one the MANIFEST describes")
        passage = e["positive"][0]
        out.append({"query_id": qid, "query": e["query"],
                    "passage": passage[len(UNTITLED):] if passage.startswith(UNTITLED) else passage})
    return out


def training_side(positives: list[dict], evaluation: list[dict]) -> list[dict]:
    """The titled positives of queries that are not evaluation queries and whose passage is none of the
    evaluation candidates (a titled text that ends with a candidate's text holds it)."""
    held_queries = {r["query_id"] for r in evaluation}
    by_suffix: dict[str, list[str]] = {}
    for p in {r["passage"] for r in evaluation}:
        by_suffix.setdefault(p[-SUFFIX:], []).append(p)
    return [r for r in positives if r["query_id"] not in held_queries
            and not any(r["passage"].endswith(p) for p in by_suffix.get(r["passage"][-SUFFIX:], ()))]


def bm25_closest(queries: list[str], texts: list[str], n: int, own: list[int]) -> np.ndarray:
    """For each query, the indices of the `n` texts BM25 (Okapi, the query's words as a set) ranks highest, its own
    text (`own[i]`) left out; ties go to the earlier text. Sparse matrices: every query against every text."""
    from sklearn.feature_extraction.text import CountVectorizer
    vec = CountVectorizer(token_pattern=r"(?u)\w+", lowercase=True)
    tf = vec.fit_transform(texts).tocsr().astype(np.float64)
    lengths = np.asarray(tf.sum(axis=1)).ravel()
    df = np.bincount(tf.indices, minlength=tf.shape[1])
    idf = np.log(1 + (len(texts) - df + 0.5) / (df + 0.5))
    norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths / lengths.mean())
    rows = np.repeat(np.arange(tf.shape[0]), np.diff(tf.indptr))
    tf.data = idf[tf.indices] * tf.data * (BM25_K1 + 1) / (tf.data + norm[rows])
    q = vec.transform(queries)
    q.data[:] = 1.0  # a word counts once, as in squad_q2p's BM25
    scores = (q @ tf.T).toarray()
    scores[np.arange(len(queries)), own] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")
    return order[:, :n]


def with_negatives(side: list[dict], negatives: int = TRAIN_NEGATIVES) -> list[dict]:
    """Each query's positive (passage_id `<qid>-0`) and its `negatives` BM25-closest passages of the same side
    (`<qid>-1`...): the passage id's prefix groups a query's candidates, as WikiQA's does."""
    texts = [r["passage"] for r in side]
    closest = bm25_closest([r["query"] for r in side], texts, negatives, list(range(len(side))))
    rows = []
    for r, picks in zip(side, closest):
        q = {"query_id": r["query_id"], "query": r["query"]}
        rows.append({**q, "passage_id": f"{r['query_id']}-0", "passage": r["passage"], "label": 1,
                     "negative": "positive", "bm25_rank": 0})
        rows += [{**q, "passage_id": f"{r['query_id']}-{k}", "passage": texts[j], "label": 0, "negative": "bm25",
                  "bm25_rank": k} for k, j in enumerate(picks, 1)]
    return rows


def _load_msmarco_q2p(root: Path) -> datasets.DatasetDict:
    evaluation = evaluation_rows(root)
    side = training_side(titled_positives(root), evaluation)
    held = [hash_bucket(r["query_id"]) < VALIDATION_BUCKETS for r in side]
    return datasets.DatasetDict({
        "train": _records(with_negatives([r for r, h in zip(side, held) if not h]), FEATURES),
        "validation": _records(with_negatives([r for r, h in zip(side, held) if h]), FEATURES),
        "test_ranked": _records(evaluation, FEATURES),
    })


_register(Task(
    name="msmarco_q2p", kind="pair_match", language="en",
    files=(f"{FOLDER}/dev_small_bm25_top20.jsonl.gz", f"{FOLDER}/queries.dev.small.tsv.gz",
           f"{FOLDER}/qrels.dev.small.tsv.gz", f"{FOLDER}/dev_small_positives_titled.json.gz"),
    columns={"query_id": "official dev.small qid", "query": "query",
             "passage_id": "test_ranked: official pid; train/validation: <qid>-<n>, 0 the query's relevant passage, "
                           "1-3 its BM25 negatives", "passage": "passage text (train/validation: title-prefixed)",
             "label": "1 relevant (official qrels), 0 not", "negative": "positive | bm25",
             "bm25_rank": "test_ranked: the official BM25 rank (1-20); train/validation: the mined rank (0: positive)"},
    text_columns=("query", "passage"), label_names=("no_match", "match"),
    deviations=("DiPair's Q2P-MAT is derived from MS MARCO's train data; only dev.small has passage text here, so "
                "both sides come from dev.small (MANIFEST)",
                "test_ranked: 600 dev.small queries x their 20 BM25 candidates (official labels); 60 have no "
                "relevant candidate: MS MARCO's MRR@10 counts them 0, the tables also give it without them",
                f"train/validation: the other dev.small queries whose relevant passage is no evaluation candidate, "
                f"{VALIDATION_BUCKETS}% held out by qid hash; per query its relevant passage and {TRAIN_NEGATIVES} "
                f"negatives BM25 (k1 {BM25_K1}, b {BM25_B}) finds among the same side's passages; a negative may be "
                "relevant to it too (unjudged)",
                "training passages keep their document title (not delimited in the source; '- ', no title, stripped), "
                "evaluation passages have none: every training passage is titled alike, so the title carries no label"),
    source="MS MARCO passage ranking dev.small (Nguyen et al. 2016)", load_local=_load_msmarco_q2p,
))
