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
    tok = chinese_tokenizer()
    assert len(tok) == 21128  # bert-base-chinese's whole vocabulary, not a handful of special tokens
    ids = tok("书很好看 OK")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == ["[CLS]", "书", "很", "好", "看", "ok", "[SEP]"]


def test_zh_mini_not_built_yet_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PAIRLIB_MODELS", str(tmp_path))
    with pytest.raises(BackboneError, match="zh-mini.*not been built.*--only 34_zh_pretrain"):
        resolve_backbone("zh-mini")
    (tmp_path / "zh-mini").mkdir()
    (tmp_path / "zh-mini" / "config.json").write_text("{}")
    assert resolve_backbone("zh-mini") == str(tmp_path / "zh-mini")


def test_a_backbone_pretrained_here_names_its_models_by_how_it_was_pretrained(tmp_path):
    from pairlib.core.backbone import backbone_identity
    assert backbone_identity("minilm-l6") == "minilm-l6"
    a, b = tmp_path / "a" / "zh-x", tmp_path / "b" / "zh-x"
    for folder, recipe in ((a, '{"hidden": 64}'), (b, '{"hidden": 64}')):
        folder.mkdir(parents=True)
        (folder / "pretraining.json").write_text(recipe)
    assert backbone_identity(str(a)) == backbone_identity(str(b)) != "zh-x"  # the same wherever it lies
    (b / "pretraining.json").write_text('{"hidden": 128}')
    assert backbone_identity(str(a)) != backbone_identity(str(b))  # pretrained again differently: a new name


def test_a_notebook_takes_zh_mini_from_its_own_outputs(tmp_path):
    from pairlib.core.backbone import pretrained_backbone
    assert pretrained_backbone("minilm-l6", tmp_path) == "minilm-l6"
    with pytest.raises(BackboneError, match="has not been pretrained into.*34_zh_pretrain"):
        pretrained_backbone("zh-mini", tmp_path)
    (tmp_path / "models" / "zh-mini").mkdir(parents=True)
    (tmp_path / "models" / "zh-mini" / "config.json").write_text("{}")
    assert pretrained_backbone("zh-mini", tmp_path) == str(tmp_path / "models" / "zh-mini")
