"""Equivalence tests that pin DeFormer down (on the real MiniLM backbone, tiny inputs)."""
import pytest
import torch

from pairlib.core.backbone import load_backbone
from pairlib.deformer.cache import PassageCache
from pairlib.deformer.inputs import tokenize_segments
from pairlib.deformer.modeling import (
    DeFormerForMultipleChoice,
    DeFormerForQuestionAnswering,
    DeFormerForSequenceClassification,
    DeFormerModel,
)


@pytest.fixture(scope="module")
def tok():
    return load_backbone("minilm-l6")[1]


def _inputs(tok, questions, passages, q_len=12, p_len=24):
    return tokenize_segments(tok, questions, passages, q_len, p_len)


def test_split_layer_zero_is_the_original_model(tok):
    bert, _ = load_backbone("minilm-l6")
    model = DeFormerModel.from_backbone("minilm-l6", split_layer=0).eval()
    x = _inputs(tok, ["who wrote hamlet?"], ["hamlet is a tragedy by william shakespeare."])
    ids = torch.cat([x["question_input_ids"], x["passage_input_ids"]], 1)
    mask = torch.cat([x["question_attention_mask"], x["passage_attention_mask"]], 1)
    types = torch.cat([torch.zeros_like(x["question_input_ids"]), torch.ones_like(x["passage_input_ids"])], 1)
    with torch.no_grad():
        ours = model(**x).last_hidden_state
        original = bert.eval()(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    real = mask.bool()[0]
    torch.testing.assert_close(ours[0, real], original[0, real], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_cached_and_uncached_passages_give_identical_answers(tok, k):
    model = DeFormerForQuestionAnswering.from_backbone("minilm-l6", split_layer=k).eval()
    x = _inputs(tok, ["who wrote hamlet?", "when?"], ["hamlet is a tragedy by shakespeare.", "in 1600 or so."])
    with torch.no_grad():
        uncached = model(**x)
        states = model.encode_passage(x["passage_input_ids"], x["passage_attention_mask"])
        cached = model(question_input_ids=x["question_input_ids"],
                       question_attention_mask=x["question_attention_mask"],
                       passage_attention_mask=x["passage_attention_mask"], passage_states=states)
    torch.testing.assert_close(cached.start_logits, uncached.start_logits, rtol=0, atol=0)
    torch.testing.assert_close(cached.end_logits, uncached.end_logits, rtol=0, atol=0)


def test_passage_encoding_does_not_depend_on_the_question(tok):
    model = DeFormerModel.from_backbone("minilm-l6", split_layer=3).eval()
    x1 = _inputs(tok, ["a short one?"], ["the same passage."], q_len=8)
    x2 = _inputs(tok, ["a much longer question with many more words?"], ["the same passage."], q_len=16)
    with torch.no_grad():
        a = model.encode_passage(x1["passage_input_ids"], x1["passage_attention_mask"])
        b = model.encode_passage(x2["passage_input_ids"], x2["passage_attention_mask"])
    torch.testing.assert_close(a, b)


def test_multiple_choice_shares_the_article(tok):
    model = DeFormerForMultipleChoice.from_backbone("minilm-l6", split_layer=4).eval()
    q = tok(["q a", "q b", "q c", "q d"], padding="max_length", max_length=8, return_tensors="pt")
    p = tok(["an article"], padding="max_length", max_length=17, return_tensors="pt")
    inputs = dict(question_input_ids=q["input_ids"][None], question_attention_mask=q["attention_mask"][None],
                  passage_input_ids=p["input_ids"][:, 1:], passage_attention_mask=p["attention_mask"][:, 1:])
    with torch.no_grad():
        logits = model(**inputs).logits
        states = model.encode_passage(inputs["passage_input_ids"], inputs["passage_attention_mask"])
        cached = model(question_input_ids=inputs["question_input_ids"],
                       question_attention_mask=inputs["question_attention_mask"],
                       passage_attention_mask=inputs["passage_attention_mask"], passage_states=states).logits
    assert logits.shape == (1, 4)
    torch.testing.assert_close(logits, cached, rtol=0, atol=0)


def test_save_load_round_trip_and_reinit_with_another_split(tok, tmp_path):
    model = DeFormerForSequenceClassification.from_backbone("minilm-l6", split_layer=0, num_labels=2).eval()
    x = _inputs(tok, ["is it?"], ["it is."])
    model.save_pretrained(tmp_path)
    again = DeFormerForSequenceClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**x).logits, again(**x).logits, rtol=0, atol=0)
    split = DeFormerForSequenceClassification.from_pretrained(tmp_path, split_layer=4)
    assert split.config.split_layer == 4
    torch.testing.assert_close(split.classifier.weight, model.classifier.weight)


def test_bad_split_layer_is_refused():
    with pytest.raises(ValueError, match="split_layer must be in 0..5"):
        DeFormerModel.from_backbone("minilm-l6", split_layer=6)


def test_passage_cache_on_disk_answers_like_uncached(tok, tmp_path):
    model = DeFormerForQuestionAnswering.from_backbone("minilm-l6", split_layer=4).eval()
    passages = {"p1": "hamlet is a tragedy by shakespeare.", "p2": "the eiffel tower is in paris, france."}
    cache = PassageCache.build(model, tok, passages, str(tmp_path / "c.safetensors"), passage_length=24)
    cache = PassageCache.load(str(tmp_path / "c.safetensors"))
    cache.check(model)
    x = _inputs(tok, ["where is the tower?", "who wrote hamlet?"], [passages["p2"], passages["p1"]])
    states, mask = cache.batch(["p2", "p1"], passage_length=24)
    assert torch.equal(mask, x["passage_attention_mask"])
    with torch.no_grad():
        uncached = model(**x)
        cached = model(question_input_ids=x["question_input_ids"], question_attention_mask=x["question_attention_mask"],
                       passage_attention_mask=mask, passage_states=states)
    real = mask.bool()
    torch.testing.assert_close(cached.start_logits[real], uncached.start_logits[real], rtol=1e-5, atol=1e-5)
    n_tokens = int(mask.sum())
    assert cache.bytes_per_token == 384 * 4 and cache.bytes_per_passage == n_tokens * 384 * 4 / 2
    other = DeFormerForQuestionAnswering.from_backbone("minilm-l6", split_layer=3)
    with pytest.raises(ValueError, match="rebuild it"):
        cache.check(other)
    with pytest.raises(KeyError, match="not in the cache"):
        cache.batch(["p3"], 24)


def test_layer_drift_is_zero_where_the_question_cannot_reach_the_passage():
    """At the embeddings a passage token sees no question: no spread over questions and, at the joint input's
    positions, no distance to the passage encoded alone; from the first layer on, attention mixes the question in."""
    from pairlib.core.backbone import load_backbone
    from pairlib.core.backbone import second_segment_type
    from pairlib.deformer.drift import layer_drift
    model, tok = load_backbone("minilm-l6")
    pairs = [("The Normans gave their name to Normandy, a region in France.",
              ["Who gave their name to Normandy?", "Where is Normandy?", "What did the Normans give?"])]
    d = layer_drift(model, tok, pairs, question_length=16, passage_length=24).set_index("layer")
    assert d.loc[0, "mean_distance"] < 1e-6 and d.loc[0, "distance_to_alone_same_positions"] < 1e-6
    assert d.loc[0, "distance_to_alone"] > 1e-3  # DeFormer's cache restarts the positions at 0
    assert (d.loc[1:, "mean_distance"] > 1e-6).all() and len(d) == model.config.num_hidden_layers + 1
    assert second_segment_type(tok) == 1


def test_on_me5_small_the_passage_reads_with_the_token_type_its_tokenizer_gives_and_the_equivalences_hold():
    """me5-small's tokenizer types both texts of a pair 0 (its pretraining never used type 1): DeFormer's passage
    segment takes that type, so k=0 is the backbone reading the pair as its tokenizer encodes it, and a cached
    passage gives the answer an uncached one does (the 2-layer slice keeps the test quick)."""
    from pairlib.core.backbone import second_segment_type
    bert, me5_tok = load_backbone("me5-small-l2")
    assert second_segment_type(me5_tok) == 0
    model = DeFormerModel.from_backbone("me5-small-l2", split_layer=0).eval()
    assert model.config.passage_token_type == 0
    x = _inputs(me5_tok, ["who wrote hamlet?"], ["hamlet is a tragedy by william shakespeare."])
    ids = torch.cat([x["question_input_ids"], x["passage_input_ids"]], 1)
    mask = torch.cat([x["question_attention_mask"], x["passage_attention_mask"]], 1)
    with torch.no_grad():
        ours = model(**x).last_hidden_state
        original = bert.eval()(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
    real = mask.bool()[0]
    torch.testing.assert_close(ours[0, real], original.last_hidden_state[0, real], rtol=1e-5, atol=1e-5)
    split = DeFormerForQuestionAnswering.from_backbone("me5-small-l2", split_layer=1).eval()
    with torch.no_grad():
        uncached = split(**x)
        states = split.encode_passage(x["passage_input_ids"], x["passage_attention_mask"])
        cached = split(**{k: v for k, v in x.items() if k != "passage_input_ids"}, passage_states=states)
    torch.testing.assert_close(cached.start_logits, uncached.start_logits, rtol=0, atol=0)
