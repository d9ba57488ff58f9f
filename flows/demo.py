"""The `demo-history` flow: days of collection rounds against the simulator, in seconds."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from prefect import flow, get_run_logger
from pydantic import Field

from kapso_health.flows.steps import (
    Progress,
    Stored,
    poll_and_store,
    resolve_numbers,
    run_summary,
)
from kapso_health.simulator.process import RunningSimulator
from kapso_health.tasks.client import KapsoClient
from kapso_health.tasks.clock import ShiftedClock
from kapso_health.tasks.flatten import polled_id_column
from kapso_health.tasks.last_observations import Known
from kapso_health.tasks.settings import (
    DEMO_DAYS,
    DEMO_EVERY_MINUTES,
    DEMO_STORAGE,
    Flavour,
    connection_settings,
    require_api_key,
)
from kapso_health.tasks.storage import ParquetStore


def demo_days(days: int, today: date) -> list[date]:
    """The `days` whole UTC days before `today`, oldest first."""
    return [today - timedelta(days=n) for n in range(days, 0, -1)]


@flow(name="demo-history")
async def demo_history(
    simulator_url: str,
    storage: str = DEMO_STORAGE,
    days: Annotated[int, Field(ge=1, le=31)] = DEMO_DAYS,
    every_minutes: Annotated[int, Field(ge=1, le=1440)] = DEMO_EVERY_MINUTES,
    flavour: Flavour = "legacy",
    max_in_flight: Annotated[int, Field(ge=1, le=1000)] = 64,
) -> dict[str, Any]:
    """Collect every `every_minutes` of simulated time over the last `days` whole UTC days.

    Moves the simulator's clock and the client's clock together, so each round is stored
    exactly as a scheduled collection at that time would have stored it. Runs unthrottled:
    the simulator behind `simulator_url` must be started without rate limits.
    """
    logger = get_run_logger()
    simulator = RunningSimulator(simulator_url)
    unthrottled = 0
    settings = connection_settings(
        require_api_key(),
        flavour,
        simulator.base_url(flavour),
        unthrottled,
        unthrottled,
        max_in_flight,
    )
    covered = demo_days(days, datetime.now(UTC).date())
    start = datetime.combine(covered[0], datetime.min.time(), UTC)
    step = timedelta(minutes=every_minutes)
    rounds = days * 24 * 60 // every_minutes
    store = ParquetStore(storage)
    store.mark_simulated()
    clock = ShiftedClock()
    started = time.monotonic()

    async def move_clocks(at: datetime) -> None:
        await asyncio.to_thread(simulator.set_clock, at)
        clock.set(at)

    async with KapsoClient(settings, clock=clock) as client:
        await move_clocks(start)
        numbers = await resolve_numbers(client, None, store, f"demo-{start:%Y%m%d}-numbers")
        logger.info(
            "Building %s to %s: %d rounds of %d numbers, one every %d simulated minutes",
            covered[0],
            covered[-1],
            rounds,
            len(numbers.ids),
            every_minutes,
        )
        known = Known.read(store, clock(), "", polled_id_column(flavour))
        stored = Stored()
        async with Progress(rounds * len(numbers.ids)) as progress:
            for index in range(rounds):
                at = start + index * step
                await move_clocks(at)
                await poll_and_store(
                    client,
                    numbers.ids,
                    store,
                    f"demo-{at:%Y%m%dT%H%M}",
                    len(numbers.ids) or 1,
                    progress,
                    known,
                    stored,
                    numbers.known_ids,
                )
        counts, alerts = stored.counts, stored.alerts
        client.raise_for_auth()
        requests, throttled = client.limiter.requests, client.limiter.throttled
    summary = run_summary(
        "demo", counts, alerts, requests, throttled, time.monotonic() - started, storage
    )
    return {**summary, "days": [d.isoformat() for d in covered], "rounds": rounds}
