"""A folder `pairlib train` saved, scored on a user's labelled file with the same code that wrote its card: the
file becomes a task of the recorded kind, columns and classes, and the method's experiment evaluates the loaded
model on it, so the card's validation numbers come back exactly from its validation file."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd

from pairlib.apply.card import RECORD
from pairlib.apply.methods import MethodError
from pairlib.core.backbone import quiet_transformers
from pairlib.core.data.user import Source, from_files

HEAD_SETTINGS = ("query_tokens", "passage_tokens", "head_dim", "head_layers", "split_layer")  # not recipe fields


def read_record(model_dir: str | Path) -> dict:
    folder = Path(model_dir)
    path = folder / RECORD
    if not path.is_file():
        raise MethodError(f"{folder} holds no {RECORD}: it is not a folder `pairlib train` finished (an interrupted "
                          "run saves nothing there; run the same `pairlib train` command again to finish it)")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise MethodError(f"{path} cannot be read ({e}); train the model again") from None


def evaluate(model_dir: str | Path, data: Source, columns: dict[str, str] | None = None,
             progress: bool = True) -> pd.DataFrame:
    """The saved model's metrics on `data` (a file or table with the columns it was trained on, or `columns`)."""
    folder = Path(model_dir)
    record = read_record(folder)
    name = f"{record['recipe']['task']}_evaluated"
    from_files(name, record["kind"], data, validation=data, test=data,
               columns=columns or record["source"]["columns"], label_names=record["label_names"] or None)
    recipe = {k: v for k, v in record["recipe"].items() if k not in HEAD_SETTINGS}
    recipe.update(task=name, eval_split="test", eval_examples=None)
    with tempfile.TemporaryDirectory(prefix="pairlib-evaluate-") as work:
        return _METHODS[record["method"]](recipe, str(folder), Path(work), progress)


def _fastbert(recipe: dict, folder: str, work: Path, progress: bool) -> pd.DataFrame:
    from pairlib.fastbert.experiment import FastBertExperiment, FastBertRecipe
    from pairlib.fastbert.modeling import FastBertForSequenceClassification
    exp = FastBertExperiment(FastBertRecipe.from_dict(recipe), folder, work, progress=progress)
    with quiet_transformers():
        model = FastBertForSequenceClassification.from_pretrained(folder).eval()
    speed = model.config.speed
    sweep = exp.speed_sweep(model, [0.0, speed]).assign(model=["all layers (the teacher)", f"speed {speed}"])
    return sweep[["model", "accuracy", "mean_exit_layer", "flops_speedup"]]


def _deformer(recipe: dict, folder: str, work: Path, progress: bool) -> pd.DataFrame:
    from pairlib.deformer.experiment import DeFormerExperiment, DeFormerRecipe
    exp = DeFormerExperiment(DeFormerRecipe.from_dict(recipe), folder, work, progress=progress)
    model = exp.task.load_model(Path(folder)).eval()
    layers = model.config.num_hidden_layers
    return pd.DataFrame([{"model": f"DeFormer, k={model.config.split_layer} of {layers}", **exp.evaluate(model)}])


def _dipair(recipe: dict, folder: str, work: Path, progress: bool) -> pd.DataFrame:
    from pairlib.dipair.experiment import DiPairExperiment, DiPairRecipe
    from pairlib.dipair.modeling import DiPairModel
    exp = DiPairExperiment(DiPairRecipe.from_dict(recipe), folder, work, progress=progress)
    with quiet_transformers():
        model = DiPairModel.from_pretrained(folder).eval()
    return pd.DataFrame([{"model": "DiPair", **exp.evaluate(model)}])


_METHODS = {"fastbert": _fastbert, "deformer": _deformer, "dipair": _dipair}
