"""A trained model's folder as a user gets it: the model `save_pretrained`, its tokenizer, the lengths it serves
with, `training.json` (what made it, for programs) and a model card (`README.md`, for people), written whole.

Why every number here comes from the `Trained` the run returned: the card is the run's record, not a summary
written later, so its figures are the ones `pairlib evaluate` reproduces on the same split (a test checks).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from pairlib.apply.methods import Trained
from pairlib.core.artifacts import REPO_ROOT, written_folder
from pairlib.core.data import get_task

RECORD = "training.json"  # what `pairlib evaluate` reads back: method, task kind, columns, label names, lengths
PAPERS = {"fastbert": "FastBERT", "deformer": "DeFormer", "dipair": "DiPair"}
DOCS = {"fastbert": "docs/fastbert.md", "deformer": "docs/deformer.md", "dipair": "docs/dipair.md"}


def save_trained(trained: Trained, folder: str | Path, source: dict) -> Path:
    """`folder` holding the model, tokenizer, `serving.json`, `training.json` and `README.md`; replaced whole, so
    an interrupted save leaves the previous folder (or none), never a model without its card."""
    folder = Path(folder)
    task = get_task(trained.recipe["task"])
    record = {"method": trained.method, "backbone": trained.backbone, "kind": task.kind,
              "label_names": list(task.label_names or ()), "data_version": task.data_version, "source": source,
              "recipe": trained.recipe, "serving": trained.serving,
              "quality": trained.quality.to_dict("records"), "speed": trained.speed.to_dict("records")}
    with written_folder(folder, trained.model, trained.tokenizer) as staging:
        (staging / "serving.json").write_text(json.dumps(trained.serving, indent=1) + "\n")
        (staging / RECORD).write_text(json.dumps(record, indent=1, default=str) + "\n")
        (staging / "README.md").write_text(model_card(trained, record))
    return folder


def _table(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, floatfmt=".4g")


def study_context(method: str) -> str:
    """The study's verdicts for the method's paper, from the committed results when this is a checkout of the
    study (an installed package has none: the card then points to the study's pages)."""
    claims = REPO_ROOT / "outputs" / "cpu" / "claims.csv"
    paper = PAPERS[method]
    if not claims.is_file():
        return f"See the study's {DOCS[method]} for how {paper}'s claims held up."
    rows = pd.read_csv(claims)
    rows = rows[rows.paper == paper]
    counts = ", ".join(f"{n} {verdict}" for verdict, n in rows.verdict.value_counts().items())
    return (f"The study judged {len(rows)} of {paper}'s claims ({counts}) on its own backbones and machines; "
            f"{DOCS[method]} explains each, and what a model trained here can be expected to keep.")


def model_card(trained: Trained, record: dict) -> str:
    source = record["source"]
    front = "\n".join(["---", "library_name: transformers", f"tags: [pairlib, {trained.method}]",
                       f"base_model: {trained.backbone.split('~')[0]}", "---", ""])
    splits = ", ".join(f"{k} {v:,} rows" for k, v in source.get("rows", {}).items())
    lines = [front, f"# {PAPERS[trained.method]} on {trained.recipe['task']}", "",
             f"Trained with `pairlib train {trained.method}` on the backbone `{trained.backbone}`. "
             + " ".join(trained.notes) + ".", "",
             "## Data", "",
             f"- kind: `{record['kind']}`; columns: "
             + ", ".join(f"{role} = `{col}`" for role, col in source.get("columns", {}).items()),
             f"- files: " + ", ".join(f"{k} `{v}`" for k, v in source.get("files", {}).items()),
             f"- rows: {splits}; data version `{record['data_version']}`"]
    if record["label_names"]:
        lines.append(f"- classes: {', '.join(record['label_names'])}")
    quality, speed = card_tables_of(record)
    lines += ["", "## Quality on the validation split", "", _table(quality), "",
              "## Speed on the machine that trained it", "",
              f"On {', '.join(trained.speed.hardware.unique())}, timed side by side in one process (median of "
              "interleaved repeats after a warm-up):", "", _table(speed), "",
              "## Recipe", "", "```json", json.dumps(trained.recipe, indent=1, default=str), "```", "",
              "## Use", "", "```bash",
              "pairlib evaluate --model <this folder> --data <file with the same columns>",
              *([] if record["kind"] == "single_cls" else
                ["pairlib score --model <this folder> --passages ... --queries ... --pairs ... --out ..."]),
              "```", "",
              "## Context", "", study_context(trained.method), ""]
    return "\n".join(lines)


def card_tables_of(record: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(quality, speed) as the card shows them: the machine, the same on every row, is said above the speed table."""
    return pd.DataFrame(record["quality"]), pd.DataFrame(record["speed"]).drop(columns="hardware")


def card_tables(folder: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(quality, speed) as a saved folder's card states them, read back from its `training.json`; the machine that
    timed them is printed."""
    record = json.loads((Path(folder) / RECORD).read_text())
    print("timed on", ", ".join(sorted({row["hardware"] for row in record["speed"]})))
    return card_tables_of(record)
