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
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence


from pairlib.core.artifacts import REPO_ROOT, shown
from pairlib.core.stopping import Terminated, exit_status, sigterm_as_interrupt
from pairlib.study import profiles as _profiles
from pairlib.study.executed import tidy_executed, tidy_streams  # noqa: F401  (tidy_streams: tests)
from pairlib.study.profiles import (  # noqa: F401  (_ProfileLoader, _check_value: tests)
    RunError,
    _check_value,
    _declared,
    _ProfileLoader,
    load_profile,
    notebooks,
    profiles,
)

if TYPE_CHECKING:
    import pandas as pd

ALWAYS_INJECTED = ("profile", "output_dir")


class Interrupted(RunError):
    """Ctrl-C: the same record and message as a failure, the shell's exit status for an interrupt."""


def _ipc_kernel_manager():
    """The kernel manager papermill starts each notebook's kernel with: its sockets are local files (IPC) rather
    than TCP ports, so nothing listens on the network and the kernel prints no "running over TCP without
    encryption" warning for every notebook of a run."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class IPCKernelManager(AsyncKernelManager):
        @default("transport")
        def _default_transport(self) -> str:
            return "ipc"

        @default("ip")
        def _default_ip(self) -> str:
            # the sockets' path prefix: jupyter_client's default is `kernel-ipc` in the working folder, which put
            # five socket files beside the notebooks (in Lab's file browser) for as long as a kernel ran
            import tempfile
            return str(Path(tempfile.gettempdir()) / f"pairlib-kernel-{os.getpid()}")

    return IPCKernelManager


def select(only: Sequence[str] = (), start: str | None = None, spec: dict[str, Any] | None = None) -> list[Path]:
    """Notebooks matching any `only` pattern (glob or prefix), from the first whose name starts with `start`, among
    those the profile `spec` runs (`runs`; all when it has none)."""
    nbs = _profiles.profile_notebooks(spec or {})
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
    inside = out_dir.is_relative_to(REPO_ROOT)  # repository-relative: executed notebooks travel between clones
    params.update(profile=profile, output_dir=str(out_dir.relative_to(REPO_ROOT) if inside else out_dir))
    return params


def _state_path(out_dir: Path) -> Path:
    return out_dir / "run_state.json"


def read_state(out_dir: Path) -> dict[str, Any]:
    p = _state_path(out_dir)
    if not p.exists():
        return {"notebooks": {}}
    try:
        state = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RunError(f"{shown(p)} is not a readable run record ({e}); delete it (the executed notebooks stay) "
                       "and run again") from None
    if not isinstance(state, dict) or not isinstance(state.get("notebooks"), dict):
        raise RunError(f"{shown(p)} is not a run record (no 'notebooks' mapping); delete it and run again")
    return state


def _record(out_dir: Path, notebook: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Set one notebook's entry, re-reading the file first so that runs in other processes (say, a quick report
    while a long notebook trains) keep theirs."""
    state = read_state(out_dir)
    previous = state["notebooks"].get(notebook, {})
    last_ok = previous if previous.get("status") == "ok" else previous.get("last_ok")
    if entry["status"] != "ok" and last_ok:  # the executed notebook on disk is still that run's: keep its record
        entry = {**entry, "last_ok": {k: v for k, v in last_ok.items() if k != "last_ok"}}
    state["notebooks"][notebook] = entry
    tmp = _state_path(out_dir).with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(_state_path(out_dir))
    return state


def _digest(params: dict[str, Any]) -> str:
    """Names a notebook's parameters, so that --resume runs a notebook again whose settings changed since it ran."""
    import hashlib
    settings = {k: v for k, v in params.items() if k != "output_dir"}
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _fmt(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


def run(profile: str, only: Sequence[str] = (), start: str | None = None, resume: bool = False,
        output_root: str | Path | None = None, progress_bar: bool = True, allow_dirty: bool = False) -> dict[str, Any]:
    """Execute the chosen notebooks of a profile in order, each into `<output root>/<profile>/`: checked before
    any runs, each notebook run by one process at a time, refused from a dirty tree for the committed outputs."""
    from pairlib.study.report import git_commit

    spec = load_profile(profile)
    nbs = select(only, start, spec)
    # paths the user typed mean where they typed them, not the kernel's working folder (notebooks/)
    out_dir = (Path(output_root).resolve() if output_root else REPO_ROOT / "outputs") / profile
    if out_dir.parent == (REPO_ROOT / "outputs").resolve() and git_commit().endswith("-dirty") and not allow_dirty:
        raise RunError(f"the code has uncommitted changes, so {shown(out_dir)}/ would hold results no commit can "
                       "reproduce: commit first, write elsewhere with --output-root, or pass --allow-dirty (its "
                       "tables are then stamped -dirty)")
    if os.environ.get("PAIRLIB_DATA"):
        os.environ["PAIRLIB_DATA"] = str(Path(os.environ["PAIRLIB_DATA"]).resolve())
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file where the folder should be, a folder that cannot be written
        raise RunError(f"cannot write outputs into {shown(out_dir)} ({e.strerror or e}); name a folder with "
                       "--output-root") from None
    plans = [(nb, parameters_for(nb, profile, spec, out_dir)) for nb in nbs]  # validate all before running any
    return _run_plans(plans, profile, out_dir, resume, progress_bar)


@contextmanager
def _held(out_dir: Path, nb: Path) -> Iterator[None]:
    from pairlib.core.artifacts import BusyError, held
    try:
        with held(out_dir / f".{nb.stem}.lock", f"`pairlib run` of {nb.stem}"):
            yield
    except BusyError as e:
        raise RunError(str(e)) from None


def _run_plans(plans: list, profile: str, out_dir: Path, resume: bool, progress_bar: bool) -> dict[str, Any]:
    """The notebooks of `plans` in order, each staged and committed whole, each held by this process alone while
    it runs (another process may run another notebook into the same folder: a report while a study trains)."""
    import papermill as pm

    from pairlib.study.report import STAGING_ENV, commit_staged, git_commit

    for nb, _ in plans:  # refused before anything runs when another process runs one of them now
        with _held(out_dir, nb):
            pass
    # no progress bar lands in an executed notebook: the kernels inherit these (tqdm's, datasets' and the Hub's own
    # switches); the console shows each notebook's cells instead (papermill's bar) and the loop one line per epoch
    os.environ.update(TQDM_DISABLE="1", HF_DATASETS_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    state = read_state(out_dir)
    if resume:  # a notebook that finished with the same parameters (a record without them: any)
        done = {k for k, v in state["notebooks"].items()
                if v.get("status") == "ok" and (out_dir / f"{k}.ipynb").exists()}
        changed = [nb.stem for nb, p in plans if nb.stem in done
                   and state["notebooks"][nb.stem].get("parameters", _digest(p)) != _digest(p)]
        skipped = [nb.stem for nb, _ in plans if nb.stem in done and nb.stem not in changed]
        plans = [(nb, p) for nb, p in plans if nb.stem not in skipped]
        if skipped:
            print(f"resume: skipping {len(skipped)} finished notebook(s): {', '.join(skipped)}")
        if changed:
            print(f"resume: running again, their parameters changed since they finished: {', '.join(changed)}")
    total_t0 = time.perf_counter()
    for i, (nb, params) in enumerate(plans, 1):
        with _held(out_dir, nb):  # this process alone runs this notebook into this folder
            print(f"[{i}/{len(plans)}] {nb.stem} (profile {profile}) ...", flush=True)
            final = out_dir / f"{nb.stem}.ipynb"
            running = out_dir / f".{nb.stem}.running.ipynb"
            failed = out_dir / f"{nb.stem}.failed.ipynb"
            failed.unlink(missing_ok=True)
            commit = git_commit()  # the code the notebook starts with (later commits during a long run do not count)
            os.environ["PAIRLIB_COMMIT"] = commit  # the kernel stamps its tables with it (report.code_commit)
            started = _dt.datetime.now().isoformat(timespec="seconds")
            # recorded before it runs, so that an interrupted re-run is not taken for the earlier success by --resume
            _record(out_dir, nb.stem, {"status": "running", "commit": commit, "started": started})
            staging = out_dir / ".staging" / nb.stem  # its tables, figures and claims until it succeeds
            shutil.rmtree(staging, ignore_errors=True)
            os.environ[STAGING_ENV] = str(staging)
            t0 = time.perf_counter()

            def stopped(status: str, error: str, **extra) -> Path | None:
                os.environ.pop(STAGING_ENV, None)
                shutil.rmtree(staging, ignore_errors=True)  # what it wrote before failing replaces nothing
                if running.exists():
                    running.replace(failed)
                seconds = round(time.perf_counter() - t0, 1)
                _record(out_dir, nb.stem, {"status": status, "error": error, "seconds": seconds,
                                           "commit": commit, "started": started, **extra})
                return failed if failed.exists() else None

            again = f"`pairlib run --profile {profile} --from {nb.stem}` (or --resume)"
            try:
                pm.execute_notebook(str(nb), str(running), parameters=params, cwd=str(_profiles.NOTEBOOK_DIR),
                                    progress_bar=progress_bar, request_save_on_cell_execute=True,
                                    kernel_name="python3", kernel_manager_class=_ipc_kernel_manager())
            except pm.PapermillExecutionError as e:
                kept = stopped("failed", f"{e.ename}: {e.evalue}", cell=e.exec_count)
                raise RunError(f"{nb.stem} failed in cell [{e.exec_count}] (cell index {e.cell_index}): "
                               f"{e.ename}: {e.evalue}\nThe executed notebook is at {shown(kept)}. Fix it, then "
                               f"continue with {again}.") from None
            except KeyboardInterrupt as stop:
                how = "stopped by SIGTERM" if isinstance(stop, Terminated) else "interrupted by the user"
                kept = stopped("interrupted", how)
                raise Interrupted(f"{nb.stem} {how.split(' by ')[0]} after {_fmt(time.perf_counter() - t0)}"
                               + (f"; what it ran is in {shown(kept)}" if kept else "")
                               + f". Trained models keep their checkpoints: continue with {again}.") from None
            except Exception as e:  # the kernel died (out of memory?), or papermill/nbclient failed around it
                dead = type(e).__name__ == "DeadKernelError"
                kept = stopped("failed", f"{type(e).__name__}: {e}".strip())
                why = ("its kernel died, most often killed for lack of memory (see `dmesg`, or lower the batch size "
                       "or sizes in the profile)" if dead else f"{type(e).__name__}: {e}")
                raise RunError(f"{nb.stem} stopped: {why}"
                               + (f"; what it ran is in {shown(kept)}" if kept else "") + f". Continue with {again}.") \
                    from None
            os.environ.pop(STAGING_ENV, None)
            try:
                commit_staged(staging, out_dir)
            except OSError as e:
                kept = stopped("failed", f"results not written: {e}")
                raise RunError(f"{nb.stem} ran, but its results cannot be written into {shown(out_dir)} ({e}); "
                               "none of them replaced the earlier ones. Fix that folder, then run it again with "
                               f"{again}.") from None
            tidy_executed(running, nb, final)
            running.replace(final)
            seconds = time.perf_counter() - t0
            state = _record(out_dir, nb.stem, {"status": "ok", "seconds": round(seconds, 1), "commit": commit,
                                               "started": started, "parameters": _digest(params),
                                               "finished": _dt.datetime.now().isoformat(timespec="seconds")})
            print(f"[{i}/{len(plans)}] {nb.stem} done in {_fmt(seconds)} -> {shown(final)}", flush=True)
    print(f"all {len(plans)} notebook(s) done in {_fmt(time.perf_counter() - total_t0)}; outputs in {shown(out_dir)}")
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
        if s.get("status") != "ok" and s.get("last_ok") and executed:  # its results are the earlier run's
            s = {**s["last_ok"], "status": f"ok (a later run {s['status']})"}
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
    from pairlib.core.backbone import BUILTIN_BACKBONES, PRETRAINED_HERE
    print("backbones:", ", ".join(f"{b} (pretrained here)" if b in PRETRAINED_HERE else b for b in BUILTIN_BACKBONES),
          "or a folder or Hugging Face id")
    print("profiles:")
    for p in profiles():
        try:
            desc = load_profile(p).get("description", "")
        except RunError as e:  # one broken profile must not hide the others
            desc = f"(broken: {e})"
        print(f"  {p:<8} {desc}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pairlib", description="Run pairlib's notebooks with papermill.",
                                 epilog="pairlib train --help / pairlib evaluate --help: a method on your own labelled "
                                        "file (docs/your-data.md); pairlib score --help: score your own pairs with a "
                                        "saved model, in-process or on Ray (docs/scale.md)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="show notebooks and profiles")
    rd = sub.add_parser("readme", help="regenerate the generated blocks (claims, frontier) of README.md and "
                        "docs/*.md from outputs/<profile>/")
    rd.add_argument("--profile", default="cpu", help="only cpu's outputs are committed, and so published")
    r = sub.add_parser("run", help="execute notebooks in order with a profile's parameters")
    r.add_argument("--profile", default="smoke", help="params/<profile>.yaml (default: smoke)")
    r.add_argument("--only", nargs="+", default=(), metavar="PATTERN", help="notebooks to run (glob or prefix)")
    r.add_argument("--from", dest="start", metavar="PREFIX", help="start at the first notebook with this prefix")
    r.add_argument("--resume", action="store_true", help="skip notebooks that already finished for this profile")
    r.add_argument("--output-root", default=None, help="write to <root>/<profile> instead of outputs/<profile>")
    r.add_argument("--no-progress", action="store_true", help="no per-cell progress bar")
    r.add_argument("--allow-dirty", action="store_true",
                   help="write outputs/<profile>/ from a tree with uncommitted changes (stamped -dirty)")
    args = ap.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with sigterm_as_interrupt():  # `kill <pid>` ends a run as Ctrl-C does, recorded
        try:
            if args.cmd == "list":
                list_cmd()
            elif args.cmd == "readme":
                from pairlib.study.pages import PUBLISHED_PROFILE, update_claim_pages
                if args.profile != PUBLISHED_PROFILE:
                    raise RunError(f"the README and docs/ show the committed {PUBLISHED_PROFILE} outputs only; "
                                   f"outputs/{args.profile}/ is not committed, so its numbers are not published")
                try:
                    changed = update_claim_pages(REPO_ROOT / "outputs" / args.profile)
                except ValueError as e:
                    raise RunError(str(e)) from None
                print(f"updated: {', '.join(changed)}" if changed else "README.md and docs/ already up to date")
            else:
                run(args.profile, args.only, args.start, args.resume, args.output_root, not args.no_progress,
                    args.allow_dirty)
        except Interrupted as e:
            print(f"pairlib: interrupted: {e}", file=sys.stderr)
            return exit_status(e.__context__)
        except KeyboardInterrupt as stop:
            print("pairlib: interrupted before any notebook ran", file=sys.stderr)
            return exit_status(stop)
        except RunError as e:
            print(f"pairlib: error: {e}", file=sys.stderr)
            return 2
    return 0
