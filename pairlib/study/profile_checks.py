"""What each notebook parameter that holds settings is, so that `pairlib run` checks every key of a profile before
anything runs (a misspelt or mistyped key is an error naming the file and the key). One entry per dict parameter a
notebook declares; tests/test_run.py fails when a notebook declares one that is not here."""
from __future__ import annotations

import math
from typing import Any, Callable

Check = Callable[[Any], None]


def _mapping(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a mapping of setting -> value, got {value!r}")
    return value


def _recipe_class(kind: str):
    from pairlib.core.pretrain import PretrainRecipe
    from pairlib.deformer.experiment import DeFormerRecipe
    from pairlib.dipair.experiment import DiPairRecipe
    from pairlib.fastbert.experiment import FastBertRecipe
    return {"deformer": DeFormerRecipe, "fastbert": FastBertRecipe, "dipair": DiPairRecipe,
            "pretrain": PretrainRecipe}[kind]


def recipe(kind: str, **fixed: Any) -> Check:
    """A whole recipe, or the part of one a notebook merges into its own (`fixed` fills what the notebook sets
    itself, e.g. the task it loops over)."""
    return lambda value: _recipe_class(kind).from_dict({**fixed, **_mapping(value, "a recipe")})


def per_task(kind: str) -> Check:
    """task -> recipe (notebook 26's MNLI and QQP)."""
    def check(value: Any) -> None:
        for task, settings in _mapping(value, "task -> recipe").items():
            try:
                _recipe_class(kind).from_dict({"task": task, **_mapping(settings, f"{task}'s recipe")})
            except (ValueError, TypeError) as e:
                raise ValueError(f"{task}: {e}") from None
    return check


def loss_weights(value: Any) -> None:
    import dataclasses

    from pairlib.deformer.experiment import LossWeights
    known = {f.name for f in dataclasses.fields(LossWeights)}
    unknown = set(_mapping(value, "loss weights")) - known
    if unknown:
        raise ValueError(f"unknown loss weight(s) {sorted(unknown)}; known: {sorted(known)}")
    LossWeights(**value)


def dipair_head(value: Any) -> None:
    from pairlib.dipair.modeling import DIPAIR_SETTINGS, DiPairConfig
    unknown = set(_mapping(value, "DiPair's head settings")) - set(DIPAIR_SETTINGS)
    if unknown:
        raise ValueError(f"unknown DiPair head setting(s) {sorted(unknown)}; known: {sorted(DIPAIR_SETTINGS)}")
    for key, v in value.items():
        if not isinstance(v, (bool, str) if key in ("head_type", "shared_encoders", "head_norm_first") else int) \
                or (isinstance(v, bool) and key not in ("shared_encoders", "head_norm_first")):
            raise ValueError(f"DiPair head setting {key} has the wrong type: {v!r}")
    DiPairConfig(**value)


def head_sweep(value: Any) -> None:
    """setting -> the values tried, each a valid head setting on its own."""
    for key, values in _mapping(value, "setting -> values").items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"{key} must list the values to try, got {values!r}")
        for v in values:
            dipair_head({key: v})


def positive_int(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"must be a whole number >= 1, got {value!r}")


def fields(**checks: Check) -> Check:
    """A mapping with these keys, each checked on its own."""
    def check(value: Any) -> None:
        unknown = set(_mapping(value, "settings")) - set(checks)
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(checks)}")
        for key, v in value.items():
            try:
                checks[key](v)
            except (ValueError, TypeError) as e:
                raise ValueError(f"{key}: {e}") from None
    return check


PARAMETERS: dict[str, Check] = {
    "deformer_squad": recipe("deformer", task="squad"),
    "deformer_boolq": recipe("deformer", task="boolq"),
    "deformer_race": recipe("deformer", task="race"),
    "deformer_pairs": per_task("deformer"),
    "loss_weights": loss_weights,
    "fastbert_ag_news": recipe("fastbert"),
    "fastbert_pair": recipe("fastbert"),
    "fastbert_zh": recipe("fastbert", task="chnsenticorp"),  # the task is set per dataset
    "fastbert_english": recipe("fastbert", task="ag_news"),
    "zh_pretrain": recipe("pretrain"),
    "q4_control": recipe("fastbert"),
    "dropout_control": recipe("fastbert"),
    "zh_control": recipe("fastbert"),
    "dipair_q2p": recipe("dipair"),
    "dipair_wikiqa": recipe("dipair"),
    "dipair_head": dipair_head,
    "sweep": head_sweep,
    "frontier_deformer": fields(deformer_epochs=positive_int, loss_weights=loss_weights),
    "frontier_fastbert": recipe("fastbert", task="squad_q2p"),
    "speed_squad": recipe("deformer", task="squad", question_length=16, passage_length=48),
    "speed_pairs": recipe("dipair", task="squad_q2p"),
    "scale_training": recipe("dipair", task="squad_q2p"),
    "deformer": fields(split_layer=positive_int, deformer_epochs=positive_int, loss_weights=loss_weights),
    "drift": fields(passages=positive_int, questions_per_passage=positive_int, question_length=positive_int,
                    passage_length=positive_int),
}
# parameters whose notebook default is None: the type a profile's value must have
NULLABLE = {"split_layer": int, "tasks": list}


def check(key: str, value: Any) -> None:
    """Raise ValueError saying what is wrong with `value` for the parameter `key` (nothing for plain values, which
    the runner checks against the notebook's default)."""
    if value is None:
        return
    if key in NULLABLE and not isinstance(value, NULLABLE[key]) or isinstance(value, bool) and key in NULLABLE:
        raise ValueError(f"must be {NULLABLE[key].__name__} or null, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be a finite number, got {value!r}")
    if key in PARAMETERS:
        PARAMETERS[key](value)
