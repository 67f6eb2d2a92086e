"""Progress bars, made in one place so that a run can turn every bar off at once: `pairlib run` starts its kernels
with `TQDM_DISABLE=1` (tqdm's own setting), so that no bar lands in an executed notebook; the runner's console shows
each notebook's cells instead, and the training loop prints one line per epoch."""
from __future__ import annotations

from typing import Any, Iterable

from tqdm import tqdm


def bar(iterable: Iterable | None = None, *, show: bool = True, **settings: Any) -> tqdm:
    """A tqdm bar redrawn every 30 s at most; never shown where `show` is False, and where it is, tqdm's settings
    from the environment apply (an explicit `disable` would override them)."""
    settings.setdefault("mininterval", 30)
    if not show:
        settings["disable"] = True
    return tqdm(iterable, **settings)
