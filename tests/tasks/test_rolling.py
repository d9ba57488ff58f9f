"""Rolling rounds against the simulator, on simulated time (the event loop's clock jumps over
waits): a run spends its window's budget, never polls inside Kapso's cache, ends inside its
window, and polls watched numbers more often than the others when the budget is short."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from kapso_health.simulator import virtual_time
from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.server import Project, Simulator, SimulatorConfig, serving
from kapso_health.tasks.client import KapsoClient
from kapso_health.tasks.fetch import poll_numbers
from kapso_health.tasks.flatten import flatten_polls
from kapso_health.tasks.last_observations import SEEN_COLUMNS
from kapso_health.tasks.plan import CACHE, WATCH_INTERVAL, LastSeen, capacity, troubled
from kapso_health.tasks.rolling import open_window, poll_rounds
from kapso_health.tasks.schemas import to_pandas
from kapso_health.tasks.settings import ApiKey, connection_settings

START = datetime(2026, 3, 2, 9, tzinfo=UTC)
KEY = "phone_number_id"
WINDOW = 14.75


@dataclass
class Run:
    polled: dict[str, list[datetime]]  # each number's poll times
    trouble: dict[str, list[bool]]  # and whether each poll showed it in trouble
    client: KapsoClient
    served: dict  # the simulator's counts
    ended: datetime


def rolling_run(numbers: int, seen: dict[str, LastSeen] | None = None, seed: int = 5) -> Run:
    """One rolling run of WINDOW minutes over the simulator's listed numbers at Kapso's
    limits."""

    async def run() -> Run:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, virtual_time.VirtualTimeLoop)
        project = Project("p", ("key",), numbers=numbers, seed=seed)
        simulator = Simulator(
            SimulatorConfig(projects=[project]), clock=loop.epoch, monotonic=loop.time
        )
        polled: dict[str, list[datetime]] = defaultdict(list)
        trouble: dict[str, list[bool]] = defaultdict(list)
        async with serving(simulator) as url:
            settings = connection_settings(ApiKey("key"), "platform", f"{url}/platform/v1")
            async with KapsoClient(settings, clock=loop.at) as client:
                ids = [item["id"] for item in await client.list_numbers()]
                open_window(client, loop.at(), WINDOW)

                async def poll_round(planned: dict[str, datetime], index: int) -> pd.DataFrame:
                    results = await poll_numbers(client, list(planned), not_before=planned)
                    for result in results:
                        polled[result.number_id].append(result.polled_at)
                    flat = flatten_polls(results, "run", {}, "platform", project="p")
                    rows = to_pandas(flat.polls.select([KEY, *SEEN_COLUMNS]))
                    for number, flag in zip(rows[KEY], troubled(rows), strict=True):
                        trouble[number].append(bool(flag))
                    return rows

                cadence = timedelta(minutes=15)
                budget = capacity(len(ids), 60, WINDOW, 15).allowed
                await poll_rounds(client, ids, dict(seen or {}), KEY, cadence, poll_round, budget)
            return Run(
                dict(polled), dict(trouble), client, dict(simulator.projects[0].stats), loop.at()
            )

    return virtual_time.run(run(), START)


def test_a_small_fleet_is_polled_as_often_as_kapsos_cache_allows_inside_the_window() -> None:
    run = rolling_run(12)
    polled, client, served, ended = run.polled, run.client, run.served, run.ended
    listed = {n.phone_number_id for n in Fleet(12, 5).numbers if n.profile != "deleted"}
    assert set(polled) == listed
    assert client.deadline is not None and client.stop_at is not None
    assert ended <= client.deadline  # the run ends inside its window
    assert max(max(times) for times in polled.values()) < client.stop_at
    gaps = [b - a for times in polled.values() for a, b in itertools.pairwise(sorted(times))]
    assert min(gaps) >= CACHE  # never inside Kapso's cache
    assert min(len(times) for times in polled.values()) >= 4  # 14.4 minutes of 3-minute turns
    assert served["health_requests"] == sum(len(t) for t in polled.values())  # one row each
    assert served.get("status_429", 0) == 0


def test_watched_numbers_are_polled_every_few_minutes_while_the_others_wait_their_turn() -> None:
    fleet = Fleet(1200, 9)
    at = START.timestamp()
    watched = [
        n.phone_number_id
        for n in fleet.numbers
        if n.profile in ("blocked", "disconnected") and fleet._state(n, at) == n.profile
    ][:8]
    before = START - timedelta(minutes=30)
    # every number polled 30 minutes ago, in trouble as usual or fine as usual, but for the
    # watched ones: usually fine, now in trouble (news)
    usual = {n.phone_number_id: fleet._state(n, at) != "healthy" for n in fleet.numbers}
    seen = {
        number: LastSeen(before, before, trouble, None, trouble and number not in watched)
        for number, trouble in usual.items()
    }
    run = rolling_run(1200, seen, seed=9)
    counts = Counter({number: len(times) for number, times in run.polled.items()})
    assert len(watched) == 8
    for number in watched:
        times = sorted(run.polled[number])
        assert len(times) >= 3  # at the start, and again every WATCH_INTERVAL
        assert all(b - a >= WATCH_INTERVAL for a, b in itertools.pairwise(times))
    as_usual = [n for n in counts if n not in watched and set(run.trouble[n]) == {usual[n]}]
    assert len(as_usual) > len(counts) / 2
    assert max(counts[n] for n in as_usual) == 1  # the others wait their turn
    assert run.client.stop_at is not None
    budget = int((run.client.stop_at - START).total_seconds())  # one a second at 60/min
    assert sum(counts.values()) <= budget
    assert run.served.get("status_429", 0) == 0
