"""Finished models' results, kept beside a profile's committed outputs: `<out_dir>/ledger/<model folder>.json`.

Why: the longest study (notebook 25) trains for more hours than a machine may keep its disk. A model's weights
(about 90 MB) do not belong in git, but what it was trained on, how long that took on which machine, and what it
scored on an evaluation sample are a few hundred bytes. A re-run on a fresh checkout reads those instead of training
the model again, and its tables say which machine and date each row came from. The file is named by the model's
folder, which is named by a hash of every setting the model depends on, so a changed setting never reads a stale
entry; an evaluation is keyed by a fingerprint of the evaluated inputs, so another sample never reads it either.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from pairlib.core.artifacts import folder_name, written_atomically

LEDGER = "ledger"


def entry_path(out_dir: str | Path, model_dir: str | Path) -> Path:
    return Path(out_dir) / LEDGER / f"{Path(model_dir).name}.json"


def read_entry(out_dir: str | Path, model_dir: str | Path) -> dict[str, Any] | None:
    path = entry_path(out_dir, model_dir)
    return json.loads(path.read_text()) if path.exists() else None


def recorded_metrics(out_dir: str | Path, model_dir: str | Path, sample: str) -> tuple[dict, dict] | None:
    """(training record, metrics on `sample`) of a finished model, or None when the ledger holds no such pair."""
    entry = read_entry(out_dir, model_dir)
    if entry is None or sample not in entry.get("evaluations", {}):
        return None
    return entry["training"], entry["evaluations"][sample]["metrics"]


def record(out_dir: str | Path, model_dir: str | Path, training: dict, sample: str, metrics: dict[str, float],
           hardware: str, weights: str, **provenance: Any) -> dict:
    """Adds a finished model's evaluation on `sample` to its entry (written whole, atomically) and returns the
    training record as kept. `weights` is the model's fingerprint: an entry written again after the model was
    retrained elsewhere (a different machine may round differently) keeps each evaluation's own fingerprint, so a
    reader can tell whether two rows describe the same weights."""
    path = entry_path(out_dir, model_dir)
    entry = read_entry(out_dir, model_dir) or {"folder": Path(model_dir).name, "evaluations": {}}
    settings = Path(model_dir) / "settings.json"
    if settings.exists():
        entry["settings"] = json.loads(settings.read_text())
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    if "training" not in entry:
        entry["training"] = {**training, "hardware": hardware, "finished": now, "weights": weights, **provenance}
    entry["evaluations"][sample] = {"metrics": metrics, "hardware": hardware, "evaluated": now, "weights": weights}
    path.parent.mkdir(parents=True, exist_ok=True)
    with written_atomically(path) as tmp:
        tmp.write_text(json.dumps(entry, indent=1, sort_keys=True, default=str) + "\n")
    return entry["training"]


def renamed(out_dir: str | Path, new_settings: Callable[[dict], dict]) -> dict[str, str]:
    """Rename every entry of a ledger after what names a folder changed (`recipe.SCHEMA`): each entry's settings
    become `new_settings(settings)` and its file the folder those name. An entry whose stored settings do not give
    its own folder's name is refused, so a rename never guesses. Old name -> new name."""
    moves = {}
    for path in sorted((Path(out_dir) / LEDGER).glob("*.json")):
        entry = json.loads(path.read_text())
        prefix = entry["folder"].rsplit("-", 1)[0]
        if folder_name(prefix, entry["settings"]) != entry["folder"] or entry["folder"] != path.stem:
            raise ValueError(f"{path}: its settings do not name its folder {entry['folder']}; not renamed")
        entry["settings"] = new_settings(entry["settings"])
        entry["folder"] = folder_name(prefix, entry["settings"])
        if entry.get("training", {}).get("folder") == path.stem:  # the training record names the model's folder too
            entry["training"]["folder"] = entry["folder"]
        target = entry_path(out_dir, entry["folder"])
        with written_atomically(target) as tmp:
            tmp.write_text(json.dumps(entry, indent=1, sort_keys=True, default=str) + "\n")
        if target != path:
            path.unlink()
        moves[path.stem] = entry["folder"]
    return moves
