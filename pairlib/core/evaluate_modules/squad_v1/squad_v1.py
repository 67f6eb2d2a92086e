"""SQuAD v1.1 exact match and F1, as the official evaluate-v1.1.py computes them (pairlib.core.metrics), loadable
offline with `evaluate.load(<this folder>)`; the Hub's `squad` metric cannot be fetched here."""
import datasets
import evaluate

from pairlib.core.metrics import squad_em_f1


class SquadV1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__, citation="Rajpurkar et al., SQuAD: 100,000+ Questions for Machine Comprehension of "
            "Text (EMNLP 2016)", inputs_description="predictions: answer texts; references: each one's gold answers",
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Sequence(datasets.Value("string"))}))

    def _compute(self, predictions, references):
        return squad_em_f1(predictions, references)
