"""The task registry: a task name -> a `datasets.DatasetDict`, from the local copy (kept built on disk between
processes) or the Hub."""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import shutil
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import datasets

from pairlib.core.data.files import DataError, data_root



@dataclass(frozen=True)
class Task:
    """One task: how to load it, what its columns mean, and where it departs from the official data."""

    name: str
    # span_qa | single_cls | pair_cls | multiple_choice | pair_match (query_id, query, passage_id, passage, label)
    kind: str
    language: str
    files: tuple[str, ...]  # paths under the data root that the local loader needs
    columns: dict[str, str]  # column -> meaning
    text_columns: tuple[str, ...]  # the texts a model reads, in order (for pairs: first, second)
    label_names: tuple[str, ...] = ()
    deviations: tuple[str, ...] = ()
    source: str = ""
    hub: str = ""  # Hugging Face dataset id used when the local copy is absent and the Hub answers
    load_local: Callable[[Path], datasets.DatasetDict] = field(default=None, repr=False)  # type: ignore[assignment]
    load_hub: Callable[[], datasets.DatasetDict] | None = field(default=None, repr=False)
    # set (or changed) when the local data of a split changes, so that models trained on the old data, whose folders
    # are named by their settings, are not found and reused for the new; "" for data that never changed
    data_version: str = ""
    # kept on disk between processes (`_load_local_once`); a user's task (`data.user`) is built in memory instead
    cached: bool = True


TASKS: dict[str, Task] = {}


# task name -> the module that registered it, whose code builds its data (`loader_digest`)
_MODULES: dict[str, str] = {}


def _register(task: Task) -> Task:
    TASKS[task.name] = task
    if task.load_local is not None:
        _MODULES[task.name] = task.load_local.__module__
    return task


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise DataError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def list_tasks(offline: bool = False) -> list[str]:
    """Every registered task; with `offline`, only those with a local copy (MS MARCO's Hub copy needs a network)."""
    return [name for name, t in TASKS.items() if not offline or t.load_local is not None]


def hub_reachable(timeout: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_task(name: str, split: str | None = None, root: str | Path | None = None):
    """Load a task as a DatasetDict (or one split of it), from the local copy if present, else from the Hub."""
    task = get_task(name)
    root = Path(root) if root is not None else data_root()
    missing = [f for f in task.files if not (root / f).exists()]
    if task.load_local is not None and not missing:
        dd = _load_local_once(name, root, tuple(_file_identity(root / f) for f in task.files))
    elif task.load_hub is not None and hub_reachable():
        dd = task.load_hub()
    elif task.load_local is None:
        raise DataError(f"task {name!r} exists only on the Hugging Face Hub ({task.hub}), which is not reachable: "
                        "go online (and unset HF_HUB_OFFLINE), or use a task with a local copy: "
                        f"{', '.join(t.name for t in TASKS.values() if t.load_local and t.kind == task.kind)}")
    else:
        how = (f"or go online so that it loads from the Hub ({task.hub})" if task.load_hub
               else "(no Hub copy is wired up for this task)")
        raise DataError(
            f"task {name!r}: missing local file(s) {', '.join(missing)} under data root {root}. "
            f"Set PAIRLIB_DATA to the folder that holds them (see ../shared/data/MANIFEST.md) {how}.")
    if split is None:
        return dd
    if split not in dd:
        raise DataError(f"task {name!r} has no split {split!r}; its splits are: {', '.join(dd)}")
    return dd[split]


def _file_identity(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def cache_root() -> Path | None:
    """Where built task splits are kept between processes: `$PAIRLIB_CACHE`, else `$XDG_CACHE_HOME/pairlib`, else
    `~/.cache/pairlib`; `PAIRLIB_CACHE=none` keeps nothing."""
    if (env := os.environ.get("PAIRLIB_CACHE")) is not None:
        return None if env.lower() in ("", "none", "off") else Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pairlib"


@functools.cache
def code_digest(module_file: str) -> str:
    """A module's code without its comments and docstrings: what can change the data a loader builds. A comment or
    docstring edit leaves it as it was, so it rebuilds nothing."""
    tree = ast.parse(Path(module_file).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(getattr(body[0], "value", None), ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:12]


def loader_digest(name: str) -> str:
    """The code that builds a task's data: its family's module and the readers in `files`."""
    from pairlib.core.data import files
    return code_digest(sys.modules[_MODULES[name]].__file__) + code_digest(files.__file__)


ROWS_FILE = "rows.json"  # beside a kept task: each split's rows when it was built


@functools.lru_cache(maxsize=8)
def _load_local_once(name: str, root: Path, _files: tuple) -> datasets.DatasetDict:
    """A task's splits are built once per process (a notebook asks for a task once per split and model) and kept on
    disk for the next process: squad_q2p takes ~12 s to build and is loaded by a dozen notebooks and tests. The key
    holds the files' path, size and time and the loader's code (`loader_digest`), so a changed file or loader builds
    again."""
    base = cache_root()
    if base is None or not TASKS[name].cached:
        return TASKS[name].load_local(root)
    key = hashlib.sha256(repr((name, _files, loader_digest(name))).encode()).hexdigest()[:16]
    folder = base / "tasks" / f"{name}-{key}"
    if (folder / "dataset_dict.json").exists():
        try:  # in memory, as a freshly built task is, so that `.map` writes no cache files next to it
            kept = datasets.load_from_disk(str(folder), keep_in_memory=True)
            # an Arrow file cut at a record-batch boundary still loads: its rows are counted against the build's
            if json.loads((folder / ROWS_FILE).read_text()) == {s: len(d) for s, d in kept.items()}:
                return kept
        except Exception:  # a copy left broken (disk full, a kill): build it again
            pass
        shutil.rmtree(folder, ignore_errors=True)
    dd = TASKS[name].load_local(root)
    staging = folder.with_name(f".{folder.name}.{os.getpid()}")
    quiet = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # a cache write is bookkeeping: its bars would land in executed notebooks
    try:
        dd.save_to_disk(str(staging))
        (staging / ROWS_FILE).write_text(json.dumps({s: len(d) for s, d in dd.items()}))
        staging.rename(folder)  # whole or not at all; a process that got there first wins
    except OSError:
        pass  # a read-only or full disk only costs the next process the build
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not quiet:
            datasets.enable_progress_bars()
    return dd


def subsample(ds: datasets.Dataset, n: int | None, seed: int = 0) -> datasets.Dataset:
    """The first n rows of a fixed shuffle (all rows when n is None or larger than the split)."""
    if n is None or n >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(n))
