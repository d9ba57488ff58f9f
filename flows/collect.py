"""The `collect-health` flow: resolve numbers → fetch in chunks → flatten → append to Parquet."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import (
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.runtime import flow_run
from pydantic import Field

from kapso_health.tasks.alerts import STATE_COLUMNS, emit_state_changes, state_changes
from kapso_health.tasks.client import KapsoClient
from kapso_health.tasks.fetch import clean_ids, discover_numbers, fetch_chunk
from kapso_health.tasks.flatten import flatten_polls
from kapso_health.tasks.limiter import SharedBudget
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.settings import (
    CHUNK_SIZE,
    DEFAULT_STORAGE,
    MAX_ATTEMPTS,
    MAX_IN_FLIGHT,
    RATE_PER_MINUTE,
    RATE_PER_SECOND,
    TIMEOUT_SECONDS,
    Flavour,
    configured,
    connection_settings,
    require_api_key,
)
from kapso_health.tasks.storage import ParquetStore, append_tables, check_run_id
from kapso_health.tasks.vocabulary import Outcome

PROGRESS_EVERY_SECONDS = 5.0


@flow(name="collect-health", log_prints=False)
async def collect_health(
    ids: list[str] | None = None,
    base_url: str | None = None,
    flavour: Flavour = "legacy",
    storage: str | None = None,
    rate_per_second: Annotated[float, Field(ge=0, description="0 turns it off")] = RATE_PER_SECOND,
    rate_per_minute: Annotated[float, Field(ge=0, description="0 turns it off")] = RATE_PER_MINUTE,
    max_in_flight: Annotated[int, Field(ge=1, le=1000)] = MAX_IN_FLIGHT,
    chunk_size: Annotated[int, Field(ge=1, le=100_000)] = CHUNK_SIZE,
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = TIMEOUT_SECONDS,
    max_attempts: Annotated[int, Field(ge=1, le=20)] = MAX_ATTEMPTS,
    api_key_secret: str | None = None,
    run_id: str | None = None,
    global_limit: str | None = None,
) -> dict[str, Any]:
    """Poll every number's health once and append the flattened rows to the Parquet history.

    With no `ids`, the numbers are discovered from the list endpoint. The API key comes from
    `KAPSO_API_KEY` or the Prefect Secret block named by `api_key_secret`. `base_url` and
    `storage` default to the Prefect Variables `kapso_health_base_url` and
    `kapso_health_storage` (or `KAPSO_HEALTH_BASE_URL`, `KAPSO_HEALTH_STORAGE`), then to
    Kapso's URL for the flavour and `./data`. `global_limit` names a Prefect global rate
    limit shared by every run against the project (see the README); each request takes a
    slot of it, in batches.
    """
    logger = get_run_logger()
    api_key = require_api_key(api_key_secret)
    run_id = check_run_id(run_id or str(flow_run.id or uuid.uuid4()))
    settings = connection_settings(
        api_key,
        flavour,
        configured("base_url", base_url),
        rate_per_second,
        rate_per_minute,
        max_in_flight,
        timeout_seconds,
        max_attempts,
    )
    if timeout_seconds <= 15:
        logger.warning(
            "timeout_seconds=%s is not above Kapso's own 15 s: slow checks will be "
            "cut short and recorded as timeouts",
            timeout_seconds,
        )
    storage = configured("storage", storage, DEFAULT_STORAGE)
    store = ParquetStore(storage)
    store.check_writable()
    started = time.monotonic()
    shared = await shared_budget(global_limit) if global_limit else None
    async with KapsoClient(settings, shared=shared) as client:
        numbers, listed_files = await resolve_numbers(client, ids, store, run_id)
        if not numbers:
            logger.warning("No numbers to poll: the list is empty and no ids were given")
        logger.info(
            "Polling %d numbers at %s (%s flavour)", len(numbers), settings.base_url, flavour
        )
        async with Progress(len(numbers)) as progress:
            counts, written, alerts = await poll_and_store(
                client, numbers, store, run_id, chunk_size, progress
            )
        requests, throttled = client.limiter.requests, client.limiter.throttled
        auth_failure = client.auth_failure
        attempt_outcomes = dict(sorted(client.attempt_outcomes.items()))
    stale = [path for path in store.run_files(run_id) if path not in {*written, *listed_files}]
    stale += store.run_files(run_id, temporary=True)  # all of this attempt's writes are done
    if stale:
        logger.info(
            "Replaced an earlier attempt of run %s: removed %d files", run_id, store.remove(stale)
        )
    summary = run_summary(
        run_id, counts, alerts, requests, throttled, time.monotonic() - started, storage
    )
    summary["shared_limit_batches"] = shared.batches if shared else 0
    summary["shared_limit_batch_size"] = shared.batch if shared else 0
    summary["attempts_by_outcome"] = attempt_outcomes
    await _publish_summary(summary)
    logger.info("Done: %s", ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items()))
    if auth_failure is not None:  # every number has its row; now fail the run loudly
        raise auth_failure
    return summary


async def shared_budget(name: str) -> SharedBudget | None:
    """The run's share of the global rate limit `name`; None, with a warning, without one."""
    logger = get_run_logger()
    async with get_client() as prefect:
        try:
            limit = await prefect.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            limit = None
    if limit is None or not limit.active or not limit.slot_decay_per_second:
        logger.warning(
            "The global rate limit %r is %s: this run keeps to the rate budget on its own, "
            "and other runs against the same Kapso project can push both over it. Create it "
            "with `kapso-health shared-limit` (see the README).",
            name,
            "missing" if limit is None else "inactive or has no slot decay",
        )
        return None
    batch = max(1, limit.limit // 8)
    logger.info(
        "Sharing the rate budget through global rate limit %r (%d slots, %.3g/s decay), "
        "%d slots at a time",
        name,
        limit.limit,
        limit.slot_decay_per_second,
        batch,
    )
    return SharedBudget(name, batch)


async def resolve_numbers(
    client: KapsoClient, ids: list[str] | None, store: ParquetStore, run_id: str
) -> tuple[list[str], list[str]]:
    """The ids to poll, and the `numbers` files written when they were discovered."""
    if ids is not None:
        return clean_ids(ids), []
    numbers = await discover_numbers(client, run_id)
    written = await append_tables(store, {"numbers": numbers}, run_id, "numbers")
    return clean_ids(numbers.column("config_id").to_pylist()), written


async def poll_and_store(
    client: KapsoClient,
    numbers: list[str],
    store: ParquetStore,
    run_id: str,
    chunk_size: int,
    progress: Progress,
) -> tuple[Counter, set[str], Counter]:
    """(outcome, status) counts, the files written, and the state-change events emitted."""
    # Chunks run a few at a time: enough to keep the in-flight budget busy at chunk edges.
    last = store.last_observations(
        client.clock(), exclude_run=run_id, columns=STATE_COLUMNS
    ).to_pylist()
    previous = {row["config_id"]: row["checked_at"] for row in last if row["checked_at"]}
    states = {row["config_id"]: row for row in last}
    skip_until = {row["config_id"]: row["retry_after"] for row in last if row["retry_after"]}
    chunks = [numbers[i : i + chunk_size] for i in range(0, len(numbers), chunk_size)]
    parallel = asyncio.Semaphore(max(2, -(-client.settings.max_in_flight // chunk_size) + 1))
    counts: Counter[tuple[str, str | None]] = Counter()
    alerts: Counter[str] = Counter()
    polled_ids: list[str] = []
    written: set[str] = set()

    async def run_chunk(index: int, chunk: list[str]) -> None:
        async with parallel:
            part = f"c{index:05d}"
            polled = await fetch_chunk(client, chunk, part, skip_until, progress.add)
            flat = flatten_polls(polled, run_id, previous)
            written.update(await append_tables(store, flat.tables(), run_id, part))
            changes = state_changes(states, flat.polls)
            emit_state_changes(changes)
            alerts.update(change.event for change in changes)
            counts.update(
                zip(
                    flat.polls["outcome"].to_pylist(), flat.polls["status"].to_pylist(), strict=True
                )
            )
            polled_ids.extend(flat.polls["config_id"].to_pylist())

    await asyncio.gather(*(run_chunk(i, chunk) for i, chunk in enumerate(chunks)))
    if sorted(polled_ids) != sorted(numbers):
        raise RuntimeError("internal error: not every number got exactly one poll result")
    return counts, written, alerts


class Progress:
    """`async with Progress(total)`: counts finished polls; logs and updates a progress
    artifact every few seconds, and once more at the end."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.outcomes: Counter[str] = Counter()
        self.artifact_id: Any = None
        self.logger = get_run_logger()
        self._ticker: asyncio.Task | None = None

    def add(self, result: PollResult) -> None:
        self.outcomes[result.outcome.value] += 1

    @property
    def percent(self) -> float:
        return 100.0 * sum(self.outcomes.values()) / self.total if self.total else 100.0

    async def __aenter__(self) -> Progress:
        self.artifact_id = await acreate_progress_artifact(
            0.0, key="collect-health-progress", description="Numbers polled in this run"
        )
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        await self._report()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_SECONDS)
            await self._report()

    async def _report(self) -> None:
        done = sum(self.outcomes.values())
        self.logger.info(
            "Polled %d/%d numbers (%s)",
            done,
            self.total,
            ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())),
        )
        await aupdate_progress_artifact(self.artifact_id, self.percent)


def run_summary(
    run_id: str,
    counts: Counter,
    alerts: Counter,
    requests: int,
    throttled: int,
    seconds: float,
    storage: str,
) -> dict[str, Any]:
    outcomes: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for (outcome, status), count in counts.items():
        outcomes[outcome] += count
        if outcome == Outcome.OK:
            statuses[status or "(none)"] += count
    return {
        "run_id": run_id,
        "numbers": outcomes.total(),
        "outcomes": dict(sorted(outcomes.items())),
        "statuses": dict(sorted(statuses.items())),
        "requests": requests,
        "rate_limited_responses": throttled,
        "state_change_events": dict(sorted(alerts.items())),
        "seconds": round(seconds, 2),
        "storage": storage,
    }


async def _publish_summary(summary: dict[str, Any]) -> None:
    rows = [{"kind": "outcome", "value": k, "numbers": v} for k, v in summary["outcomes"].items()]
    rows += [{"kind": "status", "value": k, "numbers": v} for k, v in summary["statuses"].items()]
    await acreate_table_artifact(
        rows,
        key="collect-health-summary",
        description=f"Run {summary['run_id']}: {summary['numbers']} numbers in "
        f"{summary['seconds']} s, {summary['requests']} requests, "
        f"{summary['rate_limited_responses']} answered 429",
    )
