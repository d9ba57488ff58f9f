"""Fixtures of the task tests: a clock that only moves when the limiter sleeps."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import pytest


class FakeClock:
    """A `Clock` standing still until its `sleep` moves it by exactly the time asked for (to
    the microsecond, never less), so waits are numbers a test can assert, not wall time."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def seconds(self) -> float:
        """What the limiter reads: `now` as Unix seconds."""
        return self.now.timestamp()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(microseconds=max(1, math.ceil(seconds * 1_000_000)))
        await asyncio.sleep(0)  # let the other tasks run, as a real sleep would


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 1, 15, 10, tzinfo=UTC))
