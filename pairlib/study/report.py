"""Tables, figures and the claims table, each stamped with where it came from (figure helpers: `plots`; the
README's generated blocks: `pages`).

A table is written as `<name>.csv` (plain data) and `<name>.md` (the same table with its stamp beneath), plus
`<name>.meta.json` holding the stamp: git commit, profile, hardware, library versions and time. Figures carry the
stamp in a footer line. The claims table `claims.csv` gathers one row per paper claim; each notebook adds or replaces
its own rows, so re-running one notebook never drops another's.
"""
from __future__ import annotations

import csv
import datetime as _dt
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from pairlib.core.artifacts import REPO_ROOT, shown, typed_path
from pairlib.core.measure import hardware, hardware_label
from pairlib.study import claims as claim_registry
from pairlib.study.verdicts import VERDICTS

LIBRARIES = ("torch", "transformers", "datasets", "accelerate", "pandas", "scikit-learn", "papermill")

# Every notebook imports this module: the tables it displays show 4 significant decimals, not pandas' 6 (the
# written tables keep every digit in their CSV)
pd.set_option("display.precision", 4)
CLAIM_COLUMNS = ("claim_id", "paper", "description", "paper_value", "ours", "unit", "verdict", "evidence")


# what can change a result: not the outputs being written right now, nor prose edited while a long run goes on
NOT_CODE = (":!outputs", ":!docs", ":!*.md")


def git_commit(root: str | Path = REPO_ROOT) -> str:
    """The commit of the code that ran, `-dirty` when tracked code differs from it."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", *NOT_CODE],
                               cwd=root, capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def code_commit() -> str:
    """The commit of the code that is running: the one `pairlib run` saw when the notebook started (it passes it on
    in PAIRLIB_COMMIT), else the one at first use in this process. Commits made while a long notebook runs do not
    change the stamp of what it writes, because its kernel still runs the code it imported."""
    global _FIRST_COMMIT
    if os.environ.get("PAIRLIB_COMMIT"):
        return os.environ["PAIRLIB_COMMIT"]
    if _FIRST_COMMIT is None:
        _FIRST_COMMIT = git_commit()
    return _FIRST_COMMIT


_FIRST_COMMIT: str | None = None


def library_versions() -> dict[str, str]:
    out = {}
    for lib in LIBRARIES:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = "not installed"
    return out


def stamp(profile: str) -> dict[str, Any]:
    return {"commit": code_commit(), "profile": profile, "hardware": hardware_label(), "hardware_detail": hardware(),
            "versions": library_versions(), "written": _dt.datetime.now().isoformat(timespec="seconds")}


def stamp_line(s: dict[str, Any]) -> str:
    v = s["versions"]
    return (f"profile {s['profile']} | commit {s['commit']} | {s['hardware']} | torch {v['torch']}, "
            f"transformers {v['transformers']} | {s['written']}")


def output_dir(profile: str, root: str | Path | None = None) -> Path:
    """Where a notebook writes: `root` if given (the runner passes it, with the profile's parameters; relative to the
    repository, so that an executed notebook names no machine's folder and, run again, writes into the clone it is
    in), else `$PAIRLIB_OUTPUTS/<profile>` (the tests point it at a temporary folder), else
    `outputs/interactive/<profile>`: a notebook run by hand (in JupyterLab, its parameters perhaps edited) never
    writes into `outputs/<profile>/`, which holds only what `pairlib run` made from `params/<profile>.yaml`."""
    committed = REPO_ROOT / "outputs"
    if root is not None and (REPO_ROOT / root).resolve().parent == committed.resolve() and not os.environ.get(
            STAGING_ENV):
        # an executed notebook re-run by hand (Run All on outputs/<profile>/<nb>.ipynb) carries the runner's root
        root = None
        print("this notebook's output_dir names a profile's committed outputs, which only `pairlib run` writes")
    if root is not None:
        d = REPO_ROOT / root  # an absolute root stays as it is
    elif os.environ.get("PAIRLIB_OUTPUTS"):
        d = typed_path(os.environ["PAIRLIB_OUTPUTS"]) / profile
    else:
        d = REPO_ROOT / "outputs" / "interactive" / profile
        print(f"not run by `pairlib run`: outputs go to {shown(d)}/ (outputs/{profile}/ holds only runs of "
              f"params/{profile}.yaml by `pairlib run --profile {profile}`)")
    d.mkdir(parents=True, exist_ok=True)
    return d


# While `pairlib run` executes a notebook, the notebook's tables, figures and claims go to a staging folder
# (<out_dir>/.staging/<notebook>/, named by this variable) and reach <out_dir> only once the notebook succeeds, so a
# failed run leaves the results it would have replaced untouched.
STAGING_ENV = "PAIRLIB_STAGING"


def _staging(out_dir: str | Path) -> Path | None:
    staging = os.environ.get(STAGING_ENV)
    if staging and Path(staging).parent.parent.resolve() == Path(out_dir).resolve():
        return Path(staging)
    return None


def _written_in(out_dir: str | Path) -> Path:
    return _staging(out_dir) or Path(out_dir)


def commit_staged(staging: Path, out_dir: str | Path) -> list[str]:
    """Move a succeeded notebook's staged tables and figures into `out_dir` and merge its claims; what moved. In two
    steps, so that a folder that cannot be written changes nothing: every file is first copied beside its place
    under a temporary name (any failure removes those copies and raises), then each is renamed into place."""
    files = [(f, Path(out_dir) / kind / f.name) for kind in ("tables", "figures")
             for f in sorted((staging / kind).glob("*"))]
    placed: list[tuple[Path, Path]] = []
    try:
        for src, dest in files:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
            shutil.copyfile(src, tmp)
            placed.append((tmp, dest))
    except OSError:
        for tmp, _ in placed:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, dest in placed:
        os.replace(tmp, dest)
    moved = [f"{dest.parent.name}/{dest.name}" for _, dest in placed]
    if (staging / "claims.csv").exists():
        _merge_claim_rows(_claim_rows(staging / "claims.csv"), out_dir, staged=False)
        moved.append("claims.csv")
    shutil.rmtree(staging, ignore_errors=True)
    return moved


def _counts_as_integers(df: pd.DataFrame) -> pd.DataFrame:
    """A float column holding only whole numbers is a count (pandas makes one float when some rows have no value,
    a pool size beside the teacher's row, say), and `floatfmt` would print 19200 as 1.92e+04: such columns are
    shown as whole numbers in the Markdown, the gaps left blank."""
    shown = df.copy()
    for col in shown.columns:
        values = shown[col]
        if values.dtype.kind == "f" and values.notna().any() and (values.dropna() % 1 == 0).all():
            shown[col] = [f"{int(v)}" if v == v else "" for v in values]
    return shown


CONTEXT_COLUMNS = ("hardware",)  # said once under a Markdown table when every row has the same value


def _context_said_once(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The Markdown table without the context columns that hold one value (the CSV keeps them), and that value as a
    line under it: a hardware label repeated on every row widens the table and says nothing new."""
    constant = [c for c in CONTEXT_COLUMNS if c in df.columns and len(df) > 1 and df[c].nunique(dropna=False) == 1]
    return df.drop(columns=constant), [f"{c}: {df[c].iloc[0]}" for c in constant]


def save_table(df: pd.DataFrame, name: str, out_dir: str | Path, profile: str, notes: Iterable[str] = (),
               floatfmt: str = ".4g") -> Path:
    """Write a table as CSV + Markdown + stamp; `notes` (e.g. a task's deviations) go under the Markdown table."""
    out = _written_in(out_dir) / "tables"
    out.mkdir(parents=True, exist_ok=True)
    s = stamp(profile)
    s["notes"] = list(notes)
    df.to_csv(out / f"{name}.csv", index=False)
    shown_df, said_once = _context_said_once(df)
    md = _counts_as_integers(shown_df).to_markdown(index=False, floatfmt=floatfmt)
    lines = [md, "", f"_{stamp_line(s)}_"] + [f"- {n}" for n in said_once + s["notes"]]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / f"{name}.meta.json").write_text(json.dumps(s, indent=2) + "\n", encoding="utf-8")
    return out / f"{name}.csv"


def save_figure(fig, name: str, out_dir: str | Path, profile: str) -> None:
    """`<name>.png` with the stamp in a line beneath everything the figure draws (axis labels that reach below the
    figure's area included; the tight bounding box grows to take it in), so it never lies over a label. Returns
    nothing, so that a cell ending with it shows the figure and no path."""
    out = _written_in(out_dir) / "figures"
    out.mkdir(parents=True, exist_ok=True)
    lowest = fig.get_tightbbox(fig.canvas.get_renderer()).y0 / fig.get_figheight()  # of every label, in figure units
    line = stamp_line(stamp(profile))
    fig.text(0.01, min(lowest, 0.0) - 0.01, line, fontsize=8, color="0.35", ha="left", va="top")
    # the stamp also as the PNG's text, so that a program (the -dirty test) reads what the image shows
    fig.savefig(out / f"{name}.png", dpi=120, bbox_inches="tight", metadata={"Description": line})


@dataclass
class Claim:
    """One row of the claims table: a paper's number beside ours, with an honest verdict."""

    claim_id: str
    paper: str
    description: str
    paper_value: str
    ours: str
    unit: str
    verdict: str
    evidence: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim {self.claim_id}: verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if not self.evidence:
            raise ValueError(f"claim {self.claim_id}: evidence must name the notebook that produced it")


def show_claims(claims: Iterable[Claim]) -> None:
    """Display claims in a notebook whole: pandas cuts cells at 50 characters, which hides the headline numbers."""
    from IPython.display import display
    with pd.option_context("display.max_colwidth", None):
        display(pd.DataFrame([asdict(c) for c in claims]))


def write_claims(claims: Iterable[Claim], out_dir: str | Path) -> Path:
    """Add or replace these claims (by claim_id) in `<out_dir>/claims.csv`, keeping every other row. A notebook
    must write every claim listed for it in `pairlib.study.claims`."""
    claims = list(claims)
    claim_registry.check_written([c.claim_id for c in claims], [c.evidence for c in claims])
    return _merge_claim_rows([{k: str(v) for k, v in asdict(c).items()} for c in claims], out_dir)


def record_claims(claims: Iterable[Claim], out_dir: str | Path) -> None:
    """What a notebook's last cell calls: write its claims (`write_claims`) and show them whole."""
    claims = list(claims)
    write_claims(claims, out_dir)
    show_claims(claims)


def add_placeholder_claims(out_dir: str | Path, profile: str) -> list[str]:
    """A `not run` row for every listed claim that `<out_dir>/claims.csv` lacks; their ids."""
    rows = claim_registry.placeholder_rows(read_claims(out_dir), profile)
    if rows:
        _merge_claim_rows(rows, out_dir)
    return [r["claim_id"] for r in rows]


def _claim_rows(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    with open(path, newline="", encoding="utf-8") as f:
        return {r["claim_id"]: r for r in csv.DictReader(f)}


def _merge_claim_rows(new_rows: list[dict[str, str]] | dict[str, dict[str, str]], out_dir: str | Path,
                      staged: bool = True) -> Path:
    """Add or replace rows by claim_id in `<out_dir>/claims.csv`, or, while the runner stages this notebook's
    results, in the staging folder's (which then holds only this notebook's rows)."""
    path = (_written_in(out_dir) if staged else Path(out_dir)) / "claims.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = _claim_rows(path)
    for r in (new_rows.values() if isinstance(new_rows, dict) else new_rows):
        rows[r["claim_id"]] = r
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(CLAIM_COLUMNS))
        w.writeheader()
        for cid in sorted(rows):
            w.writerow(rows[cid])
    tmp.replace(path)
    return path


def read_claims(out_dir: str | Path) -> pd.DataFrame:
    """`<out_dir>/claims.csv` with the rows a running notebook has staged over it."""
    rows = _claim_rows(Path(out_dir) / "claims.csv")
    staging = _staging(out_dir)
    if staging is not None:
        rows.update(_claim_rows(staging / "claims.csv"))
    if not rows:
        return pd.DataFrame(columns=list(CLAIM_COLUMNS))
    return pd.DataFrame([rows[c] for c in sorted(rows)], columns=list(CLAIM_COLUMNS)).astype(str)
