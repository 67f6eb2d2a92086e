"""The notebook runner behind `python -m pairlib` / `pairlib`: papermill over the numbered notebooks, in order.

    pairlib list
    pairlib run --profile cpu [--only '20_*'] [--from 21_] [--resume]

A profile is `params/<profile>.yaml`: `defaults` are injected into every notebook that declares the parameter, and
`notebooks.<name>` holds per-notebook values. Every injected key must exist in the notebook's `parameters` cell, so
a typo in a profile fails before anything runs. Each executed notebook is written to `outputs/<profile>/<name>.ipynb`
only when it succeeds (a failed run is kept as `<name>.failed.ipynb`); `outputs/<profile>/run_state.json` records
each notebook's wall time and commit, which `--resume` uses to continue after the last notebook that finished.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import yaml

from pairlib.core.artifacts import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PARAMS_DIR = REPO_ROOT / "params"
ALWAYS_INJECTED = ("profile", "output_dir")


class RunError(RuntimeError):
    pass


def notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def profiles() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))


def load_profile(name: str) -> dict[str, Any]:
    path = PARAMS_DIR / f"{name}.yaml"
    if not path.exists():
        raise RunError(f"unknown profile {name!r}; valid profiles: {', '.join(profiles())}")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - {"description", "defaults", "notebooks"}
    if unknown:
        raise RunError(f"{path}: unknown top-level keys {sorted(unknown)}; use description, defaults, notebooks")
    names = {nb.stem for nb in notebooks()}
    for nb in data.get("notebooks") or {}:
        if nb not in names:
            raise RunError(f"{path}: section for unknown notebook {nb!r}; notebooks: {', '.join(sorted(names))}")
    return data


def select(only: Sequence[str] = (), start: str | None = None) -> list[Path]:
    """Notebooks matching any `only` pattern (glob or prefix), from the first whose name starts with `start`."""
    nbs = notebooks()
    names = [nb.stem for nb in nbs]
    if only:
        chosen = [nb for nb in nbs if any(fnmatch.fnmatch(nb.stem, p) or nb.stem.startswith(p) for p in only)]
        if not chosen:
            raise RunError(f"no notebook matches {list(only)}; notebooks: {', '.join(names)}")
        nbs = chosen
    if start:
        idx = next((i for i, nb in enumerate(nbs) if nb.stem.startswith(start)), None)
        if idx is None:
            raise RunError(f"--from {start!r} matches no selected notebook; selected: "
                           f"{', '.join(nb.stem for nb in nbs)}")
        nbs = nbs[idx:]
    return nbs


def parameters_for(nb: Path, profile: str, spec: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    import papermill as pm
    declared = set(pm.inspect_notebook(str(nb)))
    if not declared:
        raise RunError(f"{nb.name} has no cell tagged 'parameters'")
    params = {k: v for k, v in (spec.get("defaults") or {}).items() if k in declared}
    own = (spec.get("notebooks") or {}).get(nb.stem) or {}
    unknown = set(own) - declared
    if unknown:
        raise RunError(f"params/{profile}.yaml sets {sorted(unknown)} for {nb.stem}, which its parameters cell "
                       f"does not declare; declared: {sorted(declared)}")
    params.update(own)
    missing = [k for k in ALWAYS_INJECTED if k not in declared]
    if missing:
        raise RunError(f"{nb.name}'s parameters cell must declare {missing}")
    params.update(profile=profile, output_dir=str(out_dir))
    return params


def _state_path(out_dir: Path) -> Path:
    return out_dir / "run_state.json"


def read_state(out_dir: Path) -> dict[str, Any]:
    p = _state_path(out_dir)
    return json.loads(p.read_text()) if p.exists() else {"notebooks": {}}


def _record(out_dir: Path, notebook: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Set one notebook's entry, re-reading the file first so that runs in other processes (say, a quick report
    while a long notebook trains) keep theirs."""
    state = read_state(out_dir)
    state["notebooks"][notebook] = entry
    tmp = _state_path(out_dir).with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(_state_path(out_dir))
    return state


def _fmt(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def run(profile: str, only: Sequence[str] = (), start: str | None = None, resume: bool = False,
        output_root: str | Path | None = None, progress_bar: bool = True) -> dict[str, Any]:
    import papermill as pm

    from pairlib.study.report import git_commit

    spec = load_profile(profile)
    nbs = select(only, start)
    out_dir = Path(output_root or REPO_ROOT / "outputs") / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    plans = [(nb, parameters_for(nb, profile, spec, out_dir)) for nb in nbs]  # validate all before running any
    state = read_state(out_dir)
    if resume:
        done = {k for k, v in state["notebooks"].items() if v.get("status") == "ok" and (out_dir / f"{k}.ipynb").exists()}
        skipped = [nb.stem for nb, _ in plans if nb.stem in done]
        plans = [(nb, p) for nb, p in plans if nb.stem not in done]
        if skipped:
            print(f"resume: skipping {len(skipped)} finished notebook(s): {', '.join(skipped)}")
    total_t0 = time.perf_counter()
    for i, (nb, params) in enumerate(plans, 1):
        print(f"[{i}/{len(plans)}] {nb.stem} (profile {profile}) ...", flush=True)
        final = out_dir / f"{nb.stem}.ipynb"
        running = out_dir / f".{nb.stem}.running.ipynb"
        failed = out_dir / f"{nb.stem}.failed.ipynb"
        failed.unlink(missing_ok=True)
        commit = git_commit()  # the code the notebook starts with (later commits during a long run do not count)
        os.environ["PAIRLIB_COMMIT"] = commit  # the kernel stamps its tables with it (report.code_commit)
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(nb), str(running), parameters=params, cwd=str(NOTEBOOK_DIR),
                                progress_bar=progress_bar, request_save_on_cell_execute=True,
                                kernel_name="python3")
        except pm.PapermillExecutionError as e:
            running.replace(failed)
            _record(out_dir, nb.stem, {"status": "failed", "cell": e.exec_count, "error": f"{e.ename}: {e.evalue}",
                                       "seconds": round(time.perf_counter() - t0, 1), "commit": commit})
            raise RunError(f"{nb.stem} failed in cell [{e.exec_count}] (cell index {e.cell_index}): "
                           f"{e.ename}: {e.evalue}\nThe executed notebook is at {failed}. Fix it, then continue with "
                           f"`pairlib run --profile {profile} --from {nb.stem}` (or --resume).") from None
        running.replace(final)
        seconds = time.perf_counter() - t0
        state = _record(out_dir, nb.stem, {"status": "ok", "seconds": round(seconds, 1), "commit": commit,
                                           "finished": _dt.datetime.now().isoformat(timespec="seconds")})
        print(f"[{i}/{len(plans)}] {nb.stem} done in {_fmt(seconds)} -> {final}", flush=True)
    print(f"all {len(plans)} notebook(s) done in {_fmt(time.perf_counter() - total_t0)}; outputs in {out_dir}")
    return state


def runs_table(out_dir: str | Path) -> "pd.DataFrame":
    """One row per notebook: its last run in this output folder (status, wall time, the commit it started at, when)
    or `not run`; the evidence behind every number, and what a user has to run to fill the gaps."""
    import pandas as pd
    state = read_state(Path(out_dir))["notebooks"]
    rows = []
    for nb in notebooks():
        s = state.get(nb.stem, {})
        executed = (Path(out_dir) / f"{nb.stem}.ipynb").exists()
        rows.append({"notebook": nb.stem, "status": s.get("status", "ok (no record)" if executed else "not run"),
                     "minutes": round(s["seconds"] / 60, 1) if "seconds" in s else None,
                     "commit": s.get("commit", ""), "finished": s.get("finished", "")})
    return pd.DataFrame(rows)


def list_cmd() -> None:
    import papermill as pm
    print("notebooks:")
    for nb in notebooks():
        params = pm.inspect_notebook(str(nb))
        print(f"  {nb.stem:<32} parameters: {', '.join(params)}")
    print("profiles:")
    for p in profiles():
        desc = (yaml.safe_load((PARAMS_DIR / f"{p}.yaml").read_text()) or {}).get("description", "")
        print(f"  {p:<8} {desc}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pairlib", description="Run pairlib's notebooks with papermill.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="show notebooks and profiles")
    rd = sub.add_parser("readme", help="regenerate the generated blocks (claims, frontier) of README.md and "
                        "docs/*.md from outputs/<profile>/")
    rd.add_argument("--profile", default="cpu")
    r = sub.add_parser("run", help="execute notebooks in order with a profile's parameters")
    r.add_argument("--profile", default="smoke", help="params/<profile>.yaml (default: smoke)")
    r.add_argument("--only", nargs="+", default=(), metavar="PATTERN", help="notebooks to run (glob or prefix)")
    r.add_argument("--from", dest="start", metavar="PREFIX", help="start at the first notebook with this prefix")
    r.add_argument("--resume", action="store_true", help="skip notebooks that already finished for this profile")
    r.add_argument("--output-root", default=None, help="write to <root>/<profile> instead of outputs/<profile>")
    r.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")
    args = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        if args.cmd == "list":
            list_cmd()
        elif args.cmd == "readme":
            from pairlib.study.report import update_claim_pages
            changed = update_claim_pages(REPO_ROOT / "outputs" / args.profile)
            print(f"updated: {', '.join(changed)}" if changed else "README.md and docs/ already up to date")
        else:
            run(args.profile, args.only, args.start, args.resume, args.output_root, not args.no_progress)
    except RunError as e:
        print(f"pairlib: error: {e}", file=sys.stderr)
        return 2
    return 0
