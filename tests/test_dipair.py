"""DiPair pinned down: cached scoring equals scoring from text, truncation keeps exactly m and n tokens, save/load."""
import pytest
import torch

from pairlib.core.backbone import load_tokenizer
from pairlib.dipair.modeling import DiPairConfig, DiPairModel, DualEncoder

QUERIES = ["who wrote hamlet", "capital of france", "x"]
PASSAGES = ["Hamlet is a tragedy written by William Shakespeare around 1600.",
            "Paris is the capital and most populous city of France.", "Short."]


@pytest.fixture(scope="module")
def inputs():
    tok = load_tokenizer("minilm-l6")
    q = tok(QUERIES, padding="max_length", max_length=8, truncation=True, return_tensors="pt")
    p = tok(PASSAGES, padding="max_length", max_length=20, truncation=True, return_tensors="pt")
    return {"query_input_ids": q["input_ids"], "query_attention_mask": q["attention_mask"],
            "passage_input_ids": p["input_ids"], "passage_attention_mask": p["attention_mask"]}


@pytest.mark.parametrize("head_type,shared,pre_ln", [("transformer", True, True), ("transformer", True, False),
                                                    ("ffnn", False, True)])
def test_cached_scoring_equals_scoring_from_text(inputs, head_type, shared, pre_ln):
    model = DiPairModel.from_backbone("minilm-l6", query_tokens=4, passage_tokens=12, head_dim=64, head_layers=2,
                                      head_type=head_type, shared_encoders=shared, head_norm_first=pre_ln).eval()
    with torch.no_grad():
        direct = model(**inputs)
        q = model.encode_query(inputs["query_input_ids"], inputs["query_attention_mask"])
        cache = {i: model.encode_passage(inputs["passage_input_ids"][i:i + 1],
                                         inputs["passage_attention_mask"][i:i + 1]) for i in range(3)}
        p = type(q)(states=torch.cat([cache[i].states for i in range(3)]),
                    mask=torch.cat([cache[i].mask for i in range(3)]))
        cached = model.score(q, p)
    assert direct.shape == (3,)
    torch.testing.assert_close(cached, direct, rtol=1e-5, atol=1e-5)


def test_truncation_keeps_exactly_m_and_n_tokens(inputs):
    model = DiPairModel.from_backbone("minilm-l6", query_tokens=3, passage_tokens=30, head_dim=32,
                                      head_heads=2).eval()
    with torch.no_grad():
        q = model.encode_query(inputs["query_input_ids"], inputs["query_attention_mask"])
        p = model.encode_passage(inputs["passage_input_ids"], inputs["passage_attention_mask"])
    assert q.states.shape == (3, 3, 32) and q.mask.shape == (3, 3)
    assert p.states.shape == (3, 30, 32)  # longer than the 20-token input: padded, masked
    assert p.mask[:, 20:].sum() == 0
    assert q.mask[2].tolist() == [1, 1, 1]  # "[CLS] x [SEP]" fills 3 tokens exactly


def test_save_and_load_round_trip(inputs, tmp_path):
    for cls, kw in [(DiPairModel, {"head_dim": 32, "head_heads": 2, "shared_encoders": False}),
                    (DiPairModel, {"head_dim": 32, "head_heads": 2, "head_norm_first": False}),
                    (DualEncoder, {"scorer": "ffnn"})]:
        model = cls.from_backbone("minilm-l6", **kw).eval()
        model.save_pretrained(tmp_path / cls.__name__)
        again = cls.from_pretrained(tmp_path / cls.__name__).eval()
        with torch.no_grad():
            torch.testing.assert_close(model(**inputs), again(**inputs))


def test_the_head_is_pre_ln_unless_asked_otherwise():
    pre = DiPairModel.from_backbone("minilm-l6", head_dim=32, head_heads=2, head_layers=2)
    post = DiPairModel.from_backbone("minilm-l6", head_dim=32, head_heads=2, head_layers=2, head_norm_first=False)
    assert all(layer.norm_first for layer in pre.head.body.layers) and pre.head.body.norm is not None
    assert not any(layer.norm_first for layer in post.head.body.layers) and post.head.body.norm is None


def test_shared_encoders_are_one_module():
    model = DiPairModel.from_backbone("minilm-l6", head_dim=32, head_heads=2)
    assert model.passage_encoder is model.query_encoder
    assert not any(n.startswith("separate_passage_encoder") for n, _ in model.named_parameters())
    assert model.encoder_prefixes == ("query_encoder.",)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="head_type"):
        DiPairConfig(head_type="lstm")
    with pytest.raises(ValueError, match="divisible"):
        DiPairConfig(head_dim=30, head_heads=4)
    with pytest.raises(ValueError, match=">= 1"):
        DiPairConfig(query_tokens=0)


def test_cosine_dual_encoder_scores_identical_texts_highest(inputs):
    model = DualEncoder.from_backbone("minilm-l6", scorer="cosine").eval()
    with torch.no_grad():
        u = model.encode_query(inputs["passage_input_ids"], inputs["passage_attention_mask"])
        same = model.score(u, u)
    torch.testing.assert_close(same, torch.full_like(same, 10.0))


def test_the_zero_shot_baseline_is_the_untrained_backbone_and_already_matches(inputs):
    import types

    from pairlib.dipair.experiment import DiPairExperiment
    model = DiPairExperiment.zero_shot_dual(types.SimpleNamespace(backbone="minilm-l6"))
    assert not model.training
    with torch.no_grad():
        u = model.encode_query(inputs["query_input_ids"], inputs["query_attention_mask"])
        v = model.encode_passage(inputs["passage_input_ids"], inputs["passage_attention_mask"])
        scores = model.score(u[:, None], v[None, :])  # every query against every passage
    assert scores[:2].argmax(-1).tolist() == [0, 1], "all-MiniLM-L6-v2 untrained finds Hamlet's and Paris's passages"
