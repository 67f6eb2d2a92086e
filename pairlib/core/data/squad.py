"""SQuAD v1.1 and the query-to-passage tasks derived from it (`squad_q2p`)."""
from __future__ import annotations

import collections
import heapq
import json
import math
import random
import re
from pathlib import Path

import datasets

from pairlib.core.data.files import _open_text, _records, hash_bucket
from pairlib.core.data.registry import Task, _register


# SQuAD v1.1 and the query-to-passage task derived from it

SQUAD_FEATURES = datasets.Features({
    "id": datasets.Value("string"), "title": datasets.Value("string"), "context": datasets.Value("string"),
    "question": datasets.Value("string"),
    "answers": {"text": datasets.Sequence(datasets.Value("string")),
                "answer_start": datasets.Sequence(datasets.Value("int32"))},
})


def _squad_articles(path: Path) -> list[dict]:
    with _open_text(path) as f:
        return json.load(f)["data"]


def _squad_rows(articles: list[dict]) -> list[dict]:
    rows = []
    for art in articles:
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                rows.append({"id": qa["id"], "title": art["title"], "context": para["context"],
                             "question": qa["question"],
                             "answers": {"text": [a["text"] for a in qa["answers"]],
                                         "answer_start": [a["answer_start"] for a in qa["answers"]]}})
    return rows


def _load_squad(root: Path) -> datasets.DatasetDict:
    return datasets.DatasetDict({
        "train": _records(_squad_rows(_squad_articles(root / "squad_v1.1/train-v1.1.reconstructed.json.gz")),
                          SQUAD_FEATURES),
        "validation": _records(_squad_rows(_squad_articles(root / "squad_v1.1/dev-v1.1.json.gz")), SQUAD_FEATURES),
    })


def _hub_squad() -> datasets.DatasetDict:
    return datasets.load_dataset("rajpurkar/squad")


_register(Task(
    name="squad", kind="span_qa", language="en",
    files=("squad_v1.1/train-v1.1.reconstructed.json.gz", "squad_v1.1/dev-v1.1.json.gz"),
    columns={"id": "question id (train ids are synthetic: recon-train-AAA-PPP-QQ)", "title": "article title",
             "context": "paragraph", "question": "question",
             "answers": "{'text': [...], 'answer_start': [...]} (train: one answer; validation: all annotators')"},
    text_columns=("question", "context"),
    deviations=("train is a reconstruction from the SQuAD explorer pages: ids synthetic, ~2% of answer_start "
                "offsets may point at another occurrence of the same answer text (validation is the official dev set)",),
    source="SQuAD v1.1 (Rajpurkar et al. 2016); see MANIFEST.md", hub="rajpurkar/squad",
    load_local=_load_squad, load_hub=_hub_squad,
))

RANKING_CANDIDATES = 10  # per question: its own paragraph and 9 negatives
BM25_K1, BM25_B = 1.5, 0.75


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


class _BM25:
    """Okapi BM25 over a fixed list of texts, with an inverted index so that a query scores only the texts that
    share a word with it."""

    def __init__(self, texts: list[str]) -> None:
        self.counts = [collections.Counter(_words(t)) for t in texts]
        self.lengths = [sum(c.values()) for c in self.counts]
        self.mean_length = sum(self.lengths) / len(self.lengths)
        self.index: dict[str, list[int]] = collections.defaultdict(list)
        for i, c in enumerate(self.counts):
            for w in c:
                self.index[w].append(i)
        n = len(texts)
        self.idf = {w: math.log(1 + (n - len(ids) + 0.5) / (len(ids) + 0.5)) for w, ids in self.index.items()}

    def score(self, words: set[str], i: int) -> float:
        norm = BM25_K1 * (1 - BM25_B + BM25_B * self.lengths[i] / self.mean_length)
        return sum(self.idf[w] * tf * (BM25_K1 + 1) / (tf + norm) for w in words if (tf := self.counts[i][w]))

    def scores(self, query: str, among: list[int] | None = None) -> dict[int, float]:
        """Scores of the texts `among` (or of every text sharing a word with the query)."""
        words = set(_words(query))
        if among is None:
            among = sorted({i for w in words for i in self.index.get(w, ())})
        return {i: self.score(words, i) for i in among}


def build_ranking(articles: list[dict], candidates: int = RANKING_CANDIDATES) -> list[dict]:
    """Each question against `candidates` paragraphs: its own (label 1) and the same article's other paragraphs that
    BM25 ranks closest to the question (label 0, `negative` "same article"); an article too short to supply them all
    is topped up with the closest paragraphs of other articles ("other article"). Ties go to the earlier paragraph,
    so the result depends on the articles alone."""
    passages = [(a_i, p_i, p["context"]) for a_i, a in enumerate(articles) for p_i, p in enumerate(a["paragraphs"])]
    of_article: dict[int, list[int]] = collections.defaultdict(list)
    for k, (a_i, _, _) in enumerate(passages):
        of_article[a_i].append(k)
    bm25 = _BM25([ctx for _, _, ctx in passages])
    need = candidates - 1
    rows = []
    for k, (a_i, p_i, ctx) in enumerate(passages):
        for qa in articles[a_i]["paragraphs"][p_i]["qas"]:
            scores = bm25.scores(qa["question"], of_article[a_i])
            closest = lambda j: (-scores.get(j, 0.0), j)  # noqa: E731
            picks = sorted((j for j in of_article[a_i] if j != k), key=closest)[:need]
            if len(picks) < need:  # a short article: every text sharing a word with the question competes
                scores = bm25.scores(qa["question"])
                others = (j for j in range(len(passages)) if passages[j][0] != a_i)
                picks += heapq.nsmallest(need - len(picks), others, key=closest)
            rows.append({"query_id": qa["id"], "query": qa["question"], "passage_id": f"{a_i}-{p_i}",
                         "passage": ctx, "label": 1, "negative": "positive"})
            rows += [{"query_id": qa["id"], "query": qa["question"], "passage_id": f"{passages[j][0]}-{passages[j][1]}",
                      "passage": passages[j][2], "label": 0,
                      "negative": "same article" if passages[j][0] == a_i else "other article"} for j in picks]
    return rows


Q2P_NEGATIVES = {"hard": 1, "easy": 1}  # per question: 1 positive, 1 hard and 1 easy negative
Q2P_SEED = 13
Q2P_VALIDATION_BUCKETS = 5  # % of train articles held out (by title hash) as the validation split

Q2P_FEATURES = datasets.Features({
    "query_id": datasets.Value("string"), "query": datasets.Value("string"),
    "passage_id": datasets.Value("string"), "passage": datasets.Value("string"),
    "label": datasets.Value("int64"), "negative": datasets.Value("string"),
})


def build_q2p(articles: list[dict], seed: int = Q2P_SEED, negatives: dict[str, int] = Q2P_NEGATIVES) -> list[dict]:
    """Query-to-passage pairs from SQuAD articles, deterministically.

    A question with its own paragraph is positive (label 1); `negatives['hard']` paragraphs of the same article and
    `negatives['easy']` paragraphs of other articles are negatives (label 0). The only randomness is a
    `random.Random` seeded per question id, so the result depends on nothing but the input and the seed.
    """
    passages = [(a_i, p_i, p["context"]) for a_i, a in enumerate(articles) for p_i, p in enumerate(a["paragraphs"])]
    rows = []
    for a_i, art in enumerate(articles):
        n_par = len(art["paragraphs"])
        for p_i, para in enumerate(art["paragraphs"]):
            for qa in para["qas"]:
                rng = random.Random(f"{seed}:{qa['id']}")
                rows.append({"query_id": qa["id"], "query": qa["question"], "passage_id": f"{a_i}-{p_i}",
                             "passage": para["context"], "label": 1, "negative": "positive"})
                others = [j for j in range(n_par) if j != p_i]
                for j in rng.sample(others, min(negatives.get("hard", 0), len(others))):
                    rows.append({"query_id": qa["id"], "query": qa["question"], "passage_id": f"{a_i}-{j}",
                                 "passage": art["paragraphs"][j]["context"], "label": 0, "negative": "hard"})
                for _ in range(negatives.get("easy", 0)):
                    while True:
                        b_i, q_j, ctx = passages[rng.randrange(len(passages))]
                        if b_i != a_i:
                            break
                    rows.append({"query_id": qa["id"], "query": qa["question"], "passage_id": f"{b_i}-{q_j}",
                                 "passage": ctx, "label": 0, "negative": "easy"})
    return rows


def _load_squad_q2p(root: Path) -> datasets.DatasetDict:
    train_articles = _squad_articles(root / "squad_v1.1/train-v1.1.reconstructed.json.gz")
    held = [hash_bucket(a["title"]) < Q2P_VALIDATION_BUCKETS for a in train_articles]
    dev = _squad_articles(root / "squad_v1.1/dev-v1.1.json.gz")
    return datasets.DatasetDict({
        "train": _records(build_q2p([a for a, h in zip(train_articles, held) if not h]), Q2P_FEATURES),
        "validation": _records(build_q2p([a for a, h in zip(train_articles, held) if h]), Q2P_FEATURES),
        "test": _records(build_q2p(dev), Q2P_FEATURES),
        "test_ranked": _records(build_ranking(dev), Q2P_FEATURES),
    })


_register(Task(
    name="squad_q2p", kind="pair_match", language="en",
    files=("squad_v1.1/train-v1.1.reconstructed.json.gz", "squad_v1.1/dev-v1.1.json.gz"),
    columns={"query_id": "SQuAD question id", "query": "question", "passage_id": "article-paragraph index",
             "passage": "paragraph", "label": "1 if the paragraph is the question's own, else 0",
             "negative": "positive | hard (same article) | easy (other article); in test_ranked: positive | same "
                         "article | other article"},
    text_columns=("query", "passage"), label_names=("no_match", "match"),
    deviations=("stands in for DiPair's Q2P-MAT (MS MARCO based), which cannot be obtained here",
                "built from SQuAD v1.1: per question 1 positive, 1 hard negative (same article), 1 easy negative "
                f"(other article), seed {Q2P_SEED}; test = the official dev set; validation = {Q2P_VALIDATION_BUCKETS}% "
                "of the (reconstructed) train articles by title hash; train = the rest",
                "test_ranked: each official dev question against 10 paragraphs, its own and the 9 of its article "
                f"that BM25 (k1 {BM25_K1}, b {BM25_B}) ranks closest to it (short articles topped up from other "
                "articles); a ranking where chance MRR@10 is 0.293, against about 0.61 on test's 3 candidates"),
    source="derived from SQuAD v1.1", load_local=_load_squad_q2p,
))
