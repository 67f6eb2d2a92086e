"""Recipes are checked when made: a bad value fails at once and names the setting, before data loads or a model
trains; settings that change only how a run is carried out do not rename a trained model's folder."""
import pytest

from pairlib.core.data import DataError
from pairlib.deformer.experiment import DeFormerRecipe
from pairlib.dipair.experiment import DiPairRecipe
from pairlib.fastbert.experiment import FastBertRecipe


@pytest.mark.parametrize("settings,message", [
    ({"lr": "5e-5"}, r"FastBertRecipe.lr must be float.*'5e-5'.*write 5.0e-5"),
    ({"epochs": 0}, "FastBertRecipe.epochs must be at least 1, got 0"),
    ({"train_examples": -5}, "FastBertRecipe.train_examples must be at least 1, got -5"),
    ({"epochs": 1.5}, "FastBertRecipe.epochs must be int, got 1.5"),
    ({"epochs": "two"}, r"FastBertRecipe.epochs must be int, got 'two' \(str\)$"),
    ({"batch_size": True}, "FastBertRecipe.batch_size must be int"),
    ({"lr": 0.0}, "FastBertRecipe.lr must be > 0"),
    ({"warmup_ratio": 1.0}, r"FastBertRecipe.warmup_ratio must be in \[0, 1\)"),
    ({"save_every_steps": 0}, "FastBertRecipe.save_every_steps must be at least 1"),
])
def test_a_bad_value_names_its_setting(settings, message):
    with pytest.raises(ValueError, match=message):
        FastBertRecipe.from_dict({"task": "ag_news", **settings})


def test_an_unknown_task_or_setting_fails_before_anything_loads():
    with pytest.raises(DataError, match="unknown task 'agnews'; valid tasks"):
        FastBertRecipe(task="agnews")
    with pytest.raises(ValueError, match=r"unknown recipe setting\(s\) \['epoch'\]"):
        DeFormerRecipe.from_dict({"task": "squad", "question_length": 32, "passage_length": 160, "epoch": 2})
    with pytest.raises(ValueError, match="must be a mapping"):
        DiPairRecipe.from_dict(["task", "squad_q2p"])


def test_good_values_pass_and_integers_serve_as_floats():
    assert FastBertRecipe(task="ag_news", lr=1, seed=0).lr == 1
    assert DiPairRecipe(max_steps=None, eval_examples=None).task == "squad_q2p"


def test_save_every_steps_names_no_model_folder():
    plain = DeFormerRecipe(task="squad", question_length=32, passage_length=160)
    saving = DeFormerRecipe(task="squad", question_length=32, passage_length=160, save_every_steps=100)
    assert plain.model_settings() == saving.model_settings() and "save_every_steps" not in plain.model_settings()
    assert "save_every_steps" not in DiPairRecipe(save_every_steps=50).settings_for("two-stage")


def test_the_precision_a_model_trains_in_names_its_folder(monkeypatch):
    from pairlib.core import measure
    base = dict(task="squad", question_length=32, passage_length=160)
    assert DeFormerRecipe(**base).model_settings()["precision"] == "fp32"
    assert DeFormerRecipe(**base, precision="bf16").model_settings()["precision"] == "bf16"
    monkeypatch.setattr(measure, "native_bf16", lambda device=None: False)
    # auto on a machine without bf16
    assert DeFormerRecipe(**base, precision="auto").model_settings()["precision"] == "fp32"
    monkeypatch.setattr(measure, "native_bf16", lambda device=None: True)
    assert DeFormerRecipe(**base, precision="auto").training_precision() == "bf16"
    assert DiPairRecipe(precision="bf16").settings_for("teacher")["precision"] == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        FastBertRecipe(task="ag_news", precision="fp16")


def test_a_task_whose_data_changed_names_new_model_folders():
    from pairlib.deformer.experiment import DeFormerRecipe
    boolq = DeFormerRecipe(task="boolq", question_length=8, passage_length=8).model_settings()
    squad = DeFormerRecipe(task="squad", question_length=8, passage_length=8).model_settings()
    assert boolq["data"] == "official-train", "models trained on the derived BoolQ split must not be reused"
    assert squad["data"] == ""


def _changed(value):
    """Another valid value of a setting's kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2
    return None


@pytest.mark.parametrize("recipe", [DeFormerRecipe(task="squad", question_length=8, passage_length=16,
                                                   train_examples=10, eval_examples=10, doc_stride=4, max_steps=3,
                                                   save_every_steps=2),
                                    FastBertRecipe(task="ag_news", classifier_lr=1e-3, max_steps=3, eval_examples=5),
                                    DiPairRecipe(max_steps=3, eval_examples=5, train_examples=10, stage2_head_lr=1e-5)],
                         ids=lambda r: type(r).__name__)
def test_each_declared_setting_names_the_folder_and_no_other_does(recipe):
    """One mechanism: every recipe setting names the model's folder except those declared run-only or evaluation
    settings; the project's schema names every folder."""
    import dataclasses

    from pairlib.core.recipe import SCHEMA
    base = recipe.model_settings()
    assert base["schema"] == SCHEMA
    for f in dataclasses.fields(recipe):
        value = getattr(recipe, f.name)
        new = {"eval_split": "train", "task": "squad_q2p", "precision": "bf16"}.get(f.name, _changed(value))
        if new is None or new == value:
            continue
        changed = dataclasses.replace(recipe, **{f.name: new}).model_settings()
        if f.name in (*recipe.RUN_ONLY, *recipe.EVALUATION):
            assert changed == base, f"{f.name} changes no model but renamed its folder"
        else:
            assert changed != base, f"{f.name} can change a model but does not name its folder"


def test_attention_dropout_names_a_folder_only_when_set_and_reaches_the_model_config():
    base = FastBertRecipe(task="ag_news")
    assert "attention_dropout" not in base.model_settings()  # folders named before the setting existed still match
    assert base.config_overrides() == {}
    off = FastBertRecipe(task="ag_news", attention_dropout=0.0)
    assert off.model_settings()["attention_dropout"] == 0.0
    assert off.config_overrides() == {"attention_probs_dropout_prob": 0.0}
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="attention_dropout must be in"):
            FastBertRecipe(task="ag_news", attention_dropout=bad)


def test_the_paired_control_reads_the_difference_against_the_seed_spread():
    import pandas as pd
    import torch

    from pairlib.study import controls
    results = pd.DataFrame([{"seed": s, "variant": v, "accuracy": a} for s, v, a in
                            [(0, "a", 80.0), (0, "b", 81.0), (1, "a", 82.0), (1, "b", 82.0)]])
    same = torch.tensor([0, 1, 1, 0])
    preds = {(0, "a"): same, (0, "b"): torch.tensor([0, 1, 1, 1]), (1, "a"): same, (1, "b"): same}
    table = controls.paired_summary(results, preds, "a", "b")
    mean = table[table.seed == "mean"].iloc[0]
    assert mean["difference"] == pytest.approx(0.5) and mean["same_prediction_%"] == pytest.approx(87.5)
    assert mean["a_seed_std"] == pytest.approx(1.414, abs=1e-3)
    assert controls.within_seed_spread(table, "a")
    with pytest.raises(ValueError, match="no results for variant"):
        controls.paired_summary(results, preds, "a", "c")
