"""Which numbers a collection run polls, in which order: capacity and the rolling plan.

Pure functions (no I/O, no Prefect): the flows read the history, call these, and log the result.

Kapso allows a project a fixed number of health checks per minute, so a fleet larger than one
window's budget is polled a slice per run. The plan gives every number a due time (its last poll
plus a target interval: short for numbers in trouble, the fleet's cadence for healthy ones),
puts numbers never polled first, then the most overdue, and cuts the list to what the window's
budget allows. Numbers a run does not reach become the most overdue, so they lead the next run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kapso_health.tasks.vocabulary import (
    ERROR,
    TROUBLED_MESSAGING,
    TROUBLED_PHONE_STATUSES,
    TROUBLED_STATUSES,
    WORST_RATING,
    Outcome,
)

# Kapso repeats a number's result for 3 minutes: polling sooner buys the same body again.
CACHE = timedelta(minutes=3)
# Target interval of a number in trouble: the scheduled deployment's interval, so a number in
# trouble is polled every run while the budget allows. A shorter target only helps when runs come
# more often than this. When the budget cannot cover the fleet, everyone falls behind by the same
# amount (most overdue first), and a shorter target takes budget from healthy numbers: in the
# fleet-day benchmark 6 min gained under half a minute on recoveries and cost coverage (a number
# whose interval swings between its trouble and healthy spells outruns a gap based on its median).
TROUBLE_INTERVAL = timedelta(minutes=15)
# A number whose state changed this recently counts as in trouble: changes come in bursts.
RECENT_CHANGE = timedelta(hours=1)


@dataclass(frozen=True)
class Capacity:
    """What the budget allows a project: per run and per number."""

    numbers: int
    per_minute: float | None  # the health budget in force; None = no limit
    window_minutes: float | None  # the run's window; None = a full sweep
    interval_minutes: float | None  # the schedule's interval, when there is one
    allowed: int  # numbers one run may poll
    cadence_minutes: float | None  # how often each number is polled; None = never
    covers_fleet: bool  # every number is polled every run

    def line(self) -> str:
        """One line for the log, the summary artifact and `kapso-health plan`."""
        fleet = f"{self.numbers:,} numbers"
        if self.per_minute is None:
            head = f"{fleet}, no rate limit"
        else:
            head = f"{fleet} at {self.per_minute:g}/min"
        head += f": each number {_every(self.cadence_minutes)}"
        if self.window_minutes is None:
            return f"{head}; no window: one full sweep per run"
        tail = f"; a {self.window_minutes:g}-min window allows {self.allowed:,} per run"
        if self.allowed == 0:
            tail += " (nothing will be polled)"
        return head + tail

    def warning(self) -> str | None:
        """None when the fleet is covered every run; else what the schedule cannot keep."""
        if self.covers_fleet:
            return None
        every = (
            f"every {self.interval_minutes:g} min"
            if self.interval_minutes is not None
            else "in one run"
        )
        return (
            f"{self.numbers:,} numbers cannot be covered {every} at this budget "
            f"({self.line()}); each number is polled {_every(self.cadence_minutes)} instead"
        )


def _every(cadence: float | None) -> str:
    if cadence is None:
        return "never"
    if cadence == 0:
        return "every run"
    return f"every ~{math.ceil(cadence - 1e-9):,} min"


def capacity(
    numbers: int,
    per_minute: float | None,
    window_minutes: float | None,
    interval_minutes: float | None,
) -> Capacity:
    """The capacity of `numbers` numbers at `per_minute` health checks a minute.

    A window allows `floor(window x per_minute)` polls (all numbers without a window or a
    limit). The cadence is `numbers / per_minute` minutes, never less than the schedule's
    interval (a number is polled at most once a run) and, with a window and an interval, the
    interval times the runs it takes to go round the fleet (`numbers / allowed`): the window's
    idle rest of each interval is budget the fleet does not get.
    """
    if numbers < 0:
        raise ValueError("numbers must not be negative")
    if per_minute is not None and per_minute <= 0:
        raise ValueError("per_minute must be positive (or None for no limit)")
    if window_minutes is not None and window_minutes < 0:
        raise ValueError("window_minutes must not be negative")
    if window_minutes is None or per_minute is None:
        allowed = numbers
    else:
        allowed = min(numbers, math.floor(window_minutes * per_minute + 1e-9))
    cadence: float | None
    if numbers == 0:
        cadence = 0.0
    elif allowed == 0:
        cadence = None
    elif per_minute is None:
        cadence = interval_minutes or 0.0
    else:
        cadence = numbers / per_minute
        if interval_minutes is not None:
            cadence = max(cadence, interval_minutes)
            if window_minutes is not None:
                cadence = max(cadence, interval_minutes * numbers / allowed)
    sweep_fits = (
        per_minute is None
        or interval_minutes is None
        or window_minutes is not None
        or numbers / per_minute <= interval_minutes
    )
    return Capacity(
        numbers=numbers,
        per_minute=per_minute,
        window_minutes=window_minutes,
        interval_minutes=interval_minutes,
        allowed=allowed,
        cadence_minutes=cadence,
        covers_fleet=allowed >= numbers and sweep_fits,
    )


@dataclass(frozen=True)
class LastSeen:
    """What the history says about one number."""

    polled_at: datetime | None  # the last poll, whatever its outcome
    observed_at: datetime | None  # checked_at of the last `ok` observation
    in_trouble: bool = False
    retry_after: datetime | None = None  # Kapso backs the number off until then


def in_trouble(row: Mapping[str, Any], now: datetime, changed_at: datetime | None) -> bool:
    """Whether a number's last poll (a `polls` row) puts it in trouble.

    Trouble: the poll failed (any outcome but `ok`, a skip for Kapso's backoff included), an
    `error` body, status unhealthy or degraded, messaging LIMITED or BLOCKED, rating RED, a
    troubled phone status, or a change of state less than an hour before `now`.
    """
    outcome = row.get("outcome", Outcome.OK)
    if outcome != Outcome.OK:
        return True
    status = row.get("status")
    if status == ERROR or status in TROUBLED_STATUSES or row.get("error"):
        return True
    if row.get("can_send_message") in TROUBLED_MESSAGING:
        return True
    if row.get("quality_rating") == WORST_RATING:
        return True
    phone_status = row.get("phone_status")
    if isinstance(phone_status, str) and phone_status.upper() in TROUBLED_PHONE_STATUSES:
        return True
    return changed_at is not None and now - changed_at < RECENT_CHANGE


def plan_polls(
    numbers: Sequence[str],
    last: Mapping[str, LastSeen],
    now: datetime,
    per_minute: float | None,
    window_minutes: float | None,
    cadence: timedelta,
    trouble_interval: timedelta = TROUBLE_INTERVAL,
    cache: timedelta = CACHE,
) -> list[str]:
    """The ids to poll this run, in order, cut to the window's budget.

    Order: numbers never polled first (in the order given), then by due time (last poll plus
    `trouble_interval` for numbers in trouble, `cadence` for the others, never before
    Kapso's `retry_after`), ties in the order given. When the window's budget covers every
    number (or there is no window or no limit), every number is in the plan, as a full sweep.
    Otherwise budget is scarce and a number polled less than `cache` ago, or still backed off
    by Kapso, is left out even if budget remains: its poll would only return the cached body.
    Numbers not yet due fill the rest of the budget, most nearly due first.
    """
    allowed = capacity(len(numbers), per_minute, window_minutes, None).allowed
    trouble_interval = max(trouble_interval, cache)
    cadence = max(cadence, cache)
    scarce = allowed < len(numbers)
    keyed: list[tuple[int, datetime | None, int, str]] = []
    for position, number_id in enumerate(numbers):
        seen = last.get(number_id)
        polled = None if seen is None else (seen.polled_at or seen.observed_at)
        if seen is None or polled is None:
            keyed.append((0, None, position, number_id))
            continue
        if scarce and (
            now - polled < cache or (seen.retry_after is not None and seen.retry_after > now)
        ):
            continue
        due = polled + (trouble_interval if seen.in_trouble else cadence)
        if seen.retry_after is not None:
            due = max(due, seen.retry_after)
        keyed.append((1, due, position, number_id))
    new = [key for key in keyed if key[0] == 0]
    old = sorted((key for key in keyed if key[0] == 1), key=lambda key: (key[1], key[2]))
    return [key[3] for key in (new + old)[:allowed]]
