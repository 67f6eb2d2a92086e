"""SIGTERM, the signal `kill <pid>` sends (how a background `nohup` job is stopped), turned into an interrupt: the
command then ends as it does on Ctrl-C (its record written, the processes it started stopped) instead of dying at
once and leaving its state at `running` or a local Ray behind."""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator

STATUS = {"SIGTERM": 143, "SIGINT": 130}  # the shell's exit status for a command ended by each signal


class Terminated(KeyboardInterrupt):
    """Raised where the program was when SIGTERM arrived; a KeyboardInterrupt, so every Ctrl-C path handles it."""


def _raise(signum, frame) -> None:
    raise Terminated()


_held: list[bool] = []  # one entry per `sigterm_as_interrupt` block open


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises `Terminated` inside the block; the previous handler is back after it."""
    previous = signal.signal(signal.SIGTERM, _raise)
    _held.append(True)
    try:
        yield
    finally:
        _held.pop()
        signal.signal(signal.SIGTERM, previous)


def exit_status(stop: BaseException) -> int:
    """143 for SIGTERM, 130 for Ctrl-C: what a shell reports, so that scripts around a command can tell them apart."""
    return STATUS["SIGTERM"] if isinstance(stop, Terminated) else STATUS["SIGINT"]


def reclaim_sigterm() -> None:
    """Inside `sigterm_as_interrupt`, put its handler back after a library replaced it: `ray.init` sets its own
    Python handler and then its core worker a C-level one, which logs a stack and aborts the driver, leaving the
    local Ray's processes running. Call it right after such a library starts, in the main thread."""
    import threading
    if _held and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise)
