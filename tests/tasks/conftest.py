"""Fixtures of the task tests: a clock that only moves when the limiter sleeps, and polls rows."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from kapso_health.tasks.flatten import flatten_polls
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.vocabulary import Outcome


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


@pytest.fixture
def polls_for() -> Callable[..., pa.Table]:
    """`polls_for(times, run_id="run-1", status="healthy")`: a polls table with one ok poll of
    number `n{i}` at each of `times`."""

    def polls(times: list[datetime], run_id: str = "run-1", status: str = "healthy") -> pa.Table:
        results = [
            PollResult(
                f"n{i}",
                at,
                Outcome.OK,
                200,
                1,
                5.0,
                {"status": status, "timestamp": at.isoformat(), "retry_after": None},
            )
            for i, at in enumerate(times)
        ]
        return flatten_polls(results, run_id).polls

    return polls
