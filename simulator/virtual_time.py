"""An asyncio event loop on simulated time, for the fleet-day benchmark and the tests.

Its clock (`loop.time()`) starts where it is told and moves only when the loop has nothing to
do: then it jumps to the next timer instead of waiting for it. Everything that waits through
the loop (asyncio.sleep, timeouts, the limiter, the simulator's latency and rate windows) runs
on that clock, so a simulated day passes in the minutes its work takes. Real sockets still work:
the simulator and the client talk HTTP over loopback in the same thread, and a write is
readable by its peer before the loop looks again, so a jump never skips a pending answer
(the simulator's latency is a timer like any other).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

T = TypeVar("T")
STALL_SECONDS = 5.0  # real seconds to wait for I/O when no timer is left: then give up
MIN_JUMP_SECONDS = 1e-6  # datetimes have microseconds: a shorter jump would not move them


class _JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc, valid-type]
    loop: VirtualTimeLoop

    def select(self, timeout: float | None = None) -> list:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer: only a peer's I/O can wake the loop
            events = super().select(STALL_SECONDS)
            if not events:
                raise RuntimeError("virtual time stalled: nothing scheduled and no I/O")
            return events
        self.loop.now += max(timeout, MIN_JUMP_SECONDS)  # a clock that reads datetimes moves
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """`asyncio.SelectorEventLoop` whose `time()` is simulated: seconds since it started
    (small numbers keep float steps fine; `at` turns them into dates)."""

    def __init__(self, origin: datetime) -> None:
        self.origin = origin
        self.now = 0.0
        selector = _JumpingSelector()
        selector.loop = self
        super().__init__(selector)

    def time(self) -> float:
        return self.now

    def at(self) -> datetime:
        """The simulated time as a date (a `Clock` for the client)."""
        return self.origin + timedelta(seconds=self.now)

    def epoch(self) -> float:
        """The simulated time in epoch seconds (the simulator's clock)."""
        return self.origin.timestamp() + self.now


def run(coroutine: Coroutine[Any, Any, T], origin: datetime) -> T:
    """Run `coroutine` to its end on a fresh loop whose clock starts at `origin`."""
    loop = VirtualTimeLoop(origin)
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()
