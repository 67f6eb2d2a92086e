"""Where the project's files live: the repository root, and the folder each trained model is kept in.

A trained model's folder is named by a hash of the settings that produced it, which is what lets a notebook re-run
with the same settings find (or resume) its model, and a changed setting train anew instead of reusing a stale one.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]


def artifact_dir(out_dir: str | Path, name: str, settings: dict[str, Any]) -> Path:
    """`<out_dir>/artifacts/<name>-<hash of settings>/` (not committed), created, with the settings written beside
    the model so that a folder can be traced back to what trained it."""
    text = json.dumps(settings, sort_keys=True, default=str)
    d = Path(out_dir) / "artifacts" / f"{name}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "settings.json").write_text(json.dumps(settings, indent=1, sort_keys=True, default=str) + "\n")
    return d
