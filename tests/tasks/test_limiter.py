"""The limiter's budgets, its pause, and what it learns from the server's headers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.utils import format_datetime

import pytest

from kapso_health.tasks.limiter import RateLimiter, Window

pytestmark = pytest.mark.anyio


async def take(limiter: RateLimiter, count: int) -> list[float]:
    async def one() -> float:
        async with limiter.slot() as sent_at:
            return sent_at

    return await asyncio.gather(*(one() for _ in range(count)))


def faked(clock, **budgets: float | None) -> RateLimiter:
    """A limiter on the fake clock: its waits move the clock instead of taking time."""
    return RateLimiter(**budgets, clock=clock, sleep=clock.sleep)


@pytest.mark.parametrize("margin", [0.0, 0.25])
async def test_per_second_budget_holds_in_every_sliding_window(clock, margin: float) -> None:
    limiter = faked(clock, per_second=10, per_minute=None, max_in_flight=50, margin_seconds=margin)
    start = clock.seconds()
    sends = await take(limiter, 25)
    # ten at once, then ten as soon as the first ten leave the window: no faster, no slower
    assert sends == [start + (i // 10) * (1 + margin) for i in range(25)]
    assert clock.slept == [1 + margin, 1 + margin]
    assert limiter.requests == 25


async def test_minute_budget_holds_the_sixteenth_request_until_the_first_ages_out(clock) -> None:
    limiter = faked(clock, per_second=None, per_minute=15, margin_seconds=0)
    start = clock.seconds()
    sends = await take(limiter, 16)
    assert sends == [start] * 15 + [start + 60]
    assert clock.slept == [60.0]


async def test_a_primed_limiter_counts_an_earlier_runs_last_sends(clock) -> None:
    limiter = faked(clock, per_second=None, per_minute=15, margin_seconds=0)
    start = clock.seconds()
    limiter.prime([start - 50.0] * 10 + [start - 70.0] * 5)  # ten still in the minute
    sends = await take(limiter, 6)
    assert sends == [start] * 5 + [start + 10]  # the sixth waits for the ten to age out
    assert limiter.requests == 6  # primed sends are not this run's requests


async def test_no_budget_unit_is_granted_at_or_after_the_deadline(clock) -> None:
    limiter = faked(clock, per_second=None, per_minute=15, margin_seconds=0)
    until = clock() + timedelta(seconds=59)

    async def one() -> float | None:
        async with limiter.slot(until=until) as sent_at:
            return sent_at

    sends = await asyncio.gather(*(one() for _ in range(20)))
    assert sends == [clock.seconds()] * 15 + [None] * 5  # the 16th would leave at +60 s
    assert clock.slept == [] and limiter.requests == 15  # refused without waiting for it


def test_minute_window_spaces_the_sixteenth_request() -> None:
    window = Window(limit=15, seconds=60.0, margin=0.0)
    for i in range(15):
        window.record(100.0 + i * 0.1)
    assert window.wait(101.5) == pytest.approx(60.0 - 1.5)
    assert window.wait(160.0) == 0.0


async def test_in_flight_is_bounded() -> None:
    limiter = RateLimiter(per_second=None, per_minute=None, max_in_flight=3)
    running = peak = 0

    async def one() -> None:
        nonlocal running, peak
        async with limiter.slot():
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

    await asyncio.gather(*(one() for _ in range(20)))
    assert peak == 3


async def test_retry_after_pauses_every_request(clock) -> None:
    limiter = faked(clock, per_second=None, per_minute=None)
    start = clock.seconds()
    limiter.observe(start, 429, {"retry-after": "0.25"})
    assert await take(limiter, 2) == [start + 0.25, start + 0.25]
    assert clock.slept == [0.25]  # one wait, shared by both requests
    assert limiter.throttled == 1


async def test_an_http_date_retry_after_counts_from_the_limiters_clock(clock) -> None:
    limiter = faked(clock, per_second=None, per_minute=None)
    start = clock.seconds()
    later = format_datetime(clock() + timedelta(seconds=30), usegmt=True)
    limiter.observe(start, 429, {"retry-after": later})
    assert limiter.paused_until == start + 30
    assert await take(limiter, 1) == [start + 30]


async def test_a_429_without_retry_after_pauses_for_a_second(clock) -> None:
    limiter = faked(clock, per_second=None, per_minute=None)
    start = clock.seconds()
    limiter.observe(start, 429, {})
    assert await take(limiter, 1) == [start + 1]


def test_lower_advertised_limits_are_adopted_higher_ones_ignored(clock) -> None:
    limiter = faked(clock, per_second=5, per_minute=60)
    now = clock.seconds()
    limiter.observe(
        now, 200, {"x-health-ratelimit-second-limit": "3", "x-health-ratelimit-minute-limit": "600"}
    )
    assert (limiter.windows["second"].limit, limiter.windows["minute"].limit) == (3, 60)
    limiter.observe(now, 200, {"x-ratelimit-limit": "40"})
    assert limiter.windows["minute"].limit == 40


def test_room_used_by_someone_else_slows_us_down_before_zero() -> None:
    window = Window(limit=10, seconds=1.0, margin=0.0)
    window.record(50.0)
    window.reconcile(10, 9, sent_at=50.0, now=50.2)  # the server agrees with us
    assert window.wait(50.2) == 0.0
    window.reconcile(10, 0, sent_at=50.0, now=50.2)  # someone else used the other nine
    assert window.wait(50.2) == pytest.approx(0.8)  # until our own send at 50.0 ages out
    window.reconcile(10, 0, sent_at=50.0, now=50.3)  # the same news again adds nothing
    assert len(window.foreign) == 9
    assert window.wait(51.3) == 0.0


def test_reordered_answers_of_our_own_burst_are_not_foreign() -> None:
    window = Window(limit=5, seconds=1.0, margin=0.0)
    for _ in range(5):
        window.record(10.0)
    # the first request sent arrived last: the server says 0 left, all five were ours
    window.reconcile(5, 0, sent_at=10.0, now=10.3)
    assert window.foreign == []


def test_each_429_widens_the_margin_up_to_a_cap(clock) -> None:
    limiter = faked(clock, per_second=5, per_minute=60, margin_seconds=0.05)
    for _ in range(10):
        limiter.observe(clock.seconds(), 429, {"retry-after": "0"})
    assert limiter.windows["second"].margin == 0.5
    assert limiter.windows["second"].span == 1.5
