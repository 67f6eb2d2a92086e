import time

import pytest
import torch

from pairlib.core.backbone import BackboneError, chinese_tokenizer, load_backbone, resolve_backbone


@pytest.fixture(scope="module")
def minilm():
    return load_backbone("minilm-l6")


def test_minilm_loads_offline(minilm):
    model, tok = minilm
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    enc = tok(["a question"], ["a passage"], return_tensors="pt")
    assert model(**enc).last_hidden_state.shape[-1] == 384


def test_first_n_layers_keep_their_weights(minilm):
    full, _ = minilm
    small, _ = load_backbone("minilm-l6", num_layers=2)
    assert small.config.num_hidden_layers == 2
    for a, b in zip(small.encoder.layer.parameters(), full.encoder.layer[:2].parameters()):
        assert torch.equal(a, b)


def test_bad_layer_count():
    with pytest.raises(BackboneError, match="num_layers must be in 1..6"):
        load_backbone("minilm-l6", num_layers=7)


def test_unknown_backbone_offline_fails_fast_and_clearly():
    t0 = time.perf_counter()
    with pytest.raises(BackboneError, match="unknown backbone 'no-such/model'.*minilm-l6"):
        resolve_backbone("no-such/model")
    assert time.perf_counter() - t0 < 5


def test_local_folder_round_trip(minilm, tmp_path):
    model, tok = minilm
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    again, _ = load_backbone(str(tmp_path))
    assert torch.equal(again.embeddings.word_embeddings.weight, model.embeddings.word_embeddings.weight)


def test_chinese_vocabulary_tokenizes_offline():
    ids = chinese_tokenizer()("书很好看")["input_ids"]
    assert len(ids) == 6  # [CLS] + 4 characters + [SEP]
    assert 100 not in ids  # no [UNK]
