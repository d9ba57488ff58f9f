"""Which numbers to poll, and polling them (plain async functions; their Prefect tasks are in
`flows/steps.py`)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import pyarrow as pa

from kapso_health.tasks.client import KapsoClient
from kapso_health.tasks.flatten import flatten_numbers
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.schemas import DEFAULT_PROJECT
from kapso_health.tasks.vocabulary import Outcome

_BAD_ID = re.compile(r"[\x00-\x1f\x7f]")


def clean_ids(ids: Iterable[Any]) -> list[str]:
    """Ids as stripped text, de-duplicated in order; a malformed id is an error naming it."""
    seen: dict[str, None] = {}
    bad = []
    for raw in ids:
        text = str(raw).strip() if raw is not None else ""
        if not text or len(text) > 256 or _BAD_ID.search(text):
            bad.append(raw)
        else:
            seen.setdefault(text)
    if bad:
        raise ValueError(f"malformed number ids (empty, too long or control characters): {bad!r}")
    return list(seen)


def read_ids_file(text: str) -> list[str]:
    """One id per line; blank lines and `#` comments are ignored."""
    ids = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [number_id for number_id in ids if number_id]


async def poll_numbers(
    client: KapsoClient,
    ids: Sequence[str],
    skip_until: Mapping[str, datetime] | None = None,
    on_result: Callable[[PollResult], None] | None = None,
    not_before: Mapping[str, datetime] | None = None,
) -> list[PollResult]:
    """One result per id, in order: polled (not before its `not_before` time, when it has
    one), or skipped while Kapso backs off the number. Ids not reached before the client's
    `stop_at` (a rolling run's window end) have none."""
    skip_until = skip_until or {}
    not_before = not_before or {}

    async def one(number_id: str) -> PollResult | None:
        if (start := not_before.get(number_id)) is not None:
            wait = (start - client.clock()).total_seconds()
            if wait > 0:  # a refused key ends the wait: the poll resolves at once
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.refused.wait(), wait)
        until = skip_until.get(number_id)
        now = client.clock()
        if until is not None and until > now:
            result = PollResult(
                number_id,
                now,
                Outcome.SKIPPED,
                retry_after=until,
                error=f"Kapso is backing off this number until {until:%H:%M:%SZ}",
            )
        else:
            result = await client.poll(number_id)
        if on_result is not None and result is not None:
            on_result(result)
        return result

    results = await asyncio.gather(*(one(number_id) for number_id in ids))
    return [result for result in results if result is not None]


async def numbers_table(
    client: KapsoClient, run_id: str, project: str = DEFAULT_PROJECT
) -> pa.Table:
    """Every number of the project from the list endpoint, as the `numbers` dimension table."""
    items = await client.list_numbers()
    return flatten_numbers(items, client.settings.flavour, run_id, client.clock(), project)
