"""MRR@k and nDCG@k of scored candidates grouped by query (pairlib.core.metrics), loadable offline with
`evaluate.load(<this folder>)`; queries with no relevant candidate are left out, as in WikiQA. Where there are
such queries, `mrr@k_all_queries` also counts them 0, as MS MARCO's official MRR@10 does."""
import datasets
import evaluate

from pairlib.core.metrics import mrr_at_k, ndcg_at_k


class Ranking(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__, citation="", inputs_description="predictions: scores; references: 0/1 relevance; "
            "groups: the query of each candidate; k: the cut-off (10)",
            features=datasets.Features({"predictions": datasets.Value("float64"),
                                        "references": datasets.Value("int64"), "groups": datasets.Value("string")}))

    def _compute(self, predictions, references, groups, k: int = 10):
        out = {f"mrr@{k}": mrr_at_k(predictions, references, groups, k),
               f"ndcg@{k}": ndcg_at_k(predictions, references, groups, k)}
        relevant = {g for g, y in zip(groups, references) if y}
        if set(groups) - relevant:
            out[f"mrr@{k}_all_queries"] = mrr_at_k(predictions, references, groups, k, count_empty=True)
        return out
