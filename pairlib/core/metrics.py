"""The study's metrics: plain functions, and the same as Hugging Face `evaluate` modules that ship inside the package
(`evaluate_modules/`), because the Hub's metric scripts cannot be fetched offline. `compute(name, ...)` is what the
experiments call, so every number in the notebooks goes through `evaluate`; `evaluate.load(module_path(name))` gives
a user the same module for their own predictions. tests/test_metrics.py keeps the two equal.

SQuAD EM/F1 follow the official v1.1 evaluation script: answers are normalised (lower case, punctuation and the
articles a/an/the removed, whitespace collapsed) and each prediction takes its best score over the gold answers.
"""
from __future__ import annotations

import functools
import re
import string
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

# scikit-learn is imported where it is used: it takes ~2 s to import, paid by every notebook and test process.


def accuracy(predictions: Sequence[int], labels: Sequence[int]) -> float:
    p, y = np.asarray(predictions), np.asarray(labels)
    if p.shape != y.shape or p.size == 0:
        raise ValueError(f"accuracy needs two non-empty sequences of equal length, got {p.shape} and {y.shape}")
    return float((p == y).mean())


def f1(predictions: Sequence[int], labels: Sequence[int], average: str = "binary") -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(labels, predictions, average=average))


def pair_scores(logits):
    """One relevance score per pair from a pair classifier's logits, shape (n, 1) or (n, 2), numpy or torch: the one
    logit, or the positive class's log-odds (monotone in its probability, so rankings and AUC-ROC are the same)."""
    if logits.ndim != 2 or logits.shape[1] not in (1, 2):
        raise ValueError(f"pair_scores needs logits of shape (n, 1) or (n, 2), got {tuple(logits.shape)}")
    return logits[:, 0] if logits.shape[1] == 1 else logits[:, 1] - logits[:, 0]


def auc_roc(scores: Sequence[float], labels: Sequence[int]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def mrr_at_k(scores: Sequence[float], labels: Sequence[int], groups: Sequence[str], k: int = 10,
             count_empty: bool = False) -> float:
    """Mean reciprocal rank of the first relevant item in each group's top k. Groups without a relevant item are
    left out (WikiQA's convention), or with `count_empty` count 0: MS MARCO's official MRR@10 averages over every
    judged query, so a query whose relevant passage the first-stage ranker missed scores 0."""
    by_group: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for s, y, g in zip(scores, labels, groups):
        by_group[g].append((float(s), int(y)))
    rr = []
    for items in by_group.values():
        if not any(y for _, y in items):
            if count_empty:
                rr.append(0.0)
            continue
        ranked = sorted(items, key=lambda t: -t[0])[:k]
        rr.append(next((1.0 / (i + 1) for i, (_, y) in enumerate(ranked) if y), 0.0))
    if not rr or not any(any(y for _, y in items) for items in by_group.values()):
        raise ValueError("mrr_at_k: no group has a relevant item")
    return float(np.mean(rr))


def ndcg_at_k(scores: Sequence[float], labels: Sequence[int], groups: Sequence[str], k: int = 10) -> float:
    """Mean over groups of DCG@k / ideal DCG@k with binary relevance (gain 1 at rank r counts 1 / log2(r + 1));
    groups without a relevant item are left out, as for MRR."""
    by_group: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for s, y, g in zip(scores, labels, groups):
        by_group[g].append((float(s), int(y)))
    values = []
    for items in by_group.values():
        relevant = sum(y for _, y in items)
        if not relevant:
            continue
        ranked = sorted(items, key=lambda t: -t[0])[:k]
        dcg = sum(y / np.log2(i + 2) for i, (_, y) in enumerate(ranked))
        ideal = sum(1 / np.log2(i + 2) for i in range(min(relevant, k)))
        values.append(dcg / ideal)
    if not values:
        raise ValueError("ndcg_at_k: no group has a relevant item")
    return float(np.mean(values))



def chance_levels(labels: Sequence[int], groups: Sequence[str], k: int = 10) -> dict[str, float]:
    """What a scorer that orders each group at random scores in expectation (exactly, not by sampling), under the
    same keys as the metrics: a ranking metric means something only next to it. With n candidates of which r are
    relevant, the first relevant one is at rank i with probability C(n - i, r - 1) / C(n, r), and every rank holds
    a relevant one with probability r / n."""
    from math import comb
    by_group: dict[str, list[int]] = defaultdict(list)
    for y, g in zip(labels, groups):
        by_group[g].append(int(y))
    rr, ndcg, empty = [], [], 0
    for ys in by_group.values():
        n, r = len(ys), sum(ys)
        if not r:
            empty += 1
            continue
        rr.append(sum(comb(n - i, r - 1) / comb(n, r) / i for i in range(1, min(k, n - r + 1) + 1)))
        ideal = sum(1 / np.log2(i + 2) for i in range(min(r, k)))
        ndcg.append(sum(r / n / np.log2(i + 2) for i in range(min(k, n))) / ideal)
    if not rr:
        raise ValueError("chance_levels: no group has a relevant item")
    out = {"auc_roc": 0.5, f"mrr@{k}": float(np.mean(rr)), f"ndcg@{k}": float(np.mean(ndcg))}
    if empty:  # as the ranking metric reports it where some queries have no relevant candidate
        out[f"mrr@{k}_all_queries"] = float(np.sum(rr) / (len(rr) + empty))
    return out


MODULES = Path(__file__).parent / "evaluate_modules"


def module_path(name: str) -> str:
    """The folder of one of the package's `evaluate` modules: squad_v1, accuracy, auc_roc, ranking."""
    path = MODULES / name
    if not (path / f"{name}.py").is_file():
        known = sorted(p.name for p in MODULES.iterdir() if (p / f"{p.name}.py").is_file())
        raise ValueError(f"no evaluate module {name!r}; the package ships {', '.join(known)}")
    return str(path)


@functools.cache
def _loaded(name: str):
    import evaluate
    return evaluate.load(module_path(name))


def compute(name: str, **inputs) -> dict[str, float]:
    """A metric computed by the package's `evaluate` module `name` (loaded once per process)."""
    return {k: float(v) for k, v in _loaded(name).compute(**inputs).items()}


def normalize_answer(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def squad_token_f1(prediction: str, truth: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(truth).split()
    common = Counter(pred) & Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def squad_em_f1(predictions: Iterable[str], gold_answers: Iterable[Sequence[str]]) -> dict[str, float]:
    """EM and F1 in percent, each prediction scored against its best gold answer (official v1.1 script)."""
    em, f = [], []
    for pred, golds in zip(predictions, gold_answers):
        if not golds:
            raise ValueError("every question needs at least one gold answer")
        em.append(max(squad_exact_match(pred, g) for g in golds))
        f.append(max(squad_token_f1(pred, g) for g in golds))
    if not em:
        raise ValueError("squad_em_f1: no predictions")
    return {"exact_match": 100.0 * float(np.mean(em)), "f1": 100.0 * float(np.mean(f))}
