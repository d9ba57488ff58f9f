"""Where "now" comes from: real UTC time, or a shifted clock for simulated histories."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[object]]  # asyncio.sleep, or a test's that moves its clock


def utc_now() -> datetime:
    return datetime.now(UTC)


class ShiftedClock:
    """Real UTC time moved by `offset`; the demo sets it so polls carry simulated times."""

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def set(self, at: datetime) -> None:
        """From now on, read `at` plus the real time that has passed since."""
        self.offset = at - datetime.now(UTC)
