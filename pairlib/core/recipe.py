"""What every method's recipe shares: settings checked when made, the loop's settings (`train_config`), and the
settings that name a trained model's folder (`model_settings`)."""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pairlib.core.train import PRECISIONS, TrainConfig

# The version of what names a model's folder, for the whole project. Bump it once when a change to `model_settings`
# (or to a method's own naming settings) must name every folder anew; the committed ledgers are renamed with it
# (`pairlib.core.ledger.renamed`).
SCHEMA = 2

@dataclass(frozen=True, kw_only=True)
class RecipeBase:
    """Settings dataclasses that notebooks pass as one dict parameter, checked when made: a misspelt key, a value of
    the wrong type (`lr: 5e-5` that YAML read as a string), a count below 1 or an unknown task is an error that
    names the setting, before any data loads or any model trains. The fields here are every method's.

    What names a trained model's folder is said here once (`model_settings`): every setting of the recipe, except
    those declared in `RUN_ONLY` (how a run is carried out: checkpoints) and `EVALUATION` (what the model is scored
    on), with the precision it trains in, the task's data version and the project's `SCHEMA`."""

    batch_size: int = 16
    warmup_ratio: float = 0.1
    seed: int = 42
    max_steps: int | None = None
    # a resumable checkpoint every this many optimizer steps (besides each epoch's end); names no model folder
    save_every_steps: int | None = None
    # "fp32", "bf16" (autocast), or "auto": bf16 where this machine has native bf16 (measure.native_bf16), else fp32
    precision: str = "fp32"
    # dropout on the attention weights; None: the backbone's own (0.1 for every built-in one). 0 lets PyTorch's SDPA
    # take its fused CPU kernel while training (93 measured the step 1.7x faster); 38 measured what it costs
    attention_dropout: float | None = None

    RUN_ONLY: ClassVar[tuple[str, ...]] = ("save_every_steps",)
    EVALUATION: ClassVar[tuple[str, ...]] = ("eval_examples", "eval_split")  # where a recipe has them
    UNBOUNDED: ClassVar[tuple[str, ...]] = ("seed",)  # integers that may be 0 or negative
    # settings added after models were trained: left out of the folder name while None, so that the folders named
    # before a setting existed are found again (and the committed ledgers still read)
    NAMED_WHEN_SET: ClassVar[tuple[str, ...]] = ("attention_dropout",)

    def __post_init__(self) -> None:
        name = type(self).__name__
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, allowed = getattr(self, f.name), _allowed_types(hints[f.name])
            if not _is_instance(value, allowed):
                hint = "; YAML reads 5e-5 as a string, write 5.0e-5" if float in allowed and _numeric(value) else ""
                raise ValueError(f"{name}.{f.name} must be {' or '.join(t.__name__ for t in allowed)}, got "
                                 f"{value!r} ({type(value).__name__}){hint}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name}.{f.name} must be a finite number, got {value!r}")
            if f.name == "attention_dropout" and value is not None and not 0 <= value < 1:
                raise ValueError(f"{name}.attention_dropout must be in [0, 1) or None (the backbone's own), got "
                                 f"{value}")
            if isinstance(value, bool) or value is None or f.name in (*self.UNBOUNDED, *self.NAMED_WHEN_SET):
                continue
            if isinstance(value, int) and value < 1:
                raise ValueError(f"{name}.{f.name} must be at least 1, got {value}")
            if isinstance(value, float) and f.name.endswith("lr") and value <= 0:
                raise ValueError(f"{name}.{f.name} must be > 0, got {value}")
            if f.name.endswith("ratio") and not 0 <= value < 1:
                raise ValueError(f"{name}.{f.name} must be in [0, 1), got {value}")
        if self.precision not in (*PRECISIONS, "auto"):
            raise ValueError(f"{name}.precision must be one of {(*PRECISIONS, 'auto')}, got {self.precision!r}")
        if isinstance(getattr(self, "task", None), str):
            from pairlib.core.data import get_task
            get_task(self.task)  # an unknown task fails here, naming the valid ones

    @classmethod
    def from_dict(cls, settings: dict):
        if not isinstance(settings, dict):
            raise ValueError(f"{cls.__name__} settings must be a mapping of setting -> value, got {settings!r}")
        known = {f.name for f in dataclasses.fields(cls)}  # the settings, not the class constants
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"unknown recipe setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**settings)

    def model_settings(self) -> dict[str, Any]:
        """The settings that can change a trained model: what names its artifact folder (`artifacts.artifact_dir`
        hashes them). The precision is the one this machine trains in ("auto" resolved); `data` is the task's data
        version (`data.Task.data_version`), so models trained on data since changed are not reused."""
        skip = {*self.RUN_ONLY, *self.EVALUATION}
        settings = {k: v for k, v in dataclasses.asdict(self).items()
                    if k not in skip and not (k in self.NAMED_WHEN_SET and v is None)}
        settings["precision"] = self.training_precision()
        if isinstance(getattr(self, "task", None), str):
            from pairlib.core.data import get_task
            settings["data"] = get_task(self.task).data_version
        settings["schema"] = SCHEMA
        return settings

    def train_config(self, output_dir: str | Path, *, progress: bool = True, **settings: Any) -> TrainConfig:
        """The training loop's settings: what every recipe shares comes from the recipe, what a method sets per
        model or stage (epochs, lr, frozen groups, a second lr) comes as `settings`."""
        return TrainConfig(output_dir=str(output_dir), batch_size=self.batch_size, warmup_ratio=self.warmup_ratio,
                           seed=self.seed, max_steps=self.max_steps, save_every_steps=self.save_every_steps,
                           precision=self.training_precision(), progress=progress, **settings)

    def config_overrides(self) -> dict[str, Any]:
        """What the recipe changes in the backbone's config when a model is built from it (`from_backbone`)."""
        if self.attention_dropout is None:
            return {}
        return {"attention_probs_dropout_prob": float(self.attention_dropout)}

    def training_precision(self) -> str:
        if self.precision != "auto":
            return self.precision
        from pairlib.core.measure import native_bf16
        return "bf16" if native_bf16() else "fp32"


def _allowed_types(hint: Any) -> tuple[type, ...]:
    args = typing.get_args(hint) or (hint,)
    types = tuple(type(None) if a is type(None) else a for a in args)
    return types + ((int,) if float in types else ())  # 2 is a fine learning-rate multiplier, 2e-5 a fine lr


def _numeric(value: Any) -> bool:
    """A string that reads as a number (what YAML 1.1 leaves of `5e-5`)."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_instance(value: Any, allowed: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in allowed:
        return False  # True is an int to Python, not a count to a recipe
    return isinstance(value, tuple(t for t in allowed if isinstance(t, type)))
