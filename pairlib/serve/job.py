"""The batch scoring job: every distinct passage and query encoded once into a store, then every pair scored from
the stores, streaming, into Parquet shards of scores. Both stages are lists of shard tasks; a task whose output file
exists is done, so a job run again after a kill does only what is left and gives the same output.

Two engines run the same tasks with the same worker:
- `local`: in this process, for debugging and as the baseline Ray is measured against;
- `ray`: Ray Data, `map_batches` over the task list with a callable class, so each actor loads the model once and
  keeps the stores open. By default the job starts a local Ray (nothing for the user to start) and sizes the actor
  pool from the CPUs it finds, each actor with a fraction of a CPU and its own torch threads (on 2 cores, two actors
  at 1 CPU each left no CPU for Ray's own tasks and stalled); `address` runs the same job on an existing cluster.
  With `device="cuda"` each actor reserves `gpus_per_actor` of a GPU (Ray then places it on a GPU node and sets its
  visible device) and the pool is sized from the GPUs instead.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pairlib.core.stopping import reclaim_sigterm
from pairlib.core.progress import bar
from pairlib.serve.models import ServedModel, ServeError, check_device, load_served_model
from pairlib.serve.store import (
    SideStore,
    ids_digest,
    prepare_store,
    shard_path,
    write_atomically,
    write_side_shard,
)

ENGINES = ("local", "ray")


def tokenizer_digest(tokenizer) -> str:
    """Names a tokenizer by what it does: its class and its vocabulary."""
    return ids_digest([type(tokenizer).__name__, json.dumps(tokenizer.get_vocab(), sort_keys=True)])
PLURAL = {"passage": "passages", "query": "queries"}
COLUMNS = {"passages": ("passage_id", "text"), "queries": ("query_id", "text"), "pairs": ("query_id", "passage_id")}


def read_table(path: str | Path, what: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise ServeError(f"--{what}: no file {path}")
    try:  # CSV read as text: an id `001` stays `001`, an empty field stays missing (not the word "nan")
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str)
    except Exception as e:  # pyarrow and pandas raise many kinds for a file that is not what its name says
        raise ServeError(f"--{what} {path} cannot be read as {'Parquet' if path.suffix == '.parquet' else 'CSV'} "
                         f"({type(e).__name__}: {e}); give a .parquet or .csv table with columns "
                         f"{list(COLUMNS[what])}") from None
    lacking = [c for c in COLUMNS[what] if c not in table.columns]
    if lacking:
        raise ServeError(f"--{what} {path} lacks column(s) {lacking}; it needs {list(COLUMNS[what])} "
                         f"(it has {list(table.columns)})")
    table = table[list(COLUMNS[what])]
    if table.empty:
        raise ServeError(f"--{what} {path} has no rows")
    missing = table.isna()
    if missing.any().any():
        col = missing.any().idxmax()
        rows = table.index[missing[col]][:3].tolist()
        raise ServeError(f"--{what} {path}: column {col!r} is empty in row(s) {rows} (0-based); every row needs "
                         f"{list(COLUMNS[what])}")
    table = table.astype(str)
    if what != "pairs" and table.iloc[:, 0].duplicated().any():
        dup = table.iloc[:, 0][table.iloc[:, 0].duplicated()].unique()[:3].tolist()
        raise ServeError(f"--{what} {path}: ids must be unique, {dup} repeat")
    return table


@dataclass
class ScoreJob:
    """`pairlib score`: see the module's docstring. Inputs are Parquet (or CSV) tables: passages (passage_id, text),
    queries (query_id, text), pairs (query_id, passage_id)."""

    model_dir: str
    passages: str
    queries: str
    pairs: str
    out: str
    engine: str = "ray"
    address: str | None = None
    tokenizer: str | None = None
    dtype: str = "float16"
    side_shard_size: int = 2048
    pair_shard_size: int = 65536
    batch_size: int = 256
    lengths: dict = field(default_factory=dict)
    device: str = "cpu"  # where the model runs: the local engine's process, or each Ray actor
    gpus_per_actor: float = 1.0  # with device "cuda" on Ray: a fraction lets several actors share one GPU

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ServeError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        for name in ("side_shard_size", "pair_shard_size", "batch_size"):
            if getattr(self, name) < 1:
                raise ServeError(f"{name} must be >= 1, got {getattr(self, name)}")
        # on Ray the workers' GPUs are checked when the pool is planned, not in this process
        check_device(self.device, visible_here=self.engine == "local")
        g = float(self.gpus_per_actor)
        if not (0 < g <= 1 or (g > 1 and g.is_integer())):
            raise ServeError(f"gpus_per_actor must be in (0, 1] or a whole number, got {self.gpus_per_actor}")
        # everything checked before any work starts: the model, the columns, the ids
        self.served = load_served_model(self.model_dir, self.tokenizer, self.dtype, **self.lengths)
        self.passage_table = read_table(self.passages, "passages")
        self.query_table = read_table(self.queries, "queries")
        self.pair_table = read_table(self.pairs, "pairs")
        for side, table in (("passage", self.passage_table), ("query", self.query_table)):
            unknown = ~self.pair_table[f"{side}_id"].isin(table[f"{side}_id"])
            if unknown.any():
                raise ServeError(f"{int(unknown.sum())} pair(s) name a {side}_id that --{PLURAL[side]} lacks, e.g. "
                                 f"{self.pair_table[f'{side}_id'][unknown].unique()[:3].tolist()}")
        self.out_dir = Path(self.out)
        # only the texts some pair needs are encoded
        used = {s: t[t[f"{s}_id"].isin(self.pair_table[f"{s}_id"])] for s, t in
                (("passage", self.passage_table), ("query", self.query_table))}
        self.sides = used
        # a store is reused only when everything that made it is the same: model, texts, length, tokenizer, layout
        sides = {side: {"model": self.served.fingerprint, "model_type": self.served.model_type, "dtype": self.dtype,
                        "ids": ids_digest(list(table.iloc[:, 0])),
                        "texts": ids_digest(list(table.iloc[:, 0] + "\t" + table.iloc[:, 1])),
                        "length": self.served.side_length(side), "tokenizer": tokenizer_digest(self.served.tokenizer),
                        "shard_size": self.side_shard_size} for side, table in used.items()}
        for side, identity in sides.items():
            prepare_store(self.out_dir / PLURAL[side], identity)
        prepare_store(self.out_dir / "scores", {"model": self.served.fingerprint, "dtype": self.dtype,
                                                "pairs": ids_digest(list(self.pair_table.query_id + "\t" +
                                                                         self.pair_table.passage_id)),
                                                "sides": ids_digest([json.dumps(sides[s], sort_keys=True)
                                                                     for s in sorted(sides)]),
                                                "shard_size": self.pair_shard_size})

    def _settings(self) -> dict:
        s = self.served
        return {"model_dir": self.model_dir, "tokenizer": self.tokenizer, "dtype": self.dtype, "out": str(self.out_dir),
                "batch_size": self.batch_size, "device": self.device, "gpus_per_actor": self.gpus_per_actor,
                "lengths": {"query_length": s.query_length, "passage_length": s.passage_length,
                            "cross_length": s.cross_length}}

    def encode_tasks(self) -> list[dict]:
        tasks = []
        for side, table in self.sides.items():
            ids, texts = table.iloc[:, 0].tolist(), table.text.tolist()
            for i in range(math.ceil(len(ids) / self.side_shard_size)):
                if not shard_path(self.out_dir / PLURAL[side], i, "arrow").exists():
                    lo, hi = i * self.side_shard_size, (i + 1) * self.side_shard_size
                    tasks.append({"stage": "encode", "side": side, "shard": i, "ids": ids[lo:hi],
                                  "texts": texts[lo:hi]})
        return tasks

    def score_tasks(self) -> list[dict]:
        tasks, p = [], self.pair_table
        for i in range(math.ceil(len(p) / self.pair_shard_size)):
            if not shard_path(self.out_dir / "scores", i, "parquet").exists():
                lo, hi = i * self.pair_shard_size, (i + 1) * self.pair_shard_size
                tasks.append({"stage": "score", "side": "", "shard": i, "queries": p.query_id[lo:hi].tolist(),
                              "passages": p.passage_id[lo:hi].tolist()})
        return tasks

    def run(self, progress: bool = True) -> dict:
        """Both stages; what was done, how long each took, and where the scores are."""
        report = {"engine": self.engine, "pairs": len(self.pair_table),
                  "passages": len(self.sides["passage"]), "queries": len(self.sides["query"])}
        for stage, tasks_of in (("encode", self.encode_tasks), ("score", self.score_tasks)):
            tasks = tasks_of()
            t0 = time.perf_counter()
            done = run_tasks(tasks, self._settings(), self.engine, self.address, self.served, progress)
            report[f"{stage}_seconds"] = time.perf_counter() - t0
            report[f"{stage}_tasks_run"] = len(done)
        report["store_bytes"] = sum(f.stat().st_size for s in ("passages", "queries")
                                    for f in (self.out_dir / s).glob("shard-*"))
        report["scores"] = str(self.out_dir / "scores")
        return report

    def scores(self) -> pd.DataFrame:
        return read_scores(self.out_dir)


def read_scores(out_dir: str | Path) -> pd.DataFrame:
    files = sorted((Path(out_dir) / "scores").glob("shard-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


class ShardWorker:
    """Does one task at a time; made once per Ray actor (or once in the local engine), so the model loads once and
    the stores stay open across tasks."""

    def __init__(self, settings: dict, served: ServedModel | None = None, threads: int | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        device = settings.get("device", "cpu")
        self.served = (served.to(device) if served is not None else
                       load_served_model(settings["model_dir"], settings["tokenizer"], settings["dtype"], device,
                                         **settings["lengths"]))
        self.out, self.batch_size = Path(settings["out"]), settings["batch_size"]
        self.stores: dict[str, SideStore] = {}

    def store(self, side: str) -> SideStore:
        if side not in self.stores:
            self.stores[side] = SideStore(self.out / PLURAL[side])
        return self.stores[side]

    def do(self, task: dict) -> dict:
        t0 = time.perf_counter()
        if task["stage"] == "encode":
            ids, texts = [str(x) for x in task["ids"]], [str(x) for x in task["texts"]]
            arrays = [self.served.encode(task["side"], texts[lo:lo + self.batch_size])
                      for lo in range(0, len(texts), self.batch_size)]
            joined = {k: np.concatenate([a[k] for a in arrays]) for k in arrays[0]}
            write_side_shard(shard_path(self.out / PLURAL[str(task["side"])], int(task["shard"]), "arrow"), ids,
                             joined)
            rows = len(ids)
        else:
            queries, passages = np.asarray(task["queries"], dtype=object), np.asarray(task["passages"], dtype=object)
            scores = np.concatenate([
                self.served.score(self.store("query").gather(queries[lo:lo + self.batch_size]),
                                  self.store("passage").gather(passages[lo:lo + self.batch_size]))
                for lo in range(0, len(queries), self.batch_size)])
            frame = pd.DataFrame({"query_id": queries, "passage_id": passages, "score": scores.astype(np.float32)})
            write_atomically(shard_path(self.out / "scores", int(task["shard"]), "parquet"),
                             lambda p: frame.to_parquet(p, index=False))
            rows = len(queries)
        return {"stage": str(task["stage"]), "side": str(task["side"]), "shard": int(task["shard"]), "rows": rows,
                "seconds": time.perf_counter() - t0}

    def __call__(self, batch: dict) -> dict:
        """Ray Data's entry: a batch of tasks as columns."""
        rows = [self.do({k: batch[k][i] for k in batch}) for i in range(len(batch["stage"]))]
        return {k: np.asarray([r[k] for r in rows]) for k in rows[0]}


def run_tasks(tasks: list[dict], settings: dict, engine: str, address: str | None, served: ServedModel,
              progress: bool = True) -> list[dict]:
    if not tasks:
        return []
    if engine == "local":
        worker = ShardWorker(settings, served)
        return [worker.do(t) for t in bar(tasks, desc=tasks[0]["stage"], show=progress)]
    return _run_on_ray(tasks, settings, address)


def actor_plan(cpus: float) -> tuple[int, float, int]:
    """(actors, CPUs reserved per actor, torch threads per actor): one single-threaded actor per CPU, each reserving
    0.8 of one, so that Ray's own tasks (reading, splitting blocks) always find a CPU."""
    actors = max(1, int(cpus))
    return actors, 0.8 * cpus / actors, max(1, int(cpus // actors))


def gpu_actor_plan(cpus: float, gpus: float, gpus_per_actor: float) -> tuple[int, float, int]:
    """(actors, CPUs reserved per actor, torch threads per actor) when the actors run on GPUs: as many as the GPUs
    hold at `gpus_per_actor` each, sharing 0.8 of the CPUs (tokenising and moving arrays are theirs to do)."""
    actors = int(gpus / gpus_per_actor + 1e-9)
    if actors < 1:
        raise ServeError(f"device 'cuda' with {gpus_per_actor} GPU per actor, but the Ray cluster has {gpus:g} GPUs: "
                         "start Ray where GPUs are visible (or join a cluster that has them with --address), or use "
                         "--device cpu")
    share = max(0.8 * cpus / actors, 0.01)
    return actors, share, max(1, int(share))


LOCAL_RAY_STARTS = 3  # Ray gives its raylet 30 s to register; on a busy 2-core machine that can run out


def _start_ray(address: str | None) -> None:
    """Start (or, with `address`, join) Ray. A local start that times out is tried again: the timeout is fixed
    inside Ray, and a machine still busy with other work can miss it once without anything being wrong."""
    import ray

    for attempt in range(1, LOCAL_RAY_STARTS + 1):
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                     configure_logging=False, runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false"}})
            reclaim_sigterm()  # `kill <pid>` then stops the job and its Ray rather than aborting the driver alone
            return
        except Exception as e:  # Ray raises a bare Exception for this
            if address is not None or "timed out during startup" not in str(e) or attempt == LOCAL_RAY_STARTS:
                raise
            ray.shutdown()


def stop_local_ray() -> None:
    """Stops the Ray this process started (its raylet, object store and workers), which would outlive a driver that
    stopped without `ray.shutdown()`. Nothing to do where Ray was never imported or started."""
    import sys
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        sys.modules["ray"].shutdown()


def _run_on_ray(tasks: list[dict], settings: dict, address: str | None) -> list[dict]:
    import logging

    import ray
    import ray.data  # its import configures its loggers (console at INFO): quiet them after it, not before
    if not ray.is_initialized():
        _start_ray(address)
    for handler in logging.getLogger("ray.data").handlers:  # no execution plans or notices in a notebook; Ray's
        if isinstance(handler, logging.StreamHandler):  # own ray-data.log file still gets everything
            handler.setLevel(logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    resources = ray.cluster_resources()
    cpus = resources.get("CPU", os.cpu_count() or 1)
    gpus_each = settings["gpus_per_actor"] if settings["device"] == "cuda" else 0
    actors, cpus_each, threads = (gpu_actor_plan(cpus, resources.get("GPU", 0), gpus_each) if gpus_each
                                  else actor_plan(cpus))
    ds = ray.data.from_items(tasks, override_num_blocks=len(tasks))
    done = ds.map_batches(ShardWorker, fn_constructor_kwargs={"settings": settings, "threads": threads},
                          batch_size=1, compute=ray.data.ActorPoolStrategy(size=min(actors, len(tasks))),
                          num_cpus=cpus_each, num_gpus=gpus_each or None).take_all()
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in done]
