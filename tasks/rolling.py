"""A rolling run's rounds: plan one round from what is known, poll it, learn from its polls,
until the client's `stop_at` (plain async code; the flow and the fleet-day benchmark share it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta

import pandas as pd

from kapso_health.tasks.client import KapsoClient
from kapso_health.tasks.last_observations import recent_polls, sent_lately
from kapso_health.tasks.plan import (
    CACHE,
    LastSeen,
    next_eligible,
    plan_round,
    seen_after,
    seen_from_polls,
)
from kapso_health.tasks.settings import LAST_REQUEST_SECONDS
from kapso_health.tasks.storage import ParquetStore

# Polls a round (each id once, none before its time, the round's index), stores the polls
# and gives their `polls` rows (the polled id column and `last_observations.SEEN_COLUMNS`).
PollRound = Callable[[dict[str, datetime], int], Awaitable[pd.DataFrame]]


def open_window(client: KapsoClient, started: datetime, window_minutes: float) -> None:
    """Give the client a rolling run's window from `started`: no request outlives its end
    (`deadline`), and the last one starts `LAST_REQUEST_SECONDS` (or the request timeout, if
    shorter) before it (`stop_at`)."""
    client.deadline = started + timedelta(minutes=window_minutes)
    last_start = min(client.settings.timeout_seconds, LAST_REQUEST_SECONDS)
    client.stop_at = max(client.clock(), client.deadline - timedelta(seconds=last_start))


def start_window(
    client: KapsoClient,
    store: ParquetStore,
    key: str,
    project: str,
    run_id: str,
    started: datetime,
    window_minutes: float,
) -> dict[str, LastSeen]:
    """Open a rolling run's window (`open_window`), prime the client's limiter with the
    project's sends of the last minute, and give what the planner knows of each number."""
    now = client.clock()
    open_window(client, started, window_minutes)
    recent = recent_polls(store, now, key, project, exclude_run=run_id)
    client.limiter.prime(sent_lately(recent, now))
    return seen_from_polls(recent, key, now)


async def poll_rounds(
    client: KapsoClient,
    numbers: Sequence[str],
    seen: dict[str, LastSeen],
    key: str,
    cadence: timedelta,
    poll_round: PollRound,
    budget: int | None,
) -> int:
    """Rounds of at most Kapso's cache until `client.stop_at`; how many polls they planned.

    Each round is `plan_round` over the time left (at most `CACHE`), within what is left of
    the run's `budget` (polls; `Capacity.allowed`, however much faster the limiter lets a
    burst through); when no number may be polled yet, the run waits for the first that may,
    or ends when that is after `stop_at`, or when the time left holds no budget unit. A
    refused key ends it after the round that met it.
    """
    if client.stop_at is None:
        raise ValueError("a rolling run needs the client's stop_at")
    per_minute = client.settings.rate_per_minute
    planned_polls, index = 0, 0
    while (now := client.clock()) < client.stop_at and client.auth_failure is None:
        left = min(CACHE, client.stop_at - now).total_seconds() / 60
        if per_minute is not None and left * per_minute < 1:
            break  # not one budget unit before the last start
        limit = None if budget is None else budget - planned_polls
        planned = dict(plan_round(numbers, seen, now, per_minute, left, cadence, limit=limit))
        if not planned:
            wake = next_eligible(numbers, seen, now)
            if limit == 0 or wake is None or wake >= client.stop_at:
                break
            await asyncio.sleep(max((wake - now).total_seconds(), 0.001))
            continue
        polls = await poll_round(planned, index)
        planned_polls += len(planned)
        index += 1
        if polls.empty:  # the window closed before any of them
            break
        seen = seen_after(seen, polls, key, client.clock())
    return planned_polls
