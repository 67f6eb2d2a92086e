"""Where the data lives and how its files are read: the data root, each file checked against MANIFEST.md before
it is read, readers, stable hash splits."""
from __future__ import annotations

import csv
import functools
import gzip
import hashlib
import io
import json
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator

import datasets
import pyarrow as pa
from datasets.table import InMemoryTable

from pairlib.core.artifacts import REPO_ROOT, typed_path


class DataError(RuntimeError):
    """Raised with a message that says what is missing and how to get it."""


def data_root() -> Path:
    """The folder holding the local dataset copies: `$PAIRLIB_DATA`, else `../shared/data` beside the repository."""
    env = os.environ.get("PAIRLIB_DATA")
    if env:
        root = typed_path(env)
        if not root.is_dir():
            raise DataError(f"PAIRLIB_DATA={env!r} is not a folder. Point it at the folder holding "
                            "squad_v1.1/, boolq/, ... (see README, 'Data').")
        return root
    return REPO_ROOT.parent / "shared" / "data"




@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    """A data file opened for reading once it matches its MANIFEST entry; any failure while it is read names it."""
    verify_file(path)
    try:
        with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")) as f:
            yield f
    except (OSError, EOFError, ValueError, KeyError, IndexError, csv.Error) as e:  # BadGzipFile, JSONDecodeError, ...
        raise DataError(f"{path} cannot be read ({type(e).__name__}: {e}); it is damaged or not the file this task "
                        "expects. Copy it again (../shared/data/MANIFEST.md names its source).") from e


@functools.cache
def manifest_entries(folder: Path) -> dict[str, tuple[int, str]]:
    """MANIFEST.md's file tables, parsed once: stored path -> (bytes, sha256 of the stored file)."""
    rows = re.findall(r"^\| `([^`]+)` \| ([\d,]+) \| `([0-9a-f]{64})` \|", (folder / "MANIFEST.md").read_text(), re.M)
    return {rel: (int(size.replace(",", "")), sha) for rel, size, sha in rows}


_VERIFIED: set[tuple[str, int, int]] = set()


UNCHECKED_ENV = "PAIRLIB_DATA_UNCHECKED"  # set to 1 to read files no MANIFEST.md lists (your own copies)


def verify_file(path: Path) -> None:
    """Check a data file against the MANIFEST.md of the data root it sits in (its size, then its sha256), once per
    process and version of the file: a copy cut short loads without an error otherwise (an AG News train file cut at
    5,000 lines gave 4,735 rows instead of 18,978). A file that no MANIFEST.md lists is refused too, unless
    `PAIRLIB_DATA_UNCHECKED=1` says the copy is the user's own."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return
    folder = next((p for p in path.parents[:3] if (p / "MANIFEST.md").is_file()), None)
    expected = manifest_entries(folder).get(path.relative_to(folder).as_posix()) if folder else None
    if expected is None and os.environ.get(UNCHECKED_ENV) != "1":
        where = f"{folder / 'MANIFEST.md'} does not list it" if folder else "no MANIFEST.md lies in its data root"
        raise DataError(f"{path} cannot be checked: {where}, so a copy cut short would load without an error. Copy "
                        "MANIFEST.md beside the data (../shared/data/MANIFEST.md), or set "
                        f"{UNCHECKED_ENV}=1 to read unchecked files of your own.")
    if expected is not None:
        size, sha = expected
        if stat.st_size != size:
            raise DataError(f"{path} has {stat.st_size:,} bytes where {folder / 'MANIFEST.md'} lists {size:,}: it is "
                            "cut short or replaced. Copy it again from the source the MANIFEST names.")
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != sha:
            raise DataError(f"{path} does not match the sha256 that {folder / 'MANIFEST.md'} lists: it is damaged "
                            "or another version. Copy it again from the source the MANIFEST names.")
    _VERIFIED.add(key)


def _read_jsonl(path: Path) -> list[dict]:
    with _open_text(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _read_tsv(path: Path, header: bool = True) -> list[list[str]]:
    with _open_text(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return rows[1:] if header else rows


def _read_csv(path: Path, header: bool = True) -> list[list[str]]:
    with _open_text(path) as f:
        rows = list(csv.reader(io.StringIO(f.read().lstrip("\ufeff"))))
    return rows[1:] if header else rows


def hash_bucket(key: str, buckets: int = 100) -> int:
    """A stable bucket in [0, buckets) for a key: the same on every machine and Python, unlike `hash()`."""
    return int(hashlib.md5(key.encode("utf-8")).hexdigest()[:8], 16) % buckets


def split_by_hash(rows: list[dict], key: str | Callable[[dict], str],
                  cuts: dict[str, int]) -> dict[str, datasets.Dataset]:
    """Derive splits deterministically: a row goes to the first split whose cumulative cut exceeds the hash bucket
    (0-99) of `row[key]` (or of `key(row)`); rows sharing a key (a passage title, an article) always land in the
    same split."""
    buckets = [hash_bucket(key(r) if callable(key) else r[key]) for r in rows]
    out, low = {}, 0
    for split, high in cuts.items():
        out[split] = _records([r for r, b in zip(rows, buckets) if low <= b < high])
        low = high
    return out


def _records(rows: list[dict], features: datasets.Features | None = None) -> datasets.Dataset:
    """Rows straight into Arrow: `Dataset.from_dict` encodes every value in Python, 3-7x slower on the larger
    tasks (a quarter of a million rows for squad_q2p's train), for the same table."""
    if not rows:
        raise DataError("no rows were read")
    table = pa.Table.from_pylist(rows, schema=features.arrow_schema if features is not None else None)
    info = datasets.DatasetInfo(features=features) if features is not None else None
    return datasets.Dataset(InMemoryTable(table), info=info)
