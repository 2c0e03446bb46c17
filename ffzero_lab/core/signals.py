"""Signals a lab process must survive: Ctrl-C (SIGINT), ``kill`` or a scheduler (SIGTERM), a
dropped ssh connection (SIGHUP).

While a command holds instruments, :func:`interruptible` turns each of them into an
:class:`Interrupted` exception raised where the program is, so the ``finally`` blocks that put
the heaters in their safe state run; :func:`deferred` holds them off while that safe state is
being written, so a second signal cannot cut it short. SIGKILL cannot be caught: nothing runs
(see docs/lab-sessions.md for what protects a rig then).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

#: The signals that end a command holding instruments (those the platform has).
SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """The process was asked to stop by a signal; ``signal_name`` says which."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(f"stopped by {signal_name}")
        self.signal_name = signal_name


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted` inside the block (main thread only;
    elsewhere the block runs unchanged). The previous handlers come back on exit."""
    if not _main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def deferred() -> Iterator[list[str]]:
    """Inside the block the three signals are noted, not acted on (the list yielded collects
    their names); on exit the previous handlers come back. For the safe state on the way out: the
    process is ending already, a second Ctrl-C must not stop the heaters from being made safe."""
    if not _main_thread():
        yield []
        return
    arrived: list[str] = []

    def note(signum: int, _frame: FrameType | None) -> None:
        arrived.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, note) for sig in SIGNALS}
    try:
        yield arrived
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
