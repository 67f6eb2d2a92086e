"""The papers' published numbers, each once, with the table or figure it comes from (../shared/PAPERS.md).

Only results live here: the hyper-parameters the papers used are recipe settings and live in `params/*.yaml`.
Claims modules (`deformer_claims`, `fastbert_claims`, `dipair_claims`) and the notebooks' tables and figures read
these; no notebook cell holds a published number (tests/test_claims.py scans them).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskRow:
    """One task's row of DeFormer's Tables 1 and 2 (BERT-base, k = 9 of 12): accuracy or F1 of the original model
    and of DeFormer (points), the speedup from cached passages and the memory saved (%)."""
    original: float
    deformer: float
    speedup: float
    memory_reduction: float
    source: str

    @property
    def drop(self) -> float:
        return round(self.original - self.deformer, 1)


# ---- DeFormer (ACL 2020), BERT-base, k = 9 of 12 ----
DEFORMER_SPLIT = (9, 12)  # the paper splits 9 of BERT-base's 12 layers
DEFORMER = {
    "squad": TaskRow(88.5, 87.1, 3.2, 70.3, "Table 1"),
    "race": TaskRow(66.3, 64.5, 3.4, 72.9, "Table 1"),
    "boolq": TaskRow(77.8, 76.8, 3.5, 72.0, "Table 1"),
    "mnli": TaskRow(84.4, 82.6, 2.2, 56.4, "Table 2"),
    "qqp": TaskRow(90.5, 90.3, 2.0, 50.0, "Table 2"),
}
# Table 5 (BERT-base, SQuAD F1): the loss ablation; keys name the losses DeFormer is trained with
DEFORMER_ABLATION_F1 = {"original": 88.5, "task loss only": 85.8, "KD only": 86.2, "KD + LRS": 87.1}
DEFORMER_TRAIN_QUESTIONS = 87_599  # SQuAD v1.1's whole train set, which the paper trains on (3 epochs)
# Figure 4 (BERT-base, no auxiliary losses): speedup at k = 1..11, F1 drop at k = 1..10 (11 is not labelled)
DEFORMER_SWEEP_SPEEDUP = dict(zip(range(1, 12), (1.1, 1.2, 1.3, 1.4, 1.6, 1.9, 2.2, 2.6, 3.2, 4.3, 6.4)))
DEFORMER_SWEEP_DROP = dict(zip(range(1, 11), (0.3, 0.3, 0.2, 0.9, 2.6, 2.9, 2.4, 3.1, 2.7, 3.3)))


def deformer_ablation_drop(losses: str) -> float:
    """Table 5's F1 drop against the original model for DeFormer trained with `losses`."""
    return round(DEFORMER_ABLATION_F1["original"] - DEFORMER_ABLATION_F1[losses], 1)


# ---- FastBERT (ACL 2020), BERT-base, 12 layers ----
@dataclass(frozen=True)
class FastBertRow:
    """One dataset of Table 2: its name in the paper, BERT's accuracy (%), and per speed FastBERT's accuracy and
    FLOPs speedup."""
    name: str
    bert: float
    by_speed: dict[float, tuple[float, float]]


FASTBERT_TABLE2 = {
    "chnsenticorp": FastBertRow("ChnSentiCorp", 95.25, {0.1: (95.25, 2.02), 0.5: (92.00, 6.82), 0.8: (89.75, 9.40)}),
    "book_review": FastBertRow("Book review", 86.88, {0.1: (86.88, 1.60), 0.5: (86.64, 4.21), 0.8: (85.14, 7.23)}),
    "shopping": FastBertRow("Shopping review", 96.84, {0.1: (96.79, 4.45), 0.5: (96.42, 8.65), 0.8: (95.72, 10.04)}),
    "lcqmc": FastBertRow("LCQMC", 86.68, {0.1: (86.59, 1.68), 0.5: (84.05, 3.42), 0.8: (77.45, 6.57)}),
    "weibo": FastBertRow("Weibo", 97.69, {0.1: (97.71, 5.90), 0.5: (97.72, 6.51), 0.8: (97.69, 10.09)}),
    "thucnews": FastBertRow("THUCNews", 96.71, {0.1: (96.71, 6.05), 0.5: (95.64, 11.00), 0.8: (94.97, 11.74)}),
    "ag_news": FastBertRow("Ag.news", 94.47, {0.1: (94.38, 3.62), 0.5: (93.14, 10.33), 0.8: (92.53, 11.72)}),
    "amazon_full": FastBertRow("Amz.F", 65.50, {0.1: (65.50, 1.03), 0.5: (64.64, 2.16), 0.8: (61.70, 9.24)}),
    "dbpedia": FastBertRow("DBpedia", 99.31, {0.1: (99.28, 10.57), 0.5: (99.05, 11.74), 0.8: (99.04, 11.75)}),
    "yahoo": FastBertRow("Yahoo", 77.36, {0.1: (77.37, 1.30), 0.5: (76.57, 4.48), 0.8: (75.05, 11.08)}),
    "yelp_full": FastBertRow("Yelp.F", 65.93, {0.1: (65.93, 1.05), 0.5: (64.73, 2.21), 0.8: (60.66, 8.37)}),
    "yelp_p": FastBertRow("Yelp.P", 96.04, {0.1: (95.99, 3.26), 0.5: (95.32, 6.30), 0.8: (94.31, 8.85)}),
}
# Table 2, Ag.news: DistilBERT at 6, 3 and 1 layers (accuracy %)
FASTBERT_AG_DISTILBERT = {6: 94.64, 3: 93.98, 1: 92.88}
# Table 1 (BERT-base, length 128): 21785M FLOPs in all against 1809.9M + 46.1M for the first layer and its
# classifier: the most FLOPs exiting can save, every sample leaving after the first layer
FASTBERT_FLOPS_LIMIT = 21785 / (1809.9 + 46.1)
# Figure 5 (Book review, speed 0.8): mean exit layer (0-based) of 12, and the share leaving after the first layer
FASTBERT_EXIT_MEAN_AT_08 = 0.92
FASTBERT_EXIT_AFTER_FIRST_AT_08 = 0.61
FASTBERT_LAYERS = 12
# Table 3 (Book review): accuracy gained by self-distillation at speeds 0.2 and 0.7 (86.98 - 86.22, 85.69 - 85.02),
# and by adaptive over fixed exits at a comparable speedup (86.98 at 2.23x vs 86.42 at 1.95x; 85.69 at 6.01x vs
# 82.88 at 5.87x)
FASTBERT_SELF_DISTILLATION_GAIN = {0.2: 0.76, 0.7: 0.67}
FASTBERT_ADAPTIVE_GAIN = ((0.56, 2.23, 1.95), (2.81, 6.01, 5.87))

# ---- DiPair (Findings of EMNLP 2020), Q2P-MAT test, Table 3 ----
DIPAIR_AUC = 0.932  # DiPair-TSF, transformer head
DIPAIR_SPEEDUP = 355  # over the BERT-base teacher
DIPAIR_TINY_AUC = 0.936  # BERT-Tiny, the smallest cross-encoder
DIPAIR_TINY_SPEEDUP = 44
DIPAIR_VS_TINY_SPEEDUP = round(DIPAIR_SPEEDUP / DIPAIR_TINY_SPEEDUP, 1)
DIPAIR_VS_TINY_AUC = round(DIPAIR_AUC - DIPAIR_TINY_AUC, 3)


def published_numbers() -> set[float]:
    """Every number above, for the test that no notebook cell holds one."""
    found: set[float] = {*DEFORMER_ABLATION_F1.values(), *DEFORMER_SWEEP_SPEEDUP.values(),
                         *DEFORMER_SWEEP_DROP.values(), *FASTBERT_AG_DISTILBERT.values(), FASTBERT_EXIT_MEAN_AT_08,
                         FASTBERT_EXIT_AFTER_FIRST_AT_08, *FASTBERT_SELF_DISTILLATION_GAIN.values(),
                         *(x for row in FASTBERT_ADAPTIVE_GAIN for x in row), DIPAIR_AUC, DIPAIR_SPEEDUP,
                         DIPAIR_TINY_AUC, DIPAIR_TINY_SPEEDUP, DIPAIR_VS_TINY_SPEEDUP, DEFORMER_TRAIN_QUESTIONS}
    for row in DEFORMER.values():
        found |= {row.original, row.deformer, row.speedup, row.memory_reduction, row.drop}
    for fb in FASTBERT_TABLE2.values():
        found |= {fb.bert, *(x for pair in fb.by_speed.values() for x in pair)}
    return found
