"""Same seed, same numbers: two processes (torch seeds its default generator differently in each) train the same
recipes and must end with identical weights and metrics."""
import json
import subprocess
import sys
from pathlib import Path


def _run(out: Path) -> dict:
    done = subprocess.run([sys.executable, str(Path(__file__).parent / "same_seed_run.py"), str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_processes_with_one_recipe_train_identical_models(tmp_path):
    first, second = _run(tmp_path / "a"), _run(tmp_path / "b")
    assert first == second


def test_a_notebook_run_twice_at_one_profile_gives_identical_tables(tmp_path):
    """40_dipair_teacher at smoke size, twice, each in its own output folder (so nothing is reused): every table is
    the same but for the columns that time something."""
    import pandas as pd

    from pairlib.study import run

    for name in ("a", "b"):
        run.run("smoke", only=["40_dipair_teacher"], output_root=tmp_path / name, progress_bar=False)
    tables = sorted(p.name for p in (tmp_path / "a" / "smoke" / "tables").glob("*.csv"))
    assert tables
    for t in tables:
        a, b = (pd.read_csv(tmp_path / n / "smoke" / "tables" / t) for n in ("a", "b"))
        timed = [c for c in a.columns if any(w in c for w in ("seconds", "ms", "latency", "per_s"))]
        pd.testing.assert_frame_equal(a.drop(columns=timed), b.drop(columns=timed), check_exact=True)
