"""Waits that end when they should: ``time.sleep`` overshoots by 50-150 us on Linux, which at
settle and reply times of 0.5-2 ms is 5-20 % of the wait."""

from __future__ import annotations

import time

#: The last part of a wait spent polling the clock instead of sleeping, s.
SPIN_S = 2e-4


def wait_s(seconds: float) -> None:
    """Return ``seconds`` (s) after the call, to within a few microseconds: sleep for all but
    the last :data:`SPIN_S`, then poll ``time.perf_counter``."""
    deadline = time.perf_counter() + seconds
    if seconds > SPIN_S:
        time.sleep(seconds - SPIN_S)
    while time.perf_counter() < deadline:
        pass
