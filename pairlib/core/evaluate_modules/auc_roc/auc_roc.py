"""Area under the ROC curve of scores against binary labels (pairlib.core.metrics.auc_roc), loadable offline with
`evaluate.load(<this folder>)`."""
import datasets
import evaluate

from pairlib.core.metrics import auc_roc


class AucRoc(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__, citation="", inputs_description="predictions: scores; references: 0/1 labels",
            features=datasets.Features({"predictions": datasets.Value("float64"),
                                        "references": datasets.Value("int64")}))

    def _compute(self, predictions, references):
        return {"auc_roc": auc_roc(predictions, references)}
