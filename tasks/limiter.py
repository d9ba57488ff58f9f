"""Client-side rate limiting: per-second and per-minute budgets, in-flight bound, server hints.

Budgets are sliding windows (never more than the limit in any window, however the server
counts), with a small margin for the time a request takes to reach the server. Responses
adjust the budgets: advertised limits lower than ours are adopted, a server that reports less
room than we expect (another run or key using the same project) makes us slow down before
reaching zero, and a 429's `Retry-After` pauses every request and widens the margin.
"""

from __future__ import annotations

import asyncio
import math
from bisect import bisect_right
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime

from kapso_health.tasks.clock import Clock, Sleep, utc_now
from kapso_health.tasks.settings import MAX_IN_FLIGHT, RATE_PER_MINUTE, RATE_PER_SECOND

HEADER_FAMILIES = {
    # window name -> (limit header, remaining header)
    "second": ("x-health-ratelimit-second-limit", "x-health-ratelimit-second-remaining"),
    "minute": ("x-health-ratelimit-minute-limit", "x-health-ratelimit-minute-remaining"),
}
GENERAL_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining")  # per key, per minute
MAX_MARGIN_SECONDS = 0.5


class Window:
    """Our send times in a sliding window of `seconds` (+ margin); at most `limit` inside."""

    HISTORY = 120.0  # seconds of send times kept to compare with late answers

    def __init__(self, limit: float | None, seconds: float, margin: float) -> None:
        self.limit = None if limit is None else max(1, int(limit))
        self.seconds = seconds
        self.margin = margin
        self.sent: list[float] = []
        self.foreign: list[float] = []  # room the server says someone else used

    @property
    def span(self) -> float:
        return self.seconds + self.margin

    def wait(self, now: float) -> float:
        """Seconds until one more request fits (0 when it fits now)."""
        if self.limit is None:
            return 0.0
        start = now - self.span
        used = self.sent[bisect_right(self.sent, start) :]
        if self.foreign:
            used = sorted(used + [t for t in self.foreign if t > start])
        if len(used) < self.limit:
            return 0.0
        return used[len(used) - self.limit] + self.span - now

    def record(self, now: float) -> None:
        if self.limit is None:
            return
        self.sent.append(now)
        if self.sent[0] < now - self.span - self.HISTORY:
            del self.sent[: bisect_right(self.sent, now - self.span - self.HISTORY)]
            self.foreign = [t for t in self.foreign if t > now - self.span]

    def reconcile(
        self, limit: int | None, remaining: int | None, sent_at: float, now: float
    ) -> None:
        """Adopt a lower advertised limit; count room the server says others used.

        The server counted at most our sends from one window before this request up to now,
        so only a `remaining` below that is someone else's use (no false slow-downs).
        """
        if limit is not None and limit > 0 and (self.limit is None or limit < self.limit):
            self.limit = limit
        if remaining is None or self.limit is None:
            return
        ours = len(self.sent) - bisect_right(self.sent, sent_at - self.span)
        missing = self.limit - ours - remaining
        known = sum(1 for t in self.foreign if t > sent_at - self.span)
        self.foreign.extend([now] * (missing - known))


class SharedBudget:
    """A Prefect global rate limit (slot decay) that every run against one project draws on,
    taken `batch` slots at a time: taking one slot per request undershoots badly."""

    def __init__(self, name: str, batch: int) -> None:
        self.name = name
        self.batch = max(1, batch)
        self.credit = 0
        self.batches = 0

    async def take(self) -> None:
        """One request's slot; waits for the limit when this run's batch is used up."""
        if self.credit == 0:
            from prefect.concurrency.asyncio import rate_limit

            await rate_limit(self.name, occupy=self.batch, strict=True)
            self.credit = self.batch
            self.batches += 1
        self.credit -= 1


def shared_limit_for(per_second: float, per_minute: float) -> tuple[int, float]:
    """(slots, decay per second) of a global rate limit that keeps all runs together inside
    both budgets: a burst of `slots` plus a second of decay fits the per-second budget, and
    `slots` plus a minute of decay fits the per-minute one."""
    if per_minute / 60 < per_second:  # the minute budget binds: keep most of it for decay
        slots = max(1, int((per_second - per_minute / 60) * 60 / 59))
    else:  # the second budget binds: half of it as burst, half as decay
        slots = max(1, int(per_second / 2))
    slots = min(slots, int(per_minute))
    decay = min(per_second - slots, (per_minute - slots) / 60)
    return slots, math.floor(decay * 10_000) / 10_000


class RateLimiter:
    """Shared by every request of a run; `async with limiter.slot()` around each request.

    With a `shared` budget, each request also takes a slot of the Prefect global rate limit
    that other runs against the same project use too. Time is read from `clock` (the client's)
    and waited with `sleep`; a test passes a clock that only `sleep` moves.
    """

    def __init__(
        self,
        per_second: float | None = RATE_PER_SECOND,
        per_minute: float | None = RATE_PER_MINUTE,
        max_in_flight: int = MAX_IN_FLIGHT,
        margin_seconds: float = 0.05,
        shared: SharedBudget | None = None,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.shared = shared
        self.clock = clock
        self.sleep = sleep
        self.windows = {
            "second": Window(per_second, 1.0, margin_seconds),
            "minute": Window(per_minute, 60.0, margin_seconds),
        }
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._turn = asyncio.Lock()  # one waiter at a time: first come, first served
        self.paused_until = 0.0
        self.requests = 0
        self.throttled = 0

    def prime(self, sent: Iterable[float]) -> None:
        """Count requests sent before this limiter existed (Unix seconds: an earlier run's
        last minute), so a new run does not burst into budget Kapso still counts as used."""
        for at in sorted(sent):
            for window in self.windows.values():
                window.record(at)

    @asynccontextmanager
    async def slot(self, until: datetime | None = None) -> AsyncIterator[float | None]:
        """Hold an in-flight place and a budget unit; yields the send time for `observe`, or
        None when no unit is free before `until` (nothing was taken: do not send)."""
        async with self._in_flight:
            async with self._turn:
                if self.shared is not None:
                    await self.shared.take()
                ticket = await self._wait_for_budget(until)
            yield ticket

    async def _wait_for_budget(self, until: datetime | None) -> float | None:
        deadline = None if until is None else until.timestamp()
        while True:
            now = self.clock().timestamp()
            wait = max(self.paused_until - now, *(w.wait(now) for w in self.windows.values()))
            if deadline is not None and now + max(wait, 0.0) >= deadline:
                return None
            if wait <= 0:
                break
            await self.sleep(wait)
        for window in self.windows.values():
            window.record(now)
        self.requests += 1
        return now

    def observe(self, sent_at: float, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a response: advertised limits, remaining room, `Retry-After` on 429."""
        at = self.clock()
        now = at.timestamp()
        for name, (limit_header, remaining_header) in HEADER_FAMILIES.items():
            self.windows[name].reconcile(
                _int(headers.get(limit_header)), _int(headers.get(remaining_header)), sent_at, now
            )
        general_limit = _int(headers.get(GENERAL_HEADERS[0]))
        if general_limit is not None:
            self.windows["minute"].reconcile(general_limit, None, sent_at, now)
        if status == 429:
            self.throttled += 1
            wait = retry_after_seconds(headers.get("retry-after"), at)
            self.pause(1.0 if wait is None else wait)
            self._widen_margin()

    def _widen_margin(self) -> None:
        """A 429 means requests reach the server less evenly than we sent them: allow more."""
        for window in self.windows.values():
            window.margin = min(MAX_MARGIN_SECONDS, max(window.margin * 2, 0.05))

    def pause(self, seconds: float) -> None:
        """Hold every request of the run for `seconds` from now."""
        self.paused_until = max(self.paused_until, self.clock().timestamp() + seconds)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` in seconds, from delta-seconds or an HTTP date (counted from `now`)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - (now or utc_now()).timestamp())


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
