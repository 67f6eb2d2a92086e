import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pairlib.core.train import TrainConfig, finished_result, freeze, train

sys.path.insert(0, str(Path(__file__).parent))
from tiny_task import Tiny, collate, dataset, evaluate, mse  # noqa: E402


def _config(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path), epochs=3, batch_size=8, lr=1e-2, progress=False, save_every_steps=1)
    base.update(kw)
    return TrainConfig(**base)


def test_training_lowers_the_loss_and_keeps_the_best_checkpoint(tmp_path):
    model = Tiny()
    before = evaluate(model)["mse"]
    result = train(model, dataset(), collate, mse, _config(tmp_path, metric="mse", greater_is_better=False),
                   evaluate=evaluate)
    assert len(result.history) == 3 and result.global_step == 3 * 8
    assert result.best_metric == min(h["mse"] for h in result.history) < before
    best = Tiny()
    best.load_state_dict(torch.load(Path(result.best_dir) / "model.pt"))
    assert evaluate(best)["mse"] == pytest.approx(result.best_metric)


def test_a_learning_curve_every_few_steps_survives_a_resume(tmp_path):
    result = train(Tiny(), dataset(), collate, mse, _config(tmp_path, epochs=2, eval_every_steps=4, max_steps=12),
                   evaluate=evaluate)
    assert [p["step"] for p in result.curve] == [4, 8, 12]  # the last both a 4th step and the end
    assert all({"train_loss", "mse"} <= set(p) for p in result.curve)
    assert result.curve[-1]["mse"] < result.curve[0]["mse"]
    assert finished_result(tmp_path).curve == result.curve  # kept in the saved record


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path):
    straight = Tiny()
    train(straight, dataset(), collate, mse, _config(tmp_path / "a"))

    calls = {"n": 0}

    def crashing(model, batch, teacher):
        calls["n"] += 1
        if calls["n"] == 11:  # mid second epoch
            raise KeyboardInterrupt
        return mse(model, batch, teacher)

    with pytest.raises(KeyboardInterrupt):
        train(Tiny(), dataset(), collate, crashing, _config(tmp_path / "b"))
    resumed = Tiny()  # a fresh process would start from scratch weights too
    result = train(resumed, dataset(), collate, mse, _config(tmp_path / "b"))
    assert result.resumed_from_step == 10
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)
    # the resumed epoch's loss averages all of its batches, those before the interruption included
    assert result.history == finished_result(tmp_path / "a").history


def test_a_non_finite_loss_stops_training_with_a_clear_error(tmp_path):
    from pairlib.core.train import TrainingError

    def exploding(model, batch, teacher):
        return mse(model, batch, teacher) * float("inf")

    with pytest.raises(TrainingError, match="the training loss is inf at epoch 1, step 0.*Lower the lr"):
        train(Tiny(), dataset(), collate, exploding, _config(tmp_path))
    assert finished_result(tmp_path) is None


def test_a_resume_unpickles_nothing(tmp_path, monkeypatch):
    """A checkpoint folder from elsewhere must not run code: every file of `last/` is read as plain data."""
    def crashing(model, batch, teacher):
        crashing.n += 1
        if crashing.n == 4:
            raise KeyboardInterrupt
        return mse(model, batch, teacher)
    crashing.n = 0
    with pytest.raises(KeyboardInterrupt):
        train(Tiny(), dataset(), collate, crashing, _config(tmp_path))
    assert not list((tmp_path / "last").glob("custom_checkpoint_*"))  # the schedule is in trainer_state.json
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **kw: loads.append(kw.get("weights_only")) or real_load(*a, **kw))
    assert train(Tiny(), dataset(), collate, mse, _config(tmp_path)).resumed_from_step == 3
    assert loads and all(w is True for w in loads), loads


def test_a_finished_run_keeps_only_its_record_and_is_not_trained_again(tmp_path):
    first = train(Tiny(), dataset(), collate, mse, _config(tmp_path))
    assert [p.name for p in (tmp_path / "last").iterdir()] == ["trainer_state.json"]
    calls = {"n": 0}

    def counting(model, batch, teacher):
        calls["n"] += 1
        return mse(model, batch, teacher)

    again = train(Tiny(), dataset(), collate, counting, _config(tmp_path))
    assert calls["n"] == 0 and again.global_step == first.global_step and again.best_dir == first.best_dir


def test_a_moved_run_finds_its_weights_where_it_is_now(tmp_path):
    train(Tiny(), dataset(), collate, mse, _config(tmp_path / "before"))
    (tmp_path / "before").rename(tmp_path / "after")
    moved = finished_result(tmp_path / "after")
    assert moved.best_dir == str(tmp_path / "after" / "best") and (Path(moved.best_dir) / "model.pt").exists()


def test_frozen_groups_do_not_move_and_gradient_accumulation_counts_steps(tmp_path):
    model = Tiny()
    enc = model.encoder.weight.clone()
    result = train(model, dataset(), collate, mse, _config(tmp_path, frozen=["encoder"], grad_accum=2, epochs=1))
    assert torch.equal(model.encoder.weight, enc)
    assert result.global_step == 4  # 8 batches / 2


def test_a_prefix_with_its_own_lr_moves_at_that_rate(tmp_path):
    # One step of AdamW moves each weight by about its lr: the head at 1e-2, the encoder at 1e-4
    model, before = Tiny(), Tiny()
    train(model, dataset(16), collate, mse, _config(tmp_path, epochs=1, batch_size=16, lr=1e-4, warmup_ratio=0,
                                                   weight_decay=0, max_grad_norm=None,
                                                   lr_by_prefix={"head.": 1e-2}))
    head_step = (model.head.weight - before.head.weight).abs().max().item()
    encoder_step = (model.encoder.weight - before.encoder.weight).abs().max().item()
    assert head_step == pytest.approx(1e-2, rel=0.05) and encoder_step == pytest.approx(1e-4, rel=0.05)


def test_distillation_teacher_reaches_the_loss(tmp_path):
    teacher = Tiny()
    seen = []

    def distil(model, batch, t):
        seen.append(t is not None and not t.training and not any(p.requires_grad for p in t.parameters()))
        with torch.no_grad():
            target = t(batch["x"])
        return torch.nn.functional.mse_loss(model(batch["x"]), target)

    train(Tiny(), dataset(), collate, distil, _config(tmp_path, epochs=1), teacher=teacher)
    assert seen and all(seen)


def test_bad_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        TrainConfig(output_dir=str(tmp_path), epochs=0)
    with pytest.raises(ValueError, match="needs an evaluate function"):
        train(Tiny(), dataset(), collate, mse, _config(tmp_path, metric="mse"))
    with pytest.raises(ValueError, match="no parameter name starts with"):
        freeze(Tiny(), ["decoder"])
    with pytest.raises(ValueError, match=r"lr_by_prefix\['head.'\] must be > 0"):
        TrainConfig(output_dir=str(tmp_path), lr_by_prefix={"head.": 0.0})
    with pytest.raises(ValueError, match="no trainable parameter name starts with"):
        train(Tiny(), dataset(), collate, mse, _config(tmp_path, lr_by_prefix={"decoder.": 1e-3}))


def test_two_cpu_processes(tmp_path):
    """`accelerate launch --cpu` starts one process (../shared/STACK.md); --multi_gpu on a GPU-less machine starts
    two gloo ranks."""
    launcher = Path(sys.executable).parent / "accelerate"
    with socket.socket() as sock:  # a free port: the default 29500 clashes with any other launch on the machine
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    cmd = [str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--main_process_port", port, "--mixed_precision", "no", "--dynamo_backend", "no", str(Path(__file__).parent / "tiny_task.py"),
           str(tmp_path)]
    if torch.cuda.is_available():
        pytest.skip("this test is about CPU processes")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-8000:]
    ranks = sorted(p.read_text() for p in tmp_path.glob("rank*.txt"))
    assert len(ranks) == 2
    assert all(r.startswith("2 DistributedType.MULTI_CPU") for r in ranks)
    assert all(r.endswith(" 8") for r in ranks)  # 64 examples / (2 ranks x 8) x 2 epochs


def test_a_kill_while_a_checkpoint_is_written_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    from accelerate import Accelerator
    straight = Tiny()
    train(straight, dataset(), collate, mse, _config(tmp_path / "a"))

    real_save = Accelerator.save_state
    calls = {"n": 0}

    def dying_save(self, output_dir=None, **kw):
        calls["n"] += 1
        if calls["n"] == 5:  # killed half-way through writing the fifth checkpoint
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / "optimizer.bin").write_bytes(b"PK\x03\x04 truncated")
            raise KeyboardInterrupt
        return real_save(self, output_dir, **kw)

    monkeypatch.setattr(Accelerator, "save_state", dying_save)
    with pytest.raises(KeyboardInterrupt):
        train(Tiny(), dataset(), collate, mse, _config(tmp_path / "b"))
    monkeypatch.setattr(Accelerator, "save_state", real_save)
    resumed = Tiny()
    result = train(resumed, dataset(), collate, mse, _config(tmp_path / "b"))
    assert result.resumed_from_step == 4  # the fourth checkpoint, whole
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)


def test_a_kill_between_the_renames_puts_the_previous_checkpoint_back(tmp_path):
    calls = {"n": 0}

    def crashing(model, batch, teacher):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return mse(model, batch, teacher)

    with pytest.raises(KeyboardInterrupt):
        train(Tiny(), dataset(), collate, crashing, _config(tmp_path))
    (tmp_path / "last").rename(tmp_path / "last.old")  # as if killed after stepping aside, before the new one moved
    (tmp_path / "last.tmp").mkdir()
    result = train(Tiny(), dataset(), collate, mse, _config(tmp_path))
    assert result.resumed_from_step == 3 and not (tmp_path / "last.old").exists()


def test_an_unreadable_checkpoint_names_its_folder(tmp_path):
    from pairlib.core.train import CheckpointError

    def crashing(model, batch, teacher):
        if crashing.n == 3:
            raise KeyboardInterrupt
        crashing.n += 1
        return mse(model, batch, teacher)
    crashing.n = 0
    with pytest.raises(KeyboardInterrupt):
        train(Tiny(), dataset(), collate, crashing, _config(tmp_path))
    (tmp_path / "last" / "optimizer.bin").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=str(tmp_path / "last")):
        train(Tiny(), dataset(), collate, mse, _config(tmp_path))


def test_the_progress_bar_counts_the_last_step(tmp_path, capsys):
    train(Tiny(), dataset(), collate, mse, _config(tmp_path, progress=True, epochs=1, max_steps=5))
    last_render = capsys.readouterr().err.rsplit("\r", 1)[-1]  # what the bar shows when training stops
    assert "| 5/8 [" in last_render  # max_steps=5 of 8 batches: five steps ran, five are counted


BF16_TOLERANCE = 0.03  # each epoch's mean training loss within 3% of fp32's (bf16 keeps ~3 significant digits)


def test_a_bf16_run_follows_the_fp32_loss_curve(tmp_path):
    fp32 = train(Tiny(), dataset(), collate, mse, _config(tmp_path / "fp32", epochs=3, save_every_steps=None))
    bf16 = train(Tiny(), dataset(), collate, mse, _config(tmp_path / "bf16", epochs=3, save_every_steps=None,
                                                            precision="bf16"))
    a, b = [h["train_loss"] for h in fp32.history], [h["train_loss"] for h in bf16.history]
    assert a[-1] < a[0] and b[-1] < b[0]
    assert all(abs(y - x) <= BF16_TOLERANCE * x for x, y in zip(a, b)), (a, b)
    assert a != b  # bf16 really ran


def test_an_unknown_precision_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"precision must be one of \('fp32', 'bf16'\)"):
        _config(tmp_path, precision="fp16")


def test_bf16_autocast_keeps_a_bert_loss_close_to_fp32():
    from pairlib.core.backbone import load_tokenizer
    from pairlib.dipair.experiment import label_loss
    from pairlib.dipair.modeling import CrossEncoder
    torch.manual_seed(0)
    model = CrossEncoder.from_backbone("minilm-l6").eval()
    enc = load_tokenizer("minilm-l6")(["who wrote hamlet?", "capital of france"],
                                      ["Hamlet is a tragedy by Shakespeare.", "Paris is the capital of France."],
                                      padding="max_length", max_length=32, return_tensors="pt")
    batch = {**enc, "labels": torch.tensor([1, 0])}
    with torch.no_grad():
        fp32 = label_loss(model, batch).item()
        with torch.autocast("cpu", torch.bfloat16):
            bf16 = label_loss(model, batch).item()
    assert fp32 != bf16 and abs(bf16 - fp32) <= BF16_TOLERANCE * fp32


def test_a_model_already_training_elsewhere_is_refused_naming_the_other_process(tmp_path):
    import os

    from pairlib.core.artifacts import BusyError, held
    with held(tmp_path / ".lock", "a test holding it"):
        with pytest.raises(BusyError, match=f"in use by process {os.getpid()}"):
            train(Tiny(), dataset(), collate, mse, _config(tmp_path))
    assert train(Tiny(), dataset(), collate, mse, _config(tmp_path, epochs=1)).global_step == 8  # free again


def test_a_damaged_trained_model_names_its_folder(tmp_path):
    from pairlib.core.train import CheckpointError, train_and_reload

    def load(path):
        raise OSError("unexpected end of file")
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'best'} cannot be read.*Delete {tmp_path}"):
        train_and_reload(Tiny(), dataset(), mse, _config(tmp_path, epochs=1), load=load)
