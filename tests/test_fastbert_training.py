"""FastBERT's two steps on a few real AG News examples: distillation leaves the backbone and the teacher alone."""

import pytest
import torch

from pairlib.core.artifacts import artifact_dir
from pairlib.fastbert.experiment import FastBertExperiment, FastBertRecipe
from pairlib.fastbert.modeling import full_model_flops, sample_flops


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    recipe = FastBertRecipe(task="ag_news", max_length=32, train_examples=32, eval_examples=16, epochs=1,
                            distill_epochs=1, batch_size=16)
    return FastBertExperiment(recipe, "minilm-l6", tmp_path_factory.mktemp("fb"), progress=False)


def test_distillation_trains_only_the_students(experiment):
    fine_tuned, distilled = experiment.fine_tuned(), experiment.distilled()
    before, after = fine_tuned.state_dict(), distilled.state_dict()
    last = fine_tuned.config.num_hidden_layers - 1
    for name in before:
        same = torch.equal(before[name], after[name])
        if name.startswith(("bert.", f"classifiers.{last}.")):
            assert same, f"{name} changed during distillation"
    assert any(not torch.equal(before[n], after[n]) for n in before if n.startswith("classifiers.0."))
    assert experiment.records[-1]["lr"] == experiment.recipe.distill_lr


def test_speed_sweep_reports_cost_and_speed_zero_is_the_teacher(experiment):
    model = experiment.distilled()
    sweep = experiment.speed_sweep(model, [0.0, 1.0]).set_index("speed")
    assert sweep.mean_exit_layer[0.0] == model.config.num_hidden_layers - 1
    teacher = model(**{k: experiment.eval_tensors[k] for k in ("input_ids", "attention_mask", "token_type_ids")})
    assert sweep.accuracy[0.0] == experiment.accuracy(teacher.logits.argmax(-1))
    assert sweep.flops_speedup[1.0] >= sweep.flops_speedup[0.0]


def test_wallclock_sets_latency_beside_the_flops_of_the_same_samples(experiment):
    model = experiment.distilled()
    clock = experiment.wallclock(model, [0.0, 0.9], samples=8, batch_size=4, repeats=1).set_index("model")
    assert clock.flops_speedup["full model"] == 1.0
    assert clock.flops_speedup["speed 0.0"] < 1.0  # every layer plus every student classifier
    # the FLOPs speedup is that of the timed samples' own exit layers
    length, cfg = experiment.recipe.max_length, model.config
    inputs = {k: experiment.eval_tensors[k][:8] for k in ("input_ids", "attention_mask", "token_type_ids")}
    with torch.inference_mode():
        exits = model.adaptive_predict(**inputs, speed=0.9).exit_layer.tolist()
    expected = full_model_flops(cfg, length) * 8 / sum(sample_flops(cfg, length, e) for e in exits)
    assert clock.flops_speedup["speed 0.9"] == pytest.approx(expected)
    assert clock.realised.tolist() == pytest.approx((clock.wallclock_speedup / clock.flops_speedup).tolist())


def test_chinese_task_with_an_english_backbone_is_refused(tmp_path):
    with pytest.raises(ValueError, match="Chinese"):
        FastBertExperiment(FastBertRecipe(task="chnsenticorp"), "minilm-l6", tmp_path)


def test_unknown_recipe_setting_is_refused():
    with pytest.raises(ValueError, match="unknown recipe setting"):
        FastBertRecipe.from_dict({"task": "ag_news", "distil_lr": 1e-4})


def test_classifier_lr_applies_to_label_training_only_and_renames_only_its_own_folders(experiment, tmp_path):
    from dataclasses import replace
    fast = FastBertExperiment(replace(experiment.recipe, classifier_lr=1e-3), "minilm-l6", tmp_path, progress=False)
    fast.distilled()
    lrs = {r["model"]: r["classifier_lr"] for r in fast.records}
    assert lrs == {"fine-tuned": 1e-3, "distilled": experiment.recipe.distill_lr}
    assert experiment.artifact_dir("fine-tuned").name != fast.artifact_dir("fine-tuned").name
    # the folder is named by the recipe's model_settings (save_every_steps and the evaluation sample change no model)
    settings = experiment.recipe.model_settings()
    assert not {"save_every_steps", "eval_examples", "eval_split"} & set(settings)
    assert experiment.artifact_dir("fine-tuned") == artifact_dir(experiment.out_dir, "fastbert-ag_news-fine-tuned",
                                                                 {"backbone": "minilm-l6", **settings})
