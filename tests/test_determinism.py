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
