"""Reading Prefect events back in tests: the server stores them a moment after they happen."""

from __future__ import annotations

import time
from datetime import datetime

import anyio
from prefect.client.orchestration import PrefectClient
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter


async def stored_events(
    client: PrefectClient,
    prefix: str | None = None,
    name: str | None = None,
    at_least: int = 1,
    timeout: float = 30.0,
    since: datetime | None = None,
) -> list:
    """Events by name prefix or exact name, once at least `at_least` are stored (or on timeout)."""
    names = EventNameFilter(prefix=[prefix] if prefix else None, name=[name] if name else None)
    occurred = {"occurred": EventOccurredFilter(since=since)} if since else {}
    deadline = time.monotonic() + timeout
    while True:
        page = await client.read_events(EventFilter(event=names, **occurred), limit=50)
        events = list(page.events)
        while page.next_page is not None:
            page = await client.read_events_page(page.next_page)
            events += page.events
        if len(events) >= at_least or time.monotonic() > deadline:
            return events
        await anyio.sleep(0.5)
