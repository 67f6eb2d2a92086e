"""Where the project's files live (the repository root, the folder each trained model is kept in) and how they are
written so that a kill never leaves a half-written one.

A trained model's folder is named by a hash of the settings that produced it, which is what lets a notebook re-run
with the same settings find (or resume) its model, and a changed setting train anew instead of reusing a stale one.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import torch

Outputs = TypeVar("Outputs")
REPO_ROOT = Path(__file__).resolve().parents[2]


def typed_path(value: str | Path) -> Path:
    """A path the user typed (an environment variable, an option): a relative one means relative to where they
    typed it. A kernel that Jupyter or the runner starts works in notebooks/ but keeps the shell's $PWD."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(os.environ.get("PWD") or os.getcwd()) / path


def folder_name(name: str, settings: dict[str, Any]) -> str:
    """`<name>-<hash of settings>`: the one rule that names a trained model's folder."""
    text = json.dumps(settings, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def artifact_dir(out_dir: str | Path, name: str, settings: dict[str, Any]) -> Path:
    """`<out_dir>/artifacts/<folder_name>/` (not committed), created, with the settings written beside the model so
    that a folder can be traced back to what trained it."""
    d = Path(out_dir) / "artifacts" / folder_name(name, settings)
    d.mkdir(parents=True, exist_ok=True)
    (d / "settings.json").write_text(json.dumps(settings, indent=1, sort_keys=True, default=str) + "\n")
    return d


@contextmanager
def written_atomically(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write to; on success it replaces `path` in one step (a rename), so a
    kill or a crash while writing leaves the previous file, or none, never a truncated one that a later run trusts."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def written_folder(folder: str | Path, model=None, tokenizer=None) -> Iterator[Path]:
    """Yields a staging folder beside `folder`, holding `model` and `tokenizer` saved `save_pretrained` (when
    given) for the caller to add files to; on success it replaces `folder` whole, so a kill leaves no half-written
    model folder that a later run would load (the converted and pruned backbones)."""
    from pairlib.core.backbone import quiet_transformers
    folder = Path(folder)
    staging = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        with quiet_transformers():
            if model is not None:
                model.save_pretrained(staging)
            if tokenizer is not None:
                tokenizer.save_pretrained(staging)
        staging.mkdir(parents=True, exist_ok=True)
        yield staging
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class BusyError(RuntimeError):
    """Another process holds the folder; the message names it."""


@contextmanager
def held(lock: str | Path, what: str) -> Iterator[None]:
    """This process alone holds `lock` while the block runs: a second run of the same notebook, or a second
    training of the same model, is refused at once with the other process's id instead of racing it for the same
    files. The lock is an OS file lock on that file: it goes with the process, however it ends."""
    import fcntl
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            other = f.read().strip() or "another process"
            raise BusyError(f"{shown(lock.parent)} is in use by {other} ({what}); wait for it to finish, or "
                            "stop it first") from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


def replace_folder(new: Path, final: Path) -> None:
    """Put the fully written folder `new` where `final` is. A folder cannot be renamed over a non-empty one, so the
    old folder steps aside first (`<final>.old`); a kill between the two renames leaves it there, and
    `recover_folder` puts it back."""
    old = final.with_name(final.name + ".old")
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def recover_folder(final: Path) -> None:
    """After a kill inside `replace_folder`: the previous complete folder back in place; a half-written new one
    (`<final>.tmp`) removed."""
    old = final.with_name(final.name + ".old")
    if not final.exists() and old.exists():
        old.rename(final)
    shutil.rmtree(final.with_name(final.name + ".tmp"), ignore_errors=True)


def shown(path: str | Path) -> str:
    """A path as printed in notebooks: relative to the repository when inside it or beside it (the data root,
    `../shared/data`), else to the home folder (`~/.cache/pairlib/...`), so that executed notebooks that are
    committed name no machine's folders."""
    path = Path(path).resolve()
    if path.is_relative_to(REPO_ROOT):
        return str(path.relative_to(REPO_ROOT))
    if path.is_relative_to(REPO_ROOT.parent) and REPO_ROOT.parent != Path(REPO_ROOT.anchor):
        return os.path.relpath(path, REPO_ROOT)
    home = Path.home().resolve()
    if path.is_relative_to(home) and home != Path(home.anchor):
        return str(Path("~") / path.relative_to(home))
    return str(path)


def weights_fingerprint(model: torch.nn.Module) -> str:
    """Names a model by what its outputs depend on: its class, its config and its weights, byte for byte. A file of
    its outputs named by this is valid for any copy of the model, however it was read back, and for no other."""
    import torch  # the rest of this module is used where torch is not imported yet
    h = hashlib.sha1(type(model).__name__.encode())
    config = getattr(model, "config", None)
    if config is not None:
        settings = {k: v for k, v in config.to_dict().items() if k not in ("_name_or_path", "transformers_version")}
        h.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().to(torch.float32 if t.is_floating_point() else t.dtype).numpy().tobytes())
    return h.hexdigest()[:16]


def tensors_fingerprint(tensors: dict[str, torch.Tensor]) -> str:
    """Names a set of inputs (e.g. an evaluation's token ids) byte for byte."""
    h = hashlib.sha1()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def kept_outputs(folder: Path, model: torch.nn.Module, inputs: dict[str, torch.Tensor],
                 compute: Callable[[], Outputs]) -> Outputs:
    """`compute()` (the model's outputs on `inputs`), kept in `folder` under a hash of the weights and the inputs and
    read back when the same weights meet the same inputs again. A resumed notebook reads a dozen trained models
    back, and scoring an evaluation set again costs minutes a model on 2 cores; the file holds what was computed."""
    import torch
    path = folder / f"{weights_fingerprint(model)}-{tensors_fingerprint(inputs)}.pt"
    if path.exists():
        return torch.load(path)
    result = compute()
    folder.mkdir(parents=True, exist_ok=True)
    with written_atomically(path) as tmp:
        torch.save(result, tmp)
    return result
