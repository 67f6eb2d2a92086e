"""The frontier scores every method the way it is served: the served call gives the scores the quality is computed
from, and the Pareto front keeps exactly the undominated points."""
import pytest
import torch

from pairlib.core.backbone import load_tokenizer
from pairlib.deformer.cache import PassageCache
from pairlib.deformer.inputs import pair_segments
from pairlib.deformer.modeling import DeFormerForSequenceClassification
from pairlib.dipair.experiment import encode_pairs
from pairlib.dipair.modeling import CrossEncoder, DiPairModel, DualEncoder
from pairlib.fastbert.experiment import encode
from pairlib.fastbert.modeling import FastBertForSequenceClassification
from pairlib.study import frontier

QUERIES = ["who wrote hamlet", "capital of france", "who wrote hamlet", "capital of france"]
PASSAGES = ["Hamlet is a tragedy by William Shakespeare.", "Paris is the capital of France.",
            "Paris is the capital of France.", "Hamlet is a tragedy by William Shakespeare."]
LABELS = [1, 1, 0, 0]
GROUPS = ["q1", "q2", "q1", "q2"]


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("minilm-l6")


@pytest.fixture(scope="module")
def candidates(tok, tmp_path_factory):
    torch.manual_seed(0)
    pairs = encode_pairs(tok, QUERIES, PASSAGES, 8, 16, 24)
    cands = [frontier.pair_model_candidate("cross 1", "cross-encoder",
                                           CrossEncoder.from_backbone(num_layers=1).eval(), pairs),
             frontier.pair_model_candidate("dipair", "DiPair", DiPairModel.from_backbone(head_layers=1).eval(),
                                           pairs),
             frontier.pair_model_candidate("de-cos", "dual encoder", DualEncoder.from_backbone(scorer="cosine").eval(),
                                           pairs)]
    import datasets
    ds = datasets.Dataset.from_dict({"query": QUERIES, "passage": PASSAGES, "label": LABELS})
    fast = FastBertForSequenceClassification.from_backbone("minilm-l6", num_labels=2).eval()
    cands.append(frontier.fastbert_candidate("fastbert 0.5", fast, encode(tok, ds, ("query", "passage"), 24), 0.5,
                                             batch_size=3))
    segments = pair_segments(tok, QUERIES, PASSAGES, 8, 16, LABELS)
    for k in (0, 1):
        model = DeFormerForSequenceClassification.from_backbone(split_layer=k, num_labels=2).eval()
        cache = PassageCache.from_inputs(model, segments.passage_ids, segments.tensors["passage_input_ids"],
                                         segments.tensors["passage_attention_mask"],
                                         str(tmp_path_factory.mktemp("cache") / "p.safetensors")) if k else None
        cands.append(frontier.deformer_candidate(f"deformer k={k}", model, segments, cache))
    return cands


def _served_scores(c: frontier.Candidate) -> list[float]:
    out = c.serve(0, len(LABELS))()
    if isinstance(out, torch.Tensor):
        return out.tolist()
    return (out.logits[:, 1] - out.logits[:, 0]).tolist()


def test_served_call_gives_the_evaluated_scores(candidates):
    for c in candidates:
        assert _served_scores(c) == pytest.approx(c.scores, abs=1e-4), c.name


def test_measure_reports_quality_cost_and_front(candidates):
    table = frontier.measure_frontier(candidates, LABELS, GROUPS, batch_sizes=(1, 2), timed_pairs=4, repeats=1)
    assert list(table.model) == [c.name for c in candidates]
    for col in ("auc_roc", "mrr@10", "gflops_per_pair", "ms_per_pair_batch1", "pairs_per_s_batch2",
                "frontier_batch1", "frontier_batch2"):
        assert table[col].notna().all(), col
    t = table.set_index("model")
    # one cross-encoder layer over 24 tokens costs less than six DeFormer layers over the same pair
    assert t.gflops_per_pair["cross 1"] < t.gflops_per_pair["deformer k=0"]
    assert t.gflops_per_pair["deformer k=1"] < t.gflops_per_pair["deformer k=0"]
    assert table.frontier_batch1.any()


def test_measure_refuses_bad_settings(candidates):
    with pytest.raises(ValueError, match="timed_pairs"):
        frontier.measure_frontier(candidates, LABELS, GROUPS, batch_sizes=(1, 8), timed_pairs=4)
    with pytest.raises(ValueError, match="scored"):
        frontier.measure_frontier(candidates, LABELS[:3], GROUPS[:3], batch_sizes=(1,), timed_pairs=2)


def test_pareto_front_keeps_the_undominated():
    cost = [1.0, 2.0, 3.0, 2.0, 1.0]
    quality = [0.5, 0.8, 0.7, 0.8, 0.4]
    # 0: cheapest at its quality; 1 and 3 tie (neither dominates the other); 2 is beaten by 1; 4 by 0
    assert frontier.pareto_front(cost, quality) == [True, True, False, True, False]


def test_the_training_table_is_narrow_and_keeps_counts_integer():
    from pairlib.study.frontier import TRAINING_COLUMNS, training_table
    table = training_table({
        "DiPair": [{"model": "teacher", "stage": "", "folder": "f1", "pairs": 4000, "epochs": 1, "lr": 5e-5,
                    "steps": 250, "train_seconds": 3.0, "final_train_loss": 0.4}],
        "DeFormer": [{"model": "k2", "folder": "f2", "split_layer": 2, "train_rows": 4000, "w_task": 0.7,
                      "steps": 250, "train_seconds": 4.0, "final_train_loss": 0.7}],
    })
    assert tuple(table.columns) == TRAINING_COLUMNS
    assert table.rows.tolist() == [4000, 4000] and str(table.steps.dtype) == "Int64"
    assert table.settings.tolist() == ["", "split_layer=2, w_task=0.7"]
