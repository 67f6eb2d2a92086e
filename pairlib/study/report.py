"""Tables, figures and the claims table, each stamped with where it came from.

A table is written as `<name>.csv` (plain data) and `<name>.md` (the same table with its stamp beneath), plus
`<name>.meta.json` holding the stamp: git commit, profile, hardware, library versions and time. Figures carry the
stamp in a footer line. The claims table `claims.csv` gathers one row per paper claim; each notebook adds or replaces
its own rows, so re-running one notebook never drops another's.
"""
from __future__ import annotations

import csv
import datetime as _dt
import json
import math
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
    """Move a succeeded notebook's staged tables and figures into `out_dir` and merge its claims; what moved."""
    moved = []
    for kind in ("tables", "figures"):
        for f in sorted((staging / kind).glob("*")):
            (Path(out_dir) / kind).mkdir(parents=True, exist_ok=True)
            os.replace(f, Path(out_dir) / kind / f.name)
            moved.append(f"{kind}/{f.name}")
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


def save_table(df: pd.DataFrame, name: str, out_dir: str | Path, profile: str, notes: Iterable[str] = (),
               floatfmt: str = ".4g") -> Path:
    """Write a table as CSV + Markdown + stamp; `notes` (e.g. a task's deviations) go under the Markdown table."""
    out = _written_in(out_dir) / "tables"
    out.mkdir(parents=True, exist_ok=True)
    s = stamp(profile)
    s["notes"] = list(notes)
    df.to_csv(out / f"{name}.csv", index=False)
    md = _counts_as_integers(df).to_markdown(index=False, floatfmt=floatfmt)
    lines = [md, "", f"_{stamp_line(s)}_"] + [f"- {n}" for n in s["notes"]]
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
    fig.text(0.01, min(lowest, 0.0) - 0.01, stamp_line(stamp(profile)), fontsize=6, color="0.4", ha="left", va="top")
    fig.savefig(out / f"{name}.png", dpi=120, bbox_inches="tight")


def plain_log_ticks(axis, leads: tuple[int, ...] = (1, 2, 5)) -> None:
    """Label a log axis (`ax.xaxis` or `ax.yaxis`) in plain numbers at `leads` times each power of ten. Over less
    than a decade or two matplotlib labels every minor tick as 2x10^1, 3x10^1, ..., which run into each other."""
    from matplotlib.ticker import FuncFormatter

    def label(value: float, _pos) -> str:
        if value <= 0:
            return ""
        lead = value / 10 ** math.floor(math.log10(value) + 1e-9)
        return f"{value:,.6g}" if any(math.isclose(lead, k, rel_tol=1e-6) for k in leads) else ""

    axis.set_major_formatter(FuncFormatter(label))
    axis.set_minor_formatter(FuncFormatter(label))


def label_points(ax, xs: Iterable[float], ys: Iterable[float], labels: Iterable[str], fontsize: float = 6,
                 marker_points: float = 9) -> None:
    """Each point's label beside it, readable however the points cluster: a label goes right of its point, or left
    where that fits better or the right would run past the axes, and moves down (with a line back to its point)
    until it covers neither a label already placed nor another point's marker (`marker_points` wide), or up where
    down would leave the axes. Placement is computed in screen space, so call it after the axes' limits, scales and
    the figure's layout are set: a later `tight_layout` moves the points and not the labels' offsets, and clusters
    overlap again."""
    from matplotlib.transforms import Bbox

    fig = ax.figure
    fig.canvas.draw()  # settles the axes' limits, which positions on screen depend on
    renderer = fig.canvas.get_renderer()
    to_points = 72 / fig.dpi
    frame = ax.get_window_extent(renderer)
    points = sorted(zip(xs, ys, labels), key=lambda t: (-t[1], t[0]))  # top first, then left
    half = marker_points / to_points / 2
    screen = [ax.transData.transform((x, y)) for x, y, _ in points]
    markers = [Bbox.from_extents(px - half, py - half, px + half, py + half) for px, py in screen]
    placed: list = []
    for i, (x, y, label) in enumerate(points):
        obstacles = placed + markers[:i] + markers[i + 1:]
        best = None
        for dx, ha in ((4, "left"), (-4, "right")):  # right of the point first
            text = ax.annotate(label, (x, y), xytext=(dx, 3), textcoords="offset points", fontsize=fontsize, ha=ha)
            box = text.get_window_extent(renderer)
            text.remove()
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1
            for step in (2, -2):  # down first; up where down would leave the axes (points near the bottom)
                drop = 0.0
                while any(box.translated(0, -drop).overlaps(b) for b in obstacles) and abs(drop) < frame.height:
                    drop += step
                moved = box.translated(0, -drop)
                key = (not inside, not (frame.y0 <= moved.y0 and moved.y1 <= frame.y1), step < 0, abs(drop))
                if best is None or key < best[0]:
                    best = (key, dx, ha, drop, box)
        _, dx, ha, drop, box = best
        arrow = {"arrowstyle": "-", "color": "0.6", "lw": 0.5, "shrinkB": 2} if drop else None
        ax.annotate(label, (x, y), xytext=(dx, 3 - drop * to_points), textcoords="offset points", fontsize=fontsize,
                    ha=ha, arrowprops=arrow)
        placed.append(box.translated(0, -drop))


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


CLAIMS_MARK, CLAIMS_END = "<!-- claims:start", "<!-- claims:end -->"
FRONTIER_MARK, FRONTIER_END = "<!-- frontier:start", "<!-- frontier:end -->"


def claims_start(profile: str) -> str:
    """The claims block's first line, naming the outputs it comes from."""
    return f"{CLAIMS_MARK} (generated by `pairlib readme` from outputs/{profile}/claims.csv; do not edit) -->"


def frontier_start(profile: str) -> str:
    return (f"{FRONTIER_MARK} (generated by `pairlib readme` from outputs/{profile}/tables/frontier_summary.csv; "
            "do not edit) -->")


# Pages that show the cpu claims: the README (all of them) and one page per paper (its own), links relative to each.
CLAIM_PAGES = {"README.md": (None, ""), "docs/deformer.md": ("DeFormer", "../"),
               "docs/fastbert.md": ("FastBERT", "../"), "docs/dipair.md": ("DiPair", "../")}


def claims_markdown(claims: pd.DataFrame, link_prefix: str = "", profile: str = "cpu") -> str:
    """The claims table as Markdown: one row per claim, the paper's value beside ours, the verdict, the notebook."""
    if claims.empty:
        return "_no claims yet_"
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| claim | paper | ours | verdict | evidence |", "|---|---|---|---|---|"]
    for r in claims.sort_values("claim_id").itertuples(index=False):
        lines.append(f"| `{r.claim_id}` | {esc(r.paper_value)} | {esc(r.ours)} | **{r.verdict}** | "
                     f"[{r.evidence}]({link_prefix}outputs/{profile}/{r.evidence}.ipynb) |")
    counts = claims.verdict.value_counts()
    summary = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
    return "\n".join(lines) + f"\n\n{len(claims)} claims: {summary}."


def readme_block(out_dir: str | Path, paper: str | None = None, link_prefix: str = "") -> str:
    claims = read_claims(out_dir)
    if paper is not None:
        claims = claims[claims.paper == paper]
    profile = Path(out_dir).name
    return f"{claims_start(profile)}\n{claims_markdown(claims, link_prefix, profile)}\n{CLAIMS_END}"


def replace_block(path: str | Path, mark: str, end: str, block: str) -> bool:
    """Replace the generated block from the line starting with `mark` to the line `end` of a page; True if it
    changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    start = text.find(mark)
    if start < 0 or end not in text[start:]:
        raise ValueError(f"{path} has no generated block; add a line starting with {mark!r} and the line {end!r}")
    new = text[:start] + block + text[start:].split(end, 1)[1]
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def update_readme(readme: str | Path, out_dir: str | Path, paper: str | None = None, link_prefix: str = "") -> bool:
    """Replace a page's claims block with the one generated from `<out_dir>/claims.csv` (one paper's claims, or all);
    True if it changed."""
    return replace_block(readme, CLAIMS_MARK, CLAIMS_END, readme_block(out_dir, paper, link_prefix))


def frontier_block(out_dir: str | Path) -> str:
    """91_frontier's figure and summary for the README: every method's quality and serving cost on one task, with
    the stamp (hardware, commit) of the run that measured them."""
    table_path = Path(out_dir) / "tables" / "frontier_summary.csv"
    if not table_path.exists():
        return f"{frontier_start(Path(out_dir).name)}\n_`91_frontier` has not run at this profile yet._\n{FRONTIER_END}"
    t = pd.read_csv(table_path)
    meta = json.loads(table_path.with_suffix(".meta.json").read_text(encoding="utf-8"))
    big = max(int(c.rsplit("batch", 1)[1]) for c in t.columns if c.startswith("ms_per_pair_batch"))
    yes = lambda b: "yes" if b else ""  # noqa: E731
    lines = [f"![the speed-quality frontier](outputs/{Path(out_dir).name}/figures/frontier.png)", "",
             f"| model | AUC-ROC | GFLOPs / pair | ms / pair, batch 1 | ms / pair, batch {big} | speedup vs teacher, "
             f"batch 1 / {big} | on the frontier, batch 1 / {big} |", "|---|---|---|---|---|---|---|"]
    for r in t.to_dict("records"):
        lines.append(f"| {r['model']} | {r['auc_roc']:.3f} | {r['gflops_per_pair']:.3g} | "
                     f"{r['ms_per_pair_batch1']:.3g} | {r[f'ms_per_pair_batch{big}']:.3g} | "
                     f"{r['speedup_batch1_vs_teacher']:.1f}x / {r[f'speedup_batch{big}_vs_teacher']:.1f}x | "
                     f"{yes(r['frontier_batch1'])} / {yes(r[f'frontier_batch{big}'])} |")
    lines += ["", f"_{stamp_line(meta)}_"]
    return f"{frontier_start(Path(out_dir).name)}\n" + "\n".join(lines) + f"\n{FRONTIER_END}"


def update_claim_pages(out_dir: str | Path, root: str | Path = REPO_ROOT) -> list[str]:
    """Regenerate the claims block of the README and of every paper's page, and the README's frontier; the pages
    that changed. Refused when `out_dir` holds no claims: a mistyped profile must not blank every page."""
    out_dir = Path(out_dir)
    if not (out_dir / "claims.csv").exists():
        with_claims = sorted(p.parent.name for p in (Path(root) / "outputs").glob("*/claims.csv"))
        raise ValueError(f"{shown(out_dir)} holds no claims.csv, so there is nothing to publish; profiles with "
                         f"outputs: {', '.join(with_claims) or 'none'} (run `pairlib run --profile <name>` first)")
    changed = [page for page, (paper, prefix) in CLAIM_PAGES.items()
               if update_readme(Path(root) / page, out_dir, paper, prefix)]
    if replace_block(Path(root) / "README.md", FRONTIER_MARK, FRONTIER_END, frontier_block(out_dir)):
        changed = sorted({*changed, "README.md"})
    return changed
