"""The `collect-health` flow: resolve numbers → fetch in chunks → flatten → append to Parquet."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.runtime import flow_run
from pydantic import Field

from kapso_health.flows.steps import (
    Progress,
    poll_and_store,
    resolve_numbers,
    run_summary,
    shared_budget,
)
from kapso_health.tasks.client import KapsoClient
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
from kapso_health.tasks.storage import ParquetStore, check_run_id


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
        numbers = await resolve_numbers(client, ids, store, run_id)
        if not numbers.ids:
            logger.warning("No numbers to poll: the list is empty and no ids were given")
        logger.info(
            "Polling %d numbers at %s (%s flavour)", len(numbers.ids), settings.base_url, flavour
        )
        async with Progress(len(numbers.ids)) as progress:
            counts, written, alerts = await poll_and_store(
                client, numbers.ids, store, run_id, chunk_size, progress, numbers.known_ids
            )
        requests, throttled = client.limiter.requests, client.limiter.throttled
        auth_failure = client.auth_failure
        attempt_outcomes = dict(sorted(client.attempt_outcomes.items()))
    stale = [path for path in store.run_files(run_id) if path not in {*written, *numbers.written}]
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
