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
import ast
import datetime as _dt
import fnmatch
import json
import os
import re
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import yaml

from pairlib.core.artifacts import REPO_ROOT, shown
from pairlib.core.data import DataError
from pairlib.study import profile_checks

if TYPE_CHECKING:
    import pandas as pd

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PARAMS_DIR = REPO_ROOT / "params"
ALWAYS_INJECTED = ("profile", "output_dir")


class RunError(RuntimeError):
    """A run that cannot start or did not finish; its message says which notebook and what to do."""


class Interrupted(RunError):
    """Ctrl-C: the same record and message as a failure, the shell's exit status for an interrupt."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (how a background `nohup` run is stopped), turned into an interrupt so that the notebook running is
    recorded as interrupted and its partial results are discarded, as with Ctrl-C."""


def _terminate(signum, frame) -> None:
    raise Terminated()


def notebooks() -> list[Path]:
    """In number order, except that a report (`*_report`) runs after every notebook whose results it gathers."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"), key=lambda nb: (nb.stem.endswith("_report"), nb.stem))


def profiles() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))


class _ProfileLoader(yaml.SafeLoader):
    """YAML 1.1 reads `5e-5` (no dot) as a string; a profile means a number. A key given twice in one mapping is an
    error (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_ProfileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)$"), list("-+0123456789."))

# Parameters that notebooks turn into recipes, checked before anything runs (with the task the notebook adds).
def load_profile(name: str) -> dict[str, Any]:
    """A profile, read and checked: its shape, every key against the notebooks' parameters cells, every value
    against the type of the parameter's default, every recipe as its class checks it. Each error names the file
    and the key."""
    path = PARAMS_DIR / f"{name}.yaml"
    if name not in profiles() or not path.exists():  # a name with a folder in it (`../x`) is no profile either
        raise RunError(f"unknown profile {name!r}; valid profiles: {', '.join(profiles())}")
    where = f"params/{name}.yaml"
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_ProfileLoader)
    except UnicodeDecodeError as e:
        raise RunError(f"{where} is not UTF-8 text ({e}); save it as UTF-8") from None
    except yaml.YAMLError as e:
        raise RunError(f"{where} is not valid YAML: {e}") from None
    if not data:
        # an empty profile would run every notebook with its smoke defaults and write them over the profile's outputs
        raise RunError(f"{where} is empty; a profile needs at least a description (see params/smoke.yaml)")
    if not isinstance(data, dict):
        raise RunError(f"{where} must be a mapping with description, defaults and notebooks; got a "
                       f"{type(data).__name__}")
    unknown = set(data) - {"description", "defaults", "notebooks"}
    if unknown:
        raise RunError(f"{where}: unknown top-level keys {sorted(unknown)}; use description, defaults, notebooks")
    for section in ("defaults", "notebooks"):
        if not isinstance(data.get(section) or {}, dict):
            raise RunError(f"{where}: {section} must be a mapping of key -> value, got {data[section]!r}")
    declared = {nb.stem: _declared(nb) for nb in notebooks()}
    for nb, own in (data.get("notebooks") or {}).items():
        if nb not in declared:
            raise RunError(f"{where}: section for unknown notebook {nb!r}; notebooks: {', '.join(sorted(declared))}")
        if not isinstance(own or {}, dict):
            raise RunError(f"{where}: notebooks.{nb} must be a mapping of parameter -> value, got {own!r}")
    everywhere = {k: v for params in declared.values() for k, v in params.items()}
    for key, value in (data.get("defaults") or {}).items():
        if key not in everywhere:
            raise RunError(f"{where}: defaults.{key} is declared by no notebook's parameters cell (a typo?); "
                           f"declared: {', '.join(sorted(everywhere))}")
        _check_value(f"{where}: defaults.{key}", key, value, everywhere[key])
    for nb, own in (data.get("notebooks") or {}).items():
        for key, value in (own or {}).items():
            if key in declared[nb]:
                _check_value(f"{where}: notebooks.{nb}.{key}", key, value, declared[nb][key])
    return data


def _declared(nb: Path) -> dict[str, Any]:
    """A notebook's parameters and their default values (None where the default is not a plain literal)."""
    import papermill as pm
    out = {}
    for key, info in pm.inspect_notebook(str(nb)).items():
        try:
            out[key] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            out[key] = None
    return out


def _check_value(where: str, key: str, value: Any, default: Any) -> None:
    """The value's kind against the notebook's default, then what `profile_checks` knows of the parameter."""
    if value is not None and default is not None and not _same_kind(value, default):
        raise RunError(f"{where} must be {_kind(default)} like the notebook's default {default!r}, got {value!r}")
    try:
        profile_checks.check(key, value)
    except (ValueError, TypeError, DataError) as e:
        raise RunError(f"{where}: {e}") from None


def _kind(v: Any) -> str:
    return {bool: "true or false", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(v), type(v).__name__)


def _same_kind(value: Any, default: Any) -> bool:
    return _kind(value) == _kind(default)


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
    inside = out_dir.is_relative_to(REPO_ROOT)  # repository-relative: executed notebooks travel between clones
    params.update(profile=profile, output_dir=str(out_dir.relative_to(REPO_ROOT) if inside else out_dir))
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
    previous = state["notebooks"].get(notebook, {})
    last_ok = previous if previous.get("status") == "ok" else previous.get("last_ok")
    if entry["status"] != "ok" and last_ok:  # the executed notebook on disk is still that run's: keep its record
        entry = {**entry, "last_ok": {k: v for k, v in last_ok.items() if k != "last_ok"}}
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
        output_root: str | Path | None = None, progress_bar: bool = True, allow_dirty: bool = False) -> dict[str, Any]:
    """Execute the chosen notebooks of a profile in order, each into `<output root>/<profile>/`: checked before
    any runs, each notebook run by one process at a time, refused from a dirty tree for the committed outputs."""
    from pairlib.study.report import git_commit

    spec = load_profile(profile)
    nbs = select(only, start)
    # paths the user typed mean where they typed them, not the kernel's working folder (notebooks/)
    out_dir = (Path(output_root).resolve() if output_root else REPO_ROOT / "outputs") / profile
    if out_dir.parent == (REPO_ROOT / "outputs").resolve() and git_commit().endswith("-dirty") and not allow_dirty:
        raise RunError(f"the code has uncommitted changes, so {shown(out_dir)}/ would hold results no commit can "
                       "reproduce: commit first, write elsewhere with --output-root, or pass --allow-dirty (its "
                       "tables are then stamped -dirty)")
    if os.environ.get("PAIRLIB_DATA"):
        os.environ["PAIRLIB_DATA"] = str(Path(os.environ["PAIRLIB_DATA"]).resolve())
    out_dir.mkdir(parents=True, exist_ok=True)
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
    state = read_state(out_dir)
    if resume:
        done = {k for k, v in state["notebooks"].items()
                if v.get("status") == "ok" and (out_dir / f"{k}.ipynb").exists()}
        skipped = [nb.stem for nb, _ in plans if nb.stem in done]
        plans = [(nb, p) for nb, p in plans if nb.stem not in done]
        if skipped:
            print(f"resume: skipping {len(skipped)} finished notebook(s): {', '.join(skipped)}")
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
                pm.execute_notebook(str(nb), str(running), parameters=params, cwd=str(NOTEBOOK_DIR),
                                    progress_bar=progress_bar, request_save_on_cell_execute=True,
                                    kernel_name="python3")
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
            _tidy_executed(running, nb, final)
            running.replace(final)
            seconds = time.perf_counter() - t0
            state = _record(out_dir, nb.stem, {"status": "ok", "seconds": round(seconds, 1), "commit": commit,
                                               "started": started,
                                               "finished": _dt.datetime.now().isoformat(timespec="seconds")})
            print(f"[{i}/{len(plans)}] {nb.stem} done in {_fmt(seconds)} -> {shown(final)}", flush=True)
    print(f"all {len(plans)} notebook(s) done in {_fmt(time.perf_counter() - total_t0)}; outputs in {shown(out_dir)}")
    return state


def _tidy_executed(executed: Path, source: Path, final: Path) -> None:
    """Papermill records the absolute paths it read and wrote; an executed notebook that is committed names the
    repository's paths instead (a notebook written outside the repository keeps its own). Its streams are stored
    as a reader sees them (`tidy_streams`)."""
    import nbformat
    nb = nbformat.read(executed, as_version=4)
    record = nb.metadata.get("papermill", {})
    record.update(input_path=shown(source), output_path=shown(final))
    tidy_streams(nb)
    nbformat.write(nb, executed)


def overwrite_carriage_returns(text: str) -> str:
    """What a terminal (and JupyterLab) shows for `text`: after a `\r` the line is written over from its start."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        shown_line = ""
        for part in line.split("\r"):
            shown_line = part + shown_line[len(part):]
        lines.append(shown_line)
    return "\n".join(lines)


def tidy_streams(nb) -> None:
    """Papermill saves every write to stdout/stderr as its own output, so a progress bar updated every 30 s over
    hours left thousands of lines in git that Lab draws as one line. Consecutive writes to one stream become one
    output holding what Lab shows."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged: list = []
        for out in cell.get("outputs", []):
            if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                    and merged[-1].get("name") == out.get("name")):
                merged[-1]["text"] += out["text"]
            else:
                merged.append(out)
        for out in merged:
            if out.get("output_type") == "stream":
                out["text"] = overwrite_carriage_returns(out["text"])
        cell.outputs = merged


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
    print("profiles:")
    for p in profiles():
        try:
            desc = load_profile(p).get("description", "")
        except RunError as e:  # one broken profile must not hide the others
            desc = f"(broken: {e})"
        print(f"  {p:<8} {desc}")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pairlib", description="Run pairlib's notebooks with papermill.",
                                 epilog="pairlib score --help: score your own pairs with a saved model, in-process or "
                                        "on Ray (docs/scale.md)")
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
    import signal
    previous = signal.signal(signal.SIGTERM, _terminate)
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
        return 143 if isinstance(e.__context__, Terminated) else 130
    except KeyboardInterrupt:
        print("pairlib: interrupted before any notebook ran", file=sys.stderr)
        return 130
    except RunError as e:
        print(f"pairlib: error: {e}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0
