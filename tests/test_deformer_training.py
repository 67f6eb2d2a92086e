"""DeFormer's training loss and cost measurement, on the real MiniLM weights with tiny inputs."""
import pytest
import torch

from pairlib.core.backbone import load_tokenizer
from pairlib.deformer.bench import (
    CACHED,
    FROM_DISK_COLD,
    FROM_DISK_WARM,
    ORIGINAL,
    UNCACHED,
    benchmark,
    max_cached_difference,
)
from pairlib.deformer.cache import PassageCache
from pairlib.deformer.experiment import (
    PAPER_SQUAD_WEIGHTS,
    TASK_LOSS_ONLY,
    LossWeights,
    DeFormerRecipe,
    deformer_loss,
    paper_split_layer,
)
from pairlib.deformer.inputs import choice_segments, squad_segments
from pairlib.deformer.modeling import DeFormerForMultipleChoice, DeFormerForQuestionAnswering

CONTEXT = "Hamlet is a tragedy written by William Shakespeare sometime between 1599 and 1601."


@pytest.fixture(scope="module")
def squad_batch():
    tok = load_tokenizer("minilm-l6")
    answer = "William Shakespeare"
    seg = squad_segments(tok, ["who wrote hamlet?"] * 2, [CONTEXT] * 2, 8, 24, doc_stride=12,
                         answer_starts=[CONTEXT.index(answer)] * 2, answer_texts=[answer] * 2)
    return seg.rows(slice(0, 2))


@pytest.fixture(scope="module")
def teacher():
    return DeFormerForQuestionAnswering.from_backbone("minilm-l6", split_layer=0).eval()


def test_same_weights_same_split_give_zero_kd_and_lrs(squad_batch, teacher):
    loss, logs = deformer_loss(PAPER_SQUAD_WEIGHTS)(teacher, squad_batch, teacher)
    assert logs["kd"] == pytest.approx(0.0, abs=1e-6) and logs["lrs"] == pytest.approx(0.0, abs=1e-8)
    assert loss.item() == pytest.approx(0.7 * logs["task"], rel=1e-5)


def test_split_student_differs_from_teacher_and_losses_switch_off(squad_batch, teacher, tmp_path):
    teacher.save_pretrained(tmp_path)
    student = DeFormerForQuestionAnswering.from_pretrained(tmp_path, split_layer=4).eval()
    _, logs = deformer_loss(PAPER_SQUAD_WEIGHTS)(student, squad_batch, teacher)
    assert logs["kd"] > 0 and logs["lrs"] > 0
    _, logs = deformer_loss(TASK_LOSS_ONLY)(student, squad_batch, None)  # no teacher needed
    assert set(logs) == {"task"}
    with pytest.raises(ValueError, match="teacher"):
        deformer_loss(LossWeights(kd=1.0))(student, squad_batch, None)


def test_loss_weights_and_recipe_reject_bad_settings():
    with pytest.raises(ValueError, match="not all zero"):
        LossWeights(task=0.0)
    with pytest.raises(ValueError, match="unknown recipe setting"):
        DeFormerRecipe.from_dict({"task": "squad", "question_length": 8, "passage_length": 8, "epoch": 3})
    assert paper_split_layer(12) == 9 and paper_split_layer(6) == 4


def test_heads_compute_their_own_task_loss(squad_batch, teacher):
    """Hugging Face's convention: given its labels, a head returns its loss; given none, no loss."""
    import torch.nn.functional as F

    from pairlib.deformer.tasks import model_inputs
    out = teacher(**model_inputs(squad_batch), start_positions=squad_batch["start_positions"],
                  end_positions=squad_batch["end_positions"])
    expected = (F.cross_entropy(out.start_logits, squad_batch["start_positions"])
                + F.cross_entropy(out.end_logits, squad_batch["end_positions"])) / 2
    torch.testing.assert_close(out.loss, expected)
    assert teacher(**model_inputs(squad_batch)).loss is None
    assert teacher.distilled_logits(out).shape == (2, 2, out.start_logits.shape[-1])


def test_choice_mask_has_one_row_per_option():
    tok = load_tokenizer("minilm-l6")
    seg = choice_segments(tok, ["q"] * 3, [["a", "b", "c", "d"]] * 3, ["art"] * 3, 6, 10, labels=[0, 1, 2])
    model = DeFormerForMultipleChoice.from_backbone("minilm-l6", split_layer=2)
    assert model.joint_attention_mask(seg.tensors).shape == (12, 16)


def test_benchmark_reports_every_way_and_cached_equals_uncached(squad_batch, teacher, tmp_path):
    teacher.save_pretrained(tmp_path / "m")
    student = DeFormerForQuestionAnswering.from_pretrained(tmp_path / "m", split_layer=4).eval()
    tok = load_tokenizer("minilm-l6")
    seg = squad_segments(tok, ["who?", "when?"], [CONTEXT, CONTEXT], 8, 24, doc_stride=12)
    cache = PassageCache.from_inputs(student, seg.passage_ids, seg.tensors["passage_input_ids"],
                                     seg.tensors["passage_attention_mask"], str(tmp_path / "c.safetensors"))
    assert len(cache.tensors) == len(set(seg.passage_ids))  # shared windows encoded once
    assert max_cached_difference(student, seg, cache) == 0.0
    latency, cost = benchmark(teacher, student, seg, cache, batch_sizes=(1, 2), warmup=1, repeats=2)
    assert set(latency.model) == {ORIGINAL, UNCACHED, CACHED, FROM_DISK_WARM, FROM_DISK_COLD}
    assert set(latency.batch) == {1, 2}
    c = cost.set_index("model")
    assert c.flops_ratio[ORIGINAL] == 1.0 and c.flops_ratio[CACHED] > c.flops_ratio[UNCACHED] > 1.0
    assert c.memory_reduction[CACHED] > 0
    assert teacher.config._attn_implementation == "sdpa"  # restored after counting FLOPs with eager attention
    with pytest.raises(ValueError, match="at least 3 rows"):
        benchmark(teacher, student, seg.head(2), cache, batch_sizes=(3,))



def test_squad_answers_are_kept_in_the_official_prediction_format(tmp_path):
    import json

    from pairlib.core import metrics
    from pairlib.deformer.experiment import DeFormerExperiment
    exp = DeFormerExperiment(DeFormerRecipe(task="squad", question_length=16, passage_length=48, doc_stride=24,
                                            train_examples=4, eval_examples=6), "minilm-l6", tmp_path, progress=False)
    model = DeFormerForQuestionAnswering.from_backbone("minilm-l6", split_layer=0).eval()
    model.save_pretrained(tmp_path / "some-model-1234" / "best")
    model = DeFormerForQuestionAnswering.from_pretrained(tmp_path / "some-model-1234" / "best", split_layer=2).eval()
    scores = exp.evaluate(model)
    saved = json.loads((tmp_path / "predictions" / "some-model-1234-k2.json").read_text())
    assert list(saved) == list(exp.eval_set["id"])  # {question id: answer text}, as evaluate-v1.1.py reads
    again = metrics.squad_em_f1([saved[i] for i in exp.eval_set["id"]], [a["text"] for a in exp.eval_set["answers"]])
    assert again == scores


def test_evaluation_logits_are_kept_and_found_again_on_any_sample(tmp_path, monkeypatch):
    """A resumed notebook reads its models back; their logits on the same questions are read, not recomputed."""
    from pairlib.deformer import experiment, tasks
    recipe = DeFormerRecipe(task="squad", question_length=16, passage_length=48, doc_stride=24, train_examples=4,
                            eval_examples=6)
    exp = experiment.DeFormerExperiment(recipe, "minilm-l6", tmp_path, progress=False)
    model = DeFormerForQuestionAnswering.from_backbone("minilm-l6", split_layer=2).eval()
    shared = exp.task.load("validation", 3, seed=1)
    own, other = exp.evaluate(model), exp.evaluate(model, shared)
    monkeypatch.setattr(tasks, "predict", lambda *a, **k: pytest.fail("scored again"))
    assert exp.evaluate(model) == own and exp.evaluate(model, shared, exp.task.segments(shared)) == other
    assert len(list((tmp_path / "artifacts" / "deformer-squad-eval-logits").glob("*.pt"))) == 2


def test_recorded_results_are_read_on_a_fresh_checkout_and_only_for_the_same_settings_and_sample(tmp_path,
                                                                                                  monkeypatch):
    """Notebook 25 runs longer than a machine may keep its disk: the committed ledger stands in for lost weights."""
    import dataclasses
    import shutil

    from pairlib.core import ledger
    from pairlib.core.artifacts import tensors_fingerprint
    from pairlib.deformer import experiment
    recipe = DeFormerRecipe(task="squad", question_length=16, passage_length=48, doc_stride=24, train_examples=4,
                    eval_examples=6, max_steps=1)
    first = experiment.DeFormerExperiment(recipe, "minilm-l6", tmp_path / "first", progress=False)
    dev, segments = first.eval_set, first.eval_segments
    original = first.recorded_metrics(0, experiment.TASK_LOSS_ONLY, dev, segments)
    split = first.recorded_metrics(2, experiment.TASK_LOSS_ONLY, dev, segments)
    assert original == first.evaluate(first.baseline()) and set(original) == {"exact_match", "f1"}

    shutil.copytree(tmp_path / "first" / "ledger", tmp_path / "fresh" / "ledger")  # what git keeps: no artifacts
    monkeypatch.setattr(experiment, "fine_tune", lambda *a, **k: pytest.fail("trained again"))
    fresh = experiment.DeFormerExperiment(recipe, "minilm-l6", tmp_path / "fresh", progress=False)
    assert fresh.recorded_metrics(0, experiment.TASK_LOSS_ONLY, dev, segments) == original
    assert fresh.recorded_metrics(2, experiment.TASK_LOSS_ONLY, dev, segments) == split
    rows = {r["model"]: r for r in fresh.records}
    assert rows["k2-task1-kd0-lrs0"]["initialised_from"] == rows["original"]["weights"]
    assert all(r["hardware"] and r["steps"] == 1 for r in rows.values())

    other_sample = first.task.segments(first.task.load("validation", 3, seed=1))
    other_recipe = experiment.DeFormerExperiment(dataclasses.replace(recipe, lr=1e-4), "minilm-l6", tmp_path / "fresh",
                                         progress=False)
    assert ledger.recorded_metrics(fresh.out_dir, fresh.artifact_dir("original"),
                                   tensors_fingerprint(other_sample.tensors)) is None
    with pytest.raises(pytest.fail.Exception, match="trained again"):
        other_recipe.recorded_metrics(0, experiment.TASK_LOSS_ONLY, dev, segments)
    with pytest.raises(ValueError, match="task loss only"):
        fresh.recorded_metrics(0, experiment.PAPER_SQUAD_WEIGHTS, dev, segments)
