"""`pairlib train` and `pairlib evaluate`: a method on the user's own labelled file, from the command line."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import yaml

from pairlib.apply.methods import METHODS
from pairlib.core import data
from pairlib.core.artifacts import shown
from pairlib.core.data import DataError
from pairlib.core.data.user import ROLES
from pairlib.core.stopping import exit_status, sigterm_as_interrupt

# the column flags, by the role each names (`core.data.user.ROLES`); the kind follows from which are given
COLUMN_FLAGS = {"text": "text", "text_a": "text-a", "text_b": "text-b", "query": "query", "passage": "passage",
                "label": "label", "query_id": "query-id", "id": "id"}
KIND_OF_TEXTS = {roles[:-1]: kind for kind, roles in ROLES.items()}  # a kind's roles are its texts, then the label
# a named flag per method option the users reach for first; any other recipe field goes through --set
METHOD_FLAGS = {"speed": float, "split_layer": int, "query_tokens": int, "passage_tokens": int, "head_dim": int,
                "head_layers": int, "pool_queries": int, "pool_passages": int}


class UsageError(ValueError):
    pass


def _columns(args: argparse.Namespace) -> dict[str, str]:
    return {role: getattr(args, role) for role in COLUMN_FLAGS if getattr(args, role, None)}


def _kind(columns: dict[str, str]) -> str:
    texts = tuple(r for kind_texts in KIND_OF_TEXTS for r in kind_texts if r in columns)
    if texts not in KIND_OF_TEXTS:
        raise UsageError("name the text columns as one of: --text C (one text classified); --text-a C --text-b C (a "
                         f"pair classified); --query C --passage C (candidates ranked per query); got {texts or 'none'}")
    if "label" not in columns:
        raise UsageError("name the label column with --label")
    return KIND_OF_TEXTS[texts]


def _settings(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set takes KEY=VALUE (a recipe setting, e.g. epochs=2), got {pair!r}")
        out[key.replace("-", "_")] = yaml.safe_load(value)
    return out


def _add_columns(p: argparse.ArgumentParser) -> None:
    for role, flag in COLUMN_FLAGS.items():
        p.add_argument(f"--{flag}", dest=role, metavar="COLUMN", help=f"the column holding the {role.replace('_', ' ')}")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="pairlib", description="Train or evaluate a method on your own labelled data.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train DeFormer, FastBERT or DiPair on your file (resumable: run it again)")
    t.add_argument("method", choices=tuple(METHODS))
    t.add_argument("--train", required=True, help="CSV, TSV, JSON lines, JSON or Parquet")
    t.add_argument("--validation", help="the same columns; default: 10%% of --train held out by a hash of the texts")
    _add_columns(t)
    t.add_argument("--label-names", help="the classes in order, comma-separated (default: the labels as read)")
    t.add_argument("--name", default=None, help="the task's name in the card and folders (default: OUT's name)")
    t.add_argument("--backbone", default="minilm-l6", help="minilm-l6, me5-small, or a BERT folder / Hub id")
    t.add_argument("--out", required=True, help="the model folder to write (replaced whole when training ends)")
    t.add_argument("--work", default=None, help="checkpoints and intermediate models (default: OUT.work)")
    for name, kind in METHOD_FLAGS.items():
        t.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None)
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other recipe setting of the method (e.g. epochs=2, lr=3e-5, max_length=64)")
    t.add_argument("--no-progress", action="store_true")
    e = sub.add_parser("evaluate", help="a folder `pairlib train` wrote, on a labelled file")
    e.add_argument("--model", required=True)
    e.add_argument("--data", required=True, help="a labelled file with the training columns (or name them below)")
    _add_columns(e)
    e.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    e.add_argument("--no-progress", action="store_true")
    return ap


def train_cmd(args: argparse.Namespace) -> None:
    from pairlib.apply.card import save_trained
    from pairlib.apply.methods import train
    from pairlib.core.data.user import from_files
    columns = _columns(args)
    kind = _kind(columns)
    out = Path(args.out)
    name = args.name or "".join(c if c.isalnum() else "_" for c in out.resolve().name)  # the user's name for it
    task = from_files(name, kind, args.train, args.validation, columns=columns,
                      label_names=args.label_names.split(",") if args.label_names else None)
    options = {**_settings(args.set), **{k: v for k in METHOD_FLAGS if (v := getattr(args, k)) is not None}}
    work = Path(args.work) if args.work else out.with_name(out.name + ".work")
    trained = train(args.method, task.name, args.backbone, work, options, progress=not args.no_progress)
    trained.backbone = args.backbone
    files = {"train": shown(Path(args.train)), **({"validation": shown(Path(args.validation))} if args.validation else {})}
    rows = {split: len(ds) for split, ds in data.load_task(task.name).items()}
    save_trained(trained, out, {"files": files, "columns": columns, "rows": rows})
    print(trained.quality.to_markdown(index=False, floatfmt=".4g"))
    print(f"\nsaved to {shown(out)} (model card: {shown(out / 'README.md')}); checkpoints in {shown(work)}")


def evaluate_cmd(args: argparse.Namespace) -> None:
    from pairlib.apply.evaluate import evaluate
    table = evaluate(args.model, args.data, _columns(args) or None, progress=not args.no_progress)
    print(json.dumps(table.to_dict("records"), indent=1) if args.json else table.to_markdown(index=False,
                                                                                            floatfmt=".4g"))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with sigterm_as_interrupt():  # `kill <pid>` stops training as Ctrl-C does: its checkpoint kept
        try:
            (train_cmd if args.cmd == "train" else evaluate_cmd)(args)
        except (ValueError, DataError) as e:  # usage, method and recipe checks (ValueErrors) and data checks
            print(f"pairlib {args.cmd}: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as stop:
            print(f"pairlib {args.cmd}: stopped; run the same command again to go on from the last checkpoint",
                  file=sys.stderr)
            return exit_status(stop)
    return 0
