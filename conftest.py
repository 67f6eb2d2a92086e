"""How `make test` shares 2 cores between two pytest-xdist workers (`-n 2 --dist loadfile`).

Most of a smoke-sized test is single-threaded Python (imports, data building, tokenising), so two workers use both
cores where one left half of them idle. Three rules keep that safe:
- each worker's torch gets its share of the cores, not all of them (two processes spinning on both cores each run
  several times slower than one);
- each worker writes under its own `$PAIRLIB_OUTPUTS/<worker>`, so that two workers never train the same model
  folder at once;
- a notebook's cells run in one worker (they share a kernel), and notebooks that reuse another's trained models run
  in that notebook's worker after it, in file order (`NOTEBOOK_CHAINS`, `pytest_xdist_make_scheduler`).
A plain `pytest` (no `-n`) is unaffected.
"""
import os
from pathlib import Path

import pytest

WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if WORKER:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    if os.environ.get("PAIRLIB_OUTPUTS"):
        os.environ["PAIRLIB_OUTPUTS"] = str(Path(os.environ["PAIRLIB_OUTPUTS"]) / WORKER)

# Notebooks that reuse models an earlier notebook trained (same recipe, same artifact folder): one chain each, so
# that the reuse happens at smoke as it does in `pairlib run`. A notebook not named here is a chain of its own.
NOTEBOOK_CHAINS = {
    "deformer-squad": ("20_", "23_", "24_", "25_"),
    "fastbert-english": ("30_", "31_", "32_", "33_"),
    "zh-backbone": ("34_", "35_"),
    "dipair-and-report": ("40_", "41_", "42_", "43_", "45_", "90_", "91_", "94_"),
}


def notebook_chain(name: str) -> str:
    return next((chain for chain, prefixes in NOTEBOOK_CHAINS.items() if name.startswith(prefixes)), name)


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """With `--dist loadfile`: a test file's tests run together (its module fixtures are built once), and so do a
    notebook chain's cells, in file order. (xdist's own `loadgroup` marks do not reach pytest 9's node ids.)"""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ChainScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::")[0]
            return f"notebooks: {notebook_chain(Path(path).stem)}" if path.endswith(".ipynb") else path

    return ChainScheduling(config, log)
