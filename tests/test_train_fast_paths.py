"""The training loop's fast paths do the same arithmetic as the plain ones: fused AdamW as torch's loop, and a
teacher's outputs computed once as the live teacher in every step."""

import sys
from pathlib import Path

import pytest
import torch

from pairlib.core.backbone import load_tokenizer
from pairlib.core.teacher_cache import ROW_INDEX, TeacherOutputs
from pairlib.core.train import TensorDictDataset, TrainConfig, adamw, train
from pairlib.deformer.experiment import PAPER_RACE_WEIGHTS, PAPER_SQUAD_WEIGHTS, deformer_loss, teacher_outputs
from pairlib.deformer.inputs import choice_segments, squad_segments
from pairlib.deformer.modeling import DeFormerForMultipleChoice, DeFormerForQuestionAnswering

sys.path.insert(0, str(Path(__file__).parent))
from tiny_task import Tiny  # noqa: E402

CONTEXT = "Hamlet is a tragedy written by William Shakespeare sometime between 1599 and 1601."


def test_fused_adamw_on_cpu_matches_the_plain_loop():
    fused_model, plain_model = Tiny(), Tiny()
    groups = [{"params": list(fused_model.parameters()), "weight_decay": 0.01}]
    fused = adamw(groups, 1e-2)
    assert fused.defaults["fused"], "on CPU the fused kernel is used"
    plain = torch.optim.AdamW(plain_model.parameters(), lr=1e-2, weight_decay=0.01, foreach=False)
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    for _ in range(20):
        for model, opt in ((fused_model, fused), (plain_model, plain)):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
    for a, b in zip(fused_model.parameters(), plain_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_teacher_outputs_are_computed_once_and_looked_up_by_row():
    calls = []

    def outputs_of(batch):
        calls.append(len(batch["x"]))
        return {"double": batch["x"] * 2}

    rows = {"x": torch.arange(10.0)}
    cached = TeacherOutputs(outputs_of, rows, batch_size=4, progress=False)
    got = cached({"x": torch.tensor([7.0, 2.0]), ROW_INDEX: torch.tensor([7, 2])})
    assert torch.equal(got["double"], torch.tensor([14.0, 4.0]))
    cached({ROW_INDEX: torch.tensor([0])})
    assert calls == [4, 4, 2], "one pass over all rows, in chunks, on first use only"
    with pytest.raises(KeyError, match="index=True"):
        cached({"x": torch.tensor([1.0])})


def test_training_on_cached_teacher_outputs_equals_training_with_the_live_teacher(tmp_path):
    teacher = Tiny()
    torch.nn.init.normal_(teacher.head.weight, generator=torch.Generator().manual_seed(3))
    x = torch.randn(48, 4, generator=torch.Generator().manual_seed(1))

    def distil(model, batch, t):
        target = t(batch)["y"] if isinstance(t, TeacherOutputs) else t(batch["x"])
        return torch.nn.functional.mse_loss(model(batch["x"]), target)

    cached = TeacherOutputs(lambda b: {"y": teacher(b["x"])}, {"x": x}, progress=False)
    runs = []
    for name, t, index in (("live", teacher, False), ("cached", cached, True)):
        config = TrainConfig(output_dir=str(tmp_path / name), epochs=2, batch_size=8, lr=1e-2, progress=False)
        model = Tiny()
        result = train(model, TensorDictDataset({"x": x}, index=index), None, distil, config, teacher=t)
        runs.append((result.history, [p.detach().clone() for p in model.parameters()]))
    (live_history, live_params), (cached_history, cached_params) = runs
    for a, b in zip(live_history, cached_history):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
    for a, b in zip(live_params, cached_params):
        torch.testing.assert_close(a, b)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("minilm-l6")


def _student(teacher, cls, path, split_layer):
    teacher.save_pretrained(path)
    return cls.from_pretrained(path, split_layer=split_layer).eval()


def test_deformer_loss_on_cached_teacher_outputs_equals_the_live_teacher_span(tokenizer, tmp_path):
    answer = "William Shakespeare"
    seg = squad_segments(tokenizer, ["who wrote hamlet?", "when was it written?", "what is hamlet?"],
                         [CONTEXT] * 3, 8, 24, doc_stride=12, answer_starts=[CONTEXT.index(answer)] * 3,
                         answer_texts=[answer] * 3)
    teacher = DeFormerForQuestionAnswering.from_backbone("minilm-l6", split_layer=0).eval()
    student = _student(teacher, DeFormerForQuestionAnswering, tmp_path, 4)
    torch.nn.init.normal_(student.qa_outputs.weight, std=0.5, generator=torch.Generator().manual_seed(0))
    cached = teacher_outputs(teacher, seg, upper_layers=2, progress=False)
    rows = TensorDictDataset(seg.tensors, index=True)
    batch = {k: torch.stack([rows[i][k] for i in (2, 0)]) for k in rows[0]}  # out of order, as shuffled
    loss_fn = deformer_loss(PAPER_SQUAD_WEIGHTS)
    live_loss, live_terms = loss_fn(student, batch, teacher)
    cached_loss, cached_terms = loss_fn(student, batch, cached)
    assert live_terms["kd"] > 0 and live_terms["lrs"] > 0
    for term in live_terms:
        assert cached_terms[term] == pytest.approx(live_terms[term], rel=1e-5, abs=1e-7)
    assert cached_loss.item() == pytest.approx(live_loss.item(), rel=1e-5)


def test_deformer_loss_on_cached_teacher_outputs_equals_the_live_teacher_choice(tokenizer, tmp_path):
    seg = choice_segments(tokenizer, ["who?", "what?", "when?"], [["a", "b", "c", "d"]] * 3,
                          [CONTEXT, CONTEXT, "another article"], 6, 20, labels=[0, 1, 2])
    teacher = DeFormerForMultipleChoice.from_backbone("minilm-l6", split_layer=0).eval()
    student = _student(teacher, DeFormerForMultipleChoice, tmp_path, 3)
    cached = teacher_outputs(teacher, seg, upper_layers=3, progress=False)
    rows = TensorDictDataset(seg.tensors, index=True)
    batch = {k: torch.stack([rows[i][k] for i in (1, 2)]) for k in rows[0]}
    loss_fn = deformer_loss(PAPER_RACE_WEIGHTS)
    _, live_terms = loss_fn(student, batch, teacher)
    _, cached_terms = loss_fn(student, batch, cached)
    assert live_terms["lrs"] > 0
    for term in live_terms:
        assert cached_terms[term] == pytest.approx(live_terms[term], rel=1e-5, abs=1e-7)


def test_a_teacher_whose_outputs_would_not_fit_runs_live(tokenizer, tmp_path, monkeypatch):
    from pairlib.deformer import experiment
    from pairlib.deformer.tasks import deformer_task
    seg = squad_segments(tokenizer, ["who wrote hamlet?"], [CONTEXT], 8, 24, doc_stride=12,
                         answer_starts=[CONTEXT.index("William")], answer_texts=["William Shakespeare"])
    exp = experiment.DeFormerExperiment.__new__(experiment.DeFormerExperiment)  # only the parts _teacher_outputs reads
    exp.train_segments, exp._teacher_cache, exp.progress = seg, None, False
    exp.task = deformer_task("squad", tokenizer, 8, 24)
    teacher = DeFormerForQuestionAnswering.from_backbone("minilm-l6", split_layer=0).eval()
    student = _student(teacher, DeFormerForQuestionAnswering, tmp_path, 4)
    weights = experiment.LossWeights(task=1.0, lrs=1.0)
    need = len(seg) * 2 * (8 + 24) * 384 * 4  # rows x upper layers x tokens x hidden x fp32
    monkeypatch.setattr(experiment, "TEACHER_CACHE_MAX_BYTES", need)
    assert isinstance(exp._teacher_outputs(teacher, seg, None, student, weights), TeacherOutputs)
    monkeypatch.setattr(experiment, "TEACHER_CACHE_MAX_BYTES", need - 1)
    assert exp._teacher_outputs(teacher, seg, None, student, weights) is teacher
