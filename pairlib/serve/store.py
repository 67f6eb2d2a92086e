"""On-disk stores, written shard by shard so that a killed job keeps what it finished.

A side store (`<out>/passages/`, `<out>/queries/`) holds, per distinct text, what the model computes from that
text alone, as Arrow IPC shards (`shard-00000.arrow`: an `id` column and one fixed-size-list column per array), read
back memory-mapped: stage 2 touches only the rows its pairs need, so memory stays flat however large the store.
`manifest.json` names the model (its fingerprint) and the input (a hash of the ids): a store built by another model,
or from other input, is refused instead of silently mixed in.

Every file is written beside its final name and renamed into place, so a shard is there whole or not at all.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc

from pairlib.serve.models import ServeError


def ids_digest(ids: list[str]) -> str:
    return hashlib.sha1("\n".join(ids).encode()).hexdigest()[:16]


def write_atomically(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def shard_path(folder: Path, shard: int, suffix: str) -> Path:
    return folder / f"shard-{shard:05d}.{suffix}"


def prepare_store(folder: Path, identity: dict) -> None:
    """Create the store's folder and manifest, or check that an existing one was made by the same model from the
    same input (`identity`)."""
    manifest = folder / "manifest.json"
    if manifest.is_file():
        found = json.loads(manifest.read_text())
        for key, value in identity.items():
            if found.get(key) != value:
                raise ServeError(f"{folder} was built with {key}={found.get(key)!r}, this job has {value!r}: "
                                 "use another --out, or delete that folder to build it again")
        return
    if folder.is_dir() and any(folder.iterdir()):
        raise ServeError(f"{folder} holds files but no manifest.json, so nothing says what built them: use another "
                         "--out, or delete that folder to build it again")
    folder.mkdir(parents=True, exist_ok=True)
    write_atomically(manifest, lambda p: p.write_text(json.dumps(identity, indent=1) + "\n"))


def write_side_shard(path: Path, ids: list[str], arrays: dict[str, np.ndarray]) -> None:
    columns = {"id": pa.array(ids, pa.string())}
    for name, a in arrays.items():
        if a.dtype == object:
            columns[name] = pa.array(list(a), pa.string())
        else:
            flat = pa.array(np.ascontiguousarray(a).reshape(-1))
            columns[name] = pa.FixedSizeListArray.from_arrays(flat, int(np.prod(a.shape[1:])))
    table = pa.table(columns, metadata={"shapes": json.dumps({k: list(v.shape[1:]) for k, v in arrays.items()})})

    def write(tmp: Path) -> None:
        with pa.OSFile(str(tmp), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    write_atomically(path, write)


class SideStore:
    """The finished shards of a side store, memory-mapped, with an index from id to (shard, row)."""

    def __init__(self, folder: Path) -> None:
        self.arrays: list[dict[str, np.ndarray]] = []
        ids, shard_of, row_of = [], [], []
        for i, path in enumerate(sorted(folder.glob("shard-*.arrow"))):
            table = ipc.open_file(pa.memory_map(str(path))).read_all()
            shapes = json.loads(table.schema.metadata[b"shapes"])
            arrays = {}
            for name, shape in shapes.items():
                column = table.column(name).combine_chunks()
                if pa.types.is_string(column.type):
                    arrays[name] = np.asarray(column.to_pylist(), dtype=object)
                else:
                    arrays[name] = column.values.to_numpy(zero_copy_only=True).reshape(-1, *shape)
            self.arrays.append(arrays)
            shard_ids = table.column("id").to_pylist()
            ids += shard_ids
            shard_of += [i] * len(shard_ids)
            row_of += range(len(shard_ids))
        self.index = pd.Index(ids)
        self.shard_of, self.row_of = np.asarray(shard_of), np.asarray(row_of)

    def gather(self, ids) -> dict[str, np.ndarray]:
        """The arrays of these ids, in their order."""
        where = self.index.get_indexer(ids)
        if (where < 0).any():
            lost = list(np.asarray(ids)[where < 0][:3])
            raise ServeError(f"{int((where < 0).sum())} id(s) are not in the store, e.g. {lost}")
        shards, rows = self.shard_of[where], self.row_of[where]
        out = {}
        for name in self.arrays[0]:
            first = self.arrays[0][name]
            result = np.empty((len(ids), *first.shape[1:]), dtype=first.dtype)
            for s in np.unique(shards):
                pick = shards == s
                result[pick] = self.arrays[s][name][rows[pick]]
            out[name] = result
        return out
