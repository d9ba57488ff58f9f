"""The collection's steps, as the collect and demo flows compose them: the Prefect tasks that
wrap the building blocks of `tasks/`, polling and storing in chunks, progress, the summary."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
from prefect import get_run_logger, task
from prefect.artifacts import acreate_progress_artifact, aupdate_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound

from kapso_health.tasks.alerts import emit_state_changes, state_changes
from kapso_health.tasks.client import KapsoAuthError, KapsoClient, KapsoListError
from kapso_health.tasks.compaction import finish_compactions
from kapso_health.tasks.fetch import clean_ids, numbers_table, poll_numbers
from kapso_health.tasks.flatten import NumberIds, flatten_polls, number_ids, polled_id_column
from kapso_health.tasks.last_observations import SEEN_COLUMNS, Known, recent_number_ids
from kapso_health.tasks.limiter import SharedBudget
from kapso_health.tasks.plan import CACHE, capacity
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.projects import Project
from kapso_health.tasks.rolling import poll_rounds, start_window
from kapso_health.tasks.schemas import DEFAULT_PROJECT, to_pandas
from kapso_health.tasks.settings import ConnectionSettings
from kapso_health.tasks.storage import ParquetStore
from kapso_health.tasks.vocabulary import Outcome

PROGRESS_EVERY_SECONDS = 5.0


@task(name="discover-numbers", cache_policy=NO_CACHE, retries=0)
async def discover_numbers(client: KapsoClient, run_id: str, project: str) -> pa.Table:
    """The project's numbers (retries happen per page inside the client)."""
    return await numbers_table(client, run_id, project)


@task(name="fetch-chunk", cache_policy=NO_CACHE, retries=0, task_run_name="fetch-{part}")
async def fetch_chunk(
    client: KapsoClient,
    ids: Sequence[str],
    part: str,
    skip_until: Mapping[str, datetime],
    on_result: Callable[[PollResult], None] | None = None,
    not_before: Mapping[str, datetime] | None = None,
) -> list[PollResult]:
    """Poll one chunk. Retries are per request inside the client; a 401 must not be retried."""
    return await poll_numbers(client, ids, skip_until, on_result, not_before)


def finish_compactions_left(store: ParquetStore) -> int:
    """Every run that writes first finishes compactions that died after publishing (their
    replaced files are deleted), so plain globs see each row once within one interval."""
    deleted = finish_compactions(store)
    if deleted:
        get_run_logger().info(
            "Finished an interrupted compaction: removed %d replaced or abandoned files", deleted
        )
    return deleted


@task(
    name="append-tables",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=1,
    task_run_name="append-{part}",
)
async def append_tables(
    store: ParquetStore, tables: Mapping[str, pa.Table], run_id: str, part: str
) -> list[str]:
    """Write one chunk's tables in a worker thread, so polling goes on meanwhile."""

    def write_all() -> list[str]:
        return [
            path
            for name, table in tables.items()
            for path in store.write(name, table, run_id, part)
        ]

    return await asyncio.to_thread(write_all)


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


@dataclass(frozen=True)
class Numbers:
    """The numbers of a run: the ids to poll (in the flavour's id space), both ids of each
    where a listing knows them, and the `numbers` files written when they were discovered."""

    ids: list[str]
    known_ids: dict[str, NumberIds]
    written: list[str]
    customers: dict[str, str | None] = field(default_factory=dict)  # config_id → customer_id


async def resolve_numbers(
    client: KapsoClient,
    ids: list[str] | None,
    store: ParquetStore,
    run_id: str,
    project: str = DEFAULT_PROJECT,
) -> Numbers:
    """Every listed number, or the given ids. Both ids of each number come from the listing;
    for given ids, from the last two days' listings, and when some are not there, from a
    listing now (outside the health budget; if it fails, those keep the one id they have)."""
    flavour = client.settings.flavour
    if ids is not None:
        given = clean_ids(ids)
        known = recent_number_ids(store, client.clock(), flavour)
        if set(given) <= set(known):
            return Numbers(given, known, [])
        try:
            listed = await list_numbers(client, store, run_id, project)
        except (KapsoListError, KapsoAuthError) as exc:
            get_run_logger().warning("Could not list the numbers for their ids: %s", exc)
            return Numbers(given, known, [])
        return Numbers(given, known | listed.known_ids, listed.written, listed.customers)
    return await list_numbers(client, store, run_id, project)


async def list_numbers(
    client: KapsoClient, store: ParquetStore, run_id: str, project: str
) -> Numbers:
    """Every number of the project's list endpoint, stored as the `numbers` table."""
    flavour = client.settings.flavour
    numbers = await discover_numbers(client, run_id, project)
    written = await append_tables(store, {"numbers": numbers}, run_id, "numbers")
    polled = clean_ids(numbers.column(polled_id_column(flavour)).drop_null().to_pylist())
    customers = dict(
        zip(numbers["config_id"].to_pylist(), numbers["customer_id"].to_pylist(), strict=True)
    )
    return Numbers(polled, number_ids(numbers, flavour), written, customers)


@dataclass
class Stored:
    """What polling and storing gave so far: (outcome, status) counts, the files written, the
    state-change events emitted, and the ids polled."""

    counts: Counter = field(default_factory=Counter)
    written: set[str] = field(default_factory=set)
    alerts: Counter = field(default_factory=Counter)
    polled: set[str] = field(default_factory=set)


async def poll_and_store(
    client: KapsoClient,
    numbers: list[str],
    store: ParquetStore,
    run_id: str,
    chunk_size: int,
    progress: Progress,
    known: Known,
    stored: Stored,
    known_ids: Mapping[str, NumberIds] | None = None,
    project: str = DEFAULT_PROJECT,
    customers: Mapping[str, str | None] | None = None,
    part: str = "",
    not_before: Mapping[str, datetime] | None = None,
) -> pd.DataFrame:
    """Poll `numbers` (each at most once, none before its `not_before`) in chunks and store
    them; adds to `stored`, moves `known` on, and gives these polls' rows. Every number
    reached has exactly one row; with the client's `stop_at`, the numbers not reached by then
    have none (the next round or run has them first). `part` prefixes the chunks' file parts
    (a rolling run's round)."""
    flavour = client.settings.flavour
    polled_column = polled_id_column(flavour)
    # Chunks run a few at a time: enough to keep the in-flight budget busy at chunk edges.
    chunks = [numbers[i : i + chunk_size] for i in range(0, len(numbers), chunk_size)]
    parallel = asyncio.Semaphore(max(2, -(-client.settings.max_in_flight // chunk_size) + 1))
    previous, states = dict(known.checked_at), dict(known.states)
    tables: list[pa.Table] = []

    async def run_chunk(index: int, chunk: list[str]) -> None:
        async with parallel:
            name = f"{part}c{index:05d}"
            polled = await fetch_chunk(
                client, chunk, name, known.skip_until, progress.add, not_before
            )
            flat = flatten_polls(polled, run_id, previous, flavour, known_ids, project)
            stored.written.update(await append_tables(store, flat.tables(), run_id, name))
            changes = state_changes(states, flat.polls, customers)
            emit_state_changes(changes)
            stored.alerts.update(change.event for change in changes)
            stored.counts.update(
                zip(
                    flat.polls["outcome"].to_pylist(), flat.polls["status"].to_pylist(), strict=True
                )
            )
            tables.append(flat.polls)

    await asyncio.gather(*(run_chunk(i, chunk) for i, chunk in enumerate(chunks)))
    for table in tables:
        known.learn(table, polled_column)
    reached = Counter(id for table in tables for id in table[polled_column].to_pylist())
    if (
        max(reached.values(), default=1) > 1
        or not set(reached) <= set(numbers)
        or (client.stop_at is None and len(reached) != len(numbers))
    ):
        raise RuntimeError("internal error: not every number got exactly one poll result")
    columns = [polled_column, *SEEN_COLUMNS]
    polls = pd.concat(
        [to_pandas(table.select(columns)) for table in tables] or [pd.DataFrame(columns=columns)],
        ignore_index=True,
    )
    stored.polled.update(reached)
    return polls


async def check_access(client: KapsoClient, ids_given: bool) -> None:
    """The preflight: a refused key fails the project at once; an API that cannot be read
    fails it too when the numbers come from the list, and with given ids is a WARNING (each
    id still gets its row, its outcome saying why)."""
    try:
        await client.check_access()
    except KapsoListError as exc:
        if not ids_given:
            raise
        get_run_logger().warning("%s; polling the given ids anyway, each gets its row", exc)


async def collect_project(
    project: Project,
    settings: ConnectionSettings,
    store: ParquetStore,
    run_id: str,
    chunk_size: int,
    window_minutes: float | None,
    interval_minutes: float | None,
    global_limit: str | None,
    run_started: datetime | None = None,
    check_first: bool = True,
) -> ProjectRun:
    """One project's collection: the key and the API's reach (one cheap request, unless
    checked already), its numbers, its capacity, then polling and storing: one full sweep, or
    with a window, rounds planned from what is known until the window's budget is spent
    (`tasks/rolling.py`).

    The window counts from `run_started` (when the schedule wanted the run; see
    `collect.window_start`); no request outlives it (see `open_window`)."""
    logger = get_run_logger()
    started = time.monotonic()
    shared = await shared_budget(global_limit) if global_limit else None
    async with KapsoClient(settings, shared=shared) as client:
        if check_first:
            await check_access(client, project.ids is not None)
        numbers = await resolve_numbers(client, project.ids, store, run_id, project.name)
        room = capacity(
            len(numbers.ids), settings.rate_per_minute, window_minutes, interval_minutes
        )
        logger.info("Project %s: %s", project.name, room.line())
        if (warning := room.warning()) is not None:
            logger.warning("Project %s: %s", project.name, warning)
        key = polled_id_column(settings.flavour)
        known = Known.read(store, client.clock(), run_id, key)
        stored = Stored()
        if window_minutes is None:
            total = len(numbers.ids)
        else:
            opens = run_started or client.clock()
            seen = start_window(client, store, key, project.name, run_id, opens, window_minutes)
            cadence = timedelta(minutes=room.cadence_minutes or 0)
            total = room.allowed
        logger.info(
            "Project %s: polling %s at %s (%s flavour)",
            project.name,
            f"{len(numbers.ids)} numbers"
            if window_minutes is None
            else f"the most due of {len(numbers.ids)} numbers until {client.stop_at:%H:%M:%S}Z",
            settings.base_url,
            settings.flavour,
        )
        async with Progress(total, project.name) as progress:

            async def poll(
                ids: list[str], part: str = "", not_before: Mapping[str, datetime] | None = None
            ) -> pd.DataFrame:
                return await poll_and_store(
                    client,
                    ids,
                    store,
                    run_id,
                    chunk_size,
                    progress,
                    known,
                    stored,
                    numbers.known_ids,
                    project.name,
                    numbers.customers,
                    part,
                    not_before,
                )

            async def poll_round(planned: dict[str, datetime], index: int) -> pd.DataFrame:
                return await poll(list(planned), f"r{index:03d}", planned)

            if window_minutes is None:
                await poll(numbers.ids)
                planned = len(numbers.ids)
            else:
                planned = await poll_rounds(
                    client, numbers.ids, seen, key, cadence, poll_round, room.allowed
                )
                if planned == 0 and numbers.ids:
                    logger.info(
                        "Project %s: no number could be polled in this window: each was polled "
                        "less than %d minutes ago (Kapso would answer from its cache) or is "
                        "backed off by Kapso",
                        project.name,
                        CACHE // timedelta(minutes=1),
                    )
        counts, written, alerts = stored.counts, stored.written, stored.alerts
        summary = run_summary(
            run_id,
            counts,
            alerts,
            client.limiter.requests,
            client.limiter.throttled,
            time.monotonic() - started,
            store.url,
        )
        summary.update(
            project=project.name,
            capacity=asdict(room) | {"line": room.line()},
            planned=planned,
            not_reached=planned - summary["numbers"],
            numbers_polled=len(stored.polled),
            stop_at=client.stop_at.isoformat() if client.stop_at else None,
            shared_limit_batches=shared.batches if shared else 0,
            shared_limit_batch_size=shared.batch if shared else 0,
            attempts_by_outcome=dict(sorted(client.attempt_outcomes.items())),
        )
        return ProjectRun(summary, {*written, *numbers.written}, client.auth_failure)


@dataclass(frozen=True)
class ProjectRun:
    """What a project's collection gives the flow: its summary, the files it wrote, and the
    refusal of its key (its rows are stored; the flow fails after every project ran)."""

    summary: dict[str, Any]
    written: set[str]
    error: Exception | None = None


class Progress:
    """`async with Progress(total, project)`: counts finished polls; logs and updates a
    progress artifact every few seconds, and once more at the end."""

    def __init__(self, total: int, project: str = DEFAULT_PROJECT) -> None:
        self.total = total
        self.project = project
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
            0.0,
            key="collect-health-progress",
            description=f"Polls of project {self.project} made in this run (of those it may make)",
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
            "Project %s: %d/%d polls made (%s)",
            self.project,
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
