"""Accuracy (pairlib.core.metrics.accuracy), loadable offline with `evaluate.load(<this folder>)`."""
import datasets
import evaluate

from pairlib.core.metrics import accuracy


class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__, citation="", inputs_description="predictions and references: class ids",
            features=datasets.Features({"predictions": datasets.Value("int64"),
                                        "references": datasets.Value("int64")}))

    def _compute(self, predictions, references):
        return {"accuracy": accuracy(predictions, references)}
