"""One short training run per method with new layers, printed as a fingerprint of the weights and the metrics;
tests/test_determinism.py runs it in two processes and compares (torch seeds itself differently in each)."""
import hashlib
import json
import sys

import torch

from pairlib.dipair.experiment import DiPairExperiment, DiPairRecipe
from pairlib.fastbert.experiment import FastBertExperiment, FastBertRecipe


def fingerprint(model: torch.nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode() + t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


if __name__ == "__main__":
    out = sys.argv[1]
    fb = FastBertExperiment(FastBertRecipe(task="ag_news", max_length=24, train_examples=16, eval_examples=16,
                                           batch_size=8), "minilm-l6", f"{out}/fastbert", progress=False)
    model = fb.fine_tuned()
    sweep = fb.speed_sweep(model, [0.0, 0.5])
    dp = DiPairExperiment(DiPairRecipe(task="squad_q2p", train_examples=8, eval_examples=12, pool_queries=4,
                                       pool_passages=2, query_length=12, passage_length=24, cross_length=36,
                                       batch_size=4, teacher_epochs=1, student_epochs=1, stage1_epochs=1),
                          "minilm-l6", f"{out}/dipair", progress=False)
    dual = dp.dual("cosine")
    print(json.dumps({"fastbert": fingerprint(model), "fastbert_accuracy": sweep.accuracy.tolist(),
                      "de_cos": fingerprint(dual), "de_cos_metrics": dp.evaluate(dual)}))
