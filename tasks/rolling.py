"""A rolling run's rounds: plan one round from what is known, poll it, learn from its polls,
until the client's `stop_at` (plain async code; the flow and the fleet-day benchmark share it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import pandas as pd

from kapso_health.tasks.client import KapsoClient
from kapso_health.tasks.plan import CACHE, LastSeen, next_eligible, plan_polls, seen_after

# Polls a round's ids (each once), stores them and gives their `polls` rows (the polled id
# column and `last_observations.SEEN_COLUMNS` at least).
PollRound = Callable[[list[str], int], Awaitable[pd.DataFrame]]


async def poll_rounds(
    client: KapsoClient,
    numbers: Sequence[str],
    seen: dict[str, LastSeen],
    key: str,
    cadence: timedelta,
    poll_round: PollRound,
) -> int:
    """Rounds of at most Kapso's cache until `client.stop_at`; how many polls they planned.

    Each round is `plan_polls` over the time left (at most `CACHE`); when no number may be
    polled yet, the run waits for the first that may, or ends when that is after `stop_at`.
    A refused key ends it after the round that met it.
    """
    if client.stop_at is None:
        raise ValueError("a rolling run needs the client's stop_at")
    per_minute = client.settings.rate_per_minute
    planned_polls, index = 0, 0
    while (now := client.clock()) < client.stop_at and client.auth_failure is None:
        left = min(CACHE, client.stop_at - now)
        planned = plan_polls(numbers, seen, now, per_minute, left.total_seconds() / 60, cadence)
        if not planned:
            wake = next_eligible(numbers, seen, now)
            if wake is None or wake >= client.stop_at:
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
