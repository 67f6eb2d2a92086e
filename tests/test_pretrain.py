"""Masked-language-model pretraining (the Chinese backbone FastBERT's Chinese tasks need)."""
import pytest
import torch

from pairlib.core import data
from pairlib.core.backbone import load_backbone
from pairlib.core.pretrain import (
    HELD_OUT_SPLITS,
    ZH_TASKS,
    Pretraining,
    PretrainRecipe,
    pretraining_texts,
    task_texts,
    token_blocks,
)


def test_the_corpus_holds_no_dev_or_test_text_of_any_chinese_task():
    train, heldout = pretraining_texts(ZH_TASKS, heldout_percent=2)
    evaluated = set()
    for name, task in data.TASKS.items():
        if task.language == "zh":
            dd = data.load_task(name)
            evaluated |= {t.strip() for s in HELD_OUT_SPLITS if s in dd for t in task_texts(task, dd[s])}
    train_texts = {t for name in ZH_TASKS for t in task_texts(data.get_task(name), data.load_task(name, "train"))}
    assert not (set(train) | set(heldout)) & evaluated
    assert not set(train) & set(heldout)
    assert len(train) > 300_000 and len(heldout) > 5_000
    # the guard does work here: some train texts also occur in a dev or test split, and are left out
    assert {t.strip() for t in train_texts} & evaluated


def test_blocks_are_cls_text_sep_text_sep_cut_to_length():
    from pairlib.core.backbone import chinese_tokenizer
    tok = chinese_tokenizer()
    blocks = token_blocks(tok, ["好看", "很好", "书"], block_length=6)
    assert tok.convert_ids_to_tokens(blocks[0]) == ["[CLS]", "好", "看", "[SEP]", "很", "[SEP]"]
    assert len(blocks) == 2  # 8 tokens (each text + [SEP]) in bodies of 4; the rest dropped


def test_a_bad_recipe_is_refused_before_any_data_loads():
    with pytest.raises(ValueError, match="not a Chinese task"):
        PretrainRecipe(tasks=("ag_news",))
    with pytest.raises(ValueError, match="multiple of heads"):
        PretrainRecipe(hidden=100, heads=3)
    with pytest.raises(data.DataError, match="unknown task .no_such_task"):
        PretrainRecipe(tasks=["no_such_task"])


def test_pretraining_lowers_the_held_out_loss_and_saves_a_backbone(tmp_path):
    recipe = PretrainRecipe(tasks=["chnsenticorp"], layers=2, hidden=64, heads=2, intermediate=128, block_length=32,
                            max_blocks=512, eval_blocks=64, epochs=2, batch_size=32, lr=2e-3, eval_every_steps=8)
    run = Pretraining(recipe, tmp_path, progress=False)
    before = run.heldout_metrics(run.new_model())
    model, result = run.run()
    after = run.heldout_metrics(model)
    assert after["mlm_loss"] < before["mlm_loss"] - 1.0  # from ~ln(21128) = 10 towards the unigram entropy
    assert [p["step"] for p in result.curve] == [8, 16, 24, 32]
    folder = run.save_backbone(model, tmp_path / "zh-tiny")
    encoder, tok = load_backbone(str(folder))
    assert encoder.config.num_hidden_layers == 2 and len(tok) == 21128
    assert torch.equal(encoder.embeddings.word_embeddings.weight, model.bert.embeddings.word_embeddings.weight)
    again, again_result = Pretraining(recipe, tmp_path, progress=False).run()  # finished: reloaded, not retrained
    assert again_result.curve == result.curve


def test_an_interrupted_pretraining_resumes_from_its_checkpoint(tmp_path, monkeypatch, caplog):
    """Resumed, the run continues from its last checkpoint and ends where an uninterrupted one does. Its weights are
    close to, not equal to, the uninterrupted run's: Accelerate's loader has already collated (and so masked) the
    batch after the checkpoint when the random state is saved, so the masks drawn after a resume differ."""
    from pairlib.core import pretrain
    recipe = PretrainRecipe(tasks=["chnsenticorp"], layers=1, hidden=32, heads=2, intermediate=64, block_length=16,
                            max_blocks=96, eval_blocks=8, epochs=2, batch_size=16, lr=1e-3, save_every_steps=2)
    straight, straight_result = Pretraining(recipe, tmp_path / "a", progress=False).run()
    calls, real = {"n": 0}, pretrain.mlm_loss

    def stops(model, batch, teacher=None):
        calls["n"] += 1
        if calls["n"] == 9:  # mid second epoch, after the checkpoint at step 8
            raise KeyboardInterrupt
        return real(model, batch, teacher)
    monkeypatch.setattr(pretrain, "mlm_loss", stops)
    with pytest.raises(KeyboardInterrupt):
        Pretraining(recipe, tmp_path / "b", progress=False).run()
    monkeypatch.undo()
    resumed, result = Pretraining(recipe, tmp_path / "b", progress=False).run()
    assert result.resumed_from_step == 8 and result.global_step == straight_result.global_step == 12
    assert result.history[-1]["mlm_loss"] == pytest.approx(straight_result.history[-1]["mlm_loss"], abs=0.05)
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, atol=1e-2, rtol=0, msg=name)
    # the tied decoder is stored once in a checkpoint and tied again on resume, without a notice at every checkpoint
    assert resumed.cls.predictions.decoder.weight is resumed.bert.embeddings.word_embeddings.weight
    assert "Removed shared tensor" not in caplog.text
