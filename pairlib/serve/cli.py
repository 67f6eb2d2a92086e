"""`pairlib score`: the batch scoring job from the command line."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from pairlib.core.stopping import Terminated, exit_status, sigterm_as_interrupt
from pairlib.serve.job import ENGINES, ScoreJob, stop_local_ray
from pairlib.serve.models import DEVICES, DTYPES, ServeError


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pairlib score", description=(
        "Score every (query, passage) pair of PAIRS with a saved DiPair, DE-Cos/DE-FFNN or cross-encoder model: each "
        "distinct passage and query is encoded once into a store under OUT, then the pairs are scored from it into "
        "OUT/scores/*.parquet (query_id, passage_id, score). Run again after a kill, it does only what is left."))
    ap.add_argument("--model", required=True, help="a saved DiPair, dual-encoder, DeFormer (pair classifier) or "
                    "cross-encoder folder (e.g. outputs/cpu/artifacts/<model>/best)")
    ap.add_argument("--passages", required=True, help="Parquet or CSV with columns passage_id, text")
    ap.add_argument("--queries", required=True, help="Parquet or CSV with columns query_id, text")
    ap.add_argument("--pairs", required=True, help="Parquet or CSV with columns query_id, passage_id")
    ap.add_argument("--out", required=True, help="the job's folder: stores and scores")
    ap.add_argument("--engine", choices=ENGINES, default="ray", help="ray (default; a local Ray unless --address) "
                    "or local (in this process, no Ray)")
    ap.add_argument("--address", default=None, help="a Ray cluster's address (e.g. ray://head:10001)")
    ap.add_argument("--tokenizer", default=None, help="when the model folder has none (e.g. minilm-l6)")
    ap.add_argument("--dtype", choices=DTYPES, default="float16", help="what the stores keep (default float16)")
    ap.add_argument("--device", choices=DEVICES, default="cpu", help="where the model runs: this process (local) or "
                    "each Ray actor (default cpu)")
    ap.add_argument("--gpus-per-actor", type=float, default=1.0, help="with --device cuda on Ray: the GPU share "
                    "each actor reserves (0.5: two actors per GPU)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--pair-shard-size", type=int, default=65536, help="pairs per output shard (the unit of resume)")
    ap.add_argument("--side-shard-size", type=int, default=2048, help="texts per store shard")
    for name in ("query-length", "passage-length", "cross-length"):
        ap.add_argument(f"--{name}", type=int, default=None, help="default: the model's training settings")
    args = ap.parse_args(argv)
    lengths = {k: getattr(args, k) for k in ("query_length", "passage_length", "cross_length")}
    with sigterm_as_interrupt():  # `kill <pid>` ends the job as Ctrl-C does: finished shards kept, Ray stopped
        try:
            job = ScoreJob(args.model, args.passages, args.queries, args.pairs, args.out, args.engine, args.address,
                           args.tokenizer, args.dtype, args.side_shard_size, args.pair_shard_size, args.batch_size,
                           {k: v for k, v in lengths.items() if v is not None}, args.device, args.gpus_per_actor)
            print(json.dumps(job.run(), indent=1))
        except ServeError as e:
            print(f"pairlib score: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as stop:
            stop_local_ray()
            print(f"pairlib score: {'stopped by SIGTERM' if isinstance(stop, Terminated) else 'interrupted'}; the "
                  f"finished shards are kept in {args.out}: run the same command again to do what is left",
                  file=sys.stderr)
            return exit_status(stop)
    return 0
