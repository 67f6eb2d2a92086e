"""How `make test` shares 2 cores between two pytest-xdist workers (`-n 2 --dist loadgroup`).

Most of a smoke-sized test is single-threaded Python (imports, data building, tokenising), so two workers use both
cores where one left half of them idle. Three rules keep that safe:
- each worker's torch gets its share of the cores, not all of them (two processes spinning on both cores each run
  several times slower than one);
- each worker writes under its own `$PAIRLIB_OUTPUTS/<worker>`, so that two workers never train the same model
  folder at once;
- a notebook's cells run in one worker (they share a kernel), and notebooks that reuse another's trained models run
  in that notebook's worker after it, in file order (`NOTEBOOK_CHAINS`).
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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.path))
        if path.suffix == ".ipynb":
            item.add_marker(pytest.mark.xdist_group(notebook_chain(path.stem)))
