"""The `collect-health` flow: resolve numbers → fetch in chunks → flatten → append to Parquet."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Annotated, Any

from prefect import flow, get_run_logger
from prefect.artifacts import acreate_table_artifact
from prefect.runtime import flow_run
from pydantic import Field

from kapso_health.flows.steps import ProjectRun, collect_project, finish_compactions_left
from kapso_health.tasks.client import KapsoAuthError, KapsoListError
from kapso_health.tasks.clock import utc_now
from kapso_health.tasks.projects import Project, ProjectsFailedError, chosen_projects
from kapso_health.tasks.settings import (
    CHUNK_SIZE,
    DEFAULT_STORAGE,
    MAX_ATTEMPTS,
    MAX_IN_FLIGHT,
    MISSING_KEY,
    RATE_PER_MINUTE,
    RATE_PER_SECOND,
    TIMEOUT_SECONDS,
    Flavour,
    MissingApiKeyError,
    configured,
    connection_settings,
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
    window_minutes: Annotated[float | None, Field(gt=0, le=1440)] = None,
    interval_minutes: Annotated[float | None, Field(gt=0, le=1440)] = None,
    projects: str | None = None,
    check_first: bool = True,
) -> dict[str, Any]:
    """Poll the numbers' health and append the flattened rows to the Parquet history.

    Without `window_minutes`, one full sweep: every number once. With it, a rolling run: the
    numbers most due first (new ones, then those in trouble or longest unseen), as many as
    the window's budget allows, and no request starts after the window; the rest lead the
    next run. `interval_minutes` is the schedule's interval: a WARNING says when the fleet
    cannot be covered that often, and what cadence it gets instead.

    With no `ids`, the numbers are discovered from the list endpoint. The API key comes from
    `KAPSO_API_KEY` or the Prefect Secret block named by `api_key_secret`. `base_url`,
    `storage` and `projects` default to the Prefect Variables `kapso_health_base_url`,
    `kapso_health_storage` and `kapso_health_projects` (or `KAPSO_HEALTH_BASE_URL`, ...),
    then to Kapso's URL for the flavour, `./data` and one project. `projects` names a
    projects file (see `tasks/projects.py`): every project is polled at once, each with its
    own key, budget and capacity; a project that fails does not stop the others, and the run
    fails at the end naming it. `global_limit` names a Prefect global rate limit shared by
    every run against the project (with several projects: `<global_limit>-<project>` unless
    the file names one); each request takes a slot of it, in batches. `check_first`: each
    project's key and API are checked with one cheap request before its collection starts (the
    command line does it before Prefect starts and then passes False for the URL it checked).
    """
    logger = get_run_logger()
    run_started = window_start(utc_now(), flow_run.scheduled_start_time, window_minutes)
    run_id = check_run_id(run_id or str(flow_run.id or uuid.uuid4()))
    projects_file = configured("projects", projects)
    chosen = chosen_projects(
        projects_file,
        api_key_secret,
        flavour,
        base_url if projects_file else configured("base_url", base_url),
        ids,
        global_limit,
    )
    several = len(chosen) > 1
    if timeout_seconds <= 15:
        logger.warning(
            "timeout_seconds=%s is not above Kapso's own 15 s: slow checks will be "
            "cut short and recorded as timeouts",
            timeout_seconds,
        )
    storage = configured("storage", storage, DEFAULT_STORAGE)
    store = ParquetStore(storage)
    store.check_writable()
    finish_compactions_left(store)

    async def one(project: Project) -> ProjectRun:
        project_run = f"{run_id}.{project.name}" if several else run_id
        try:
            key = project.api_key()
            if key is None:
                raise MissingApiKeyError(
                    f"project {project.name}: {MISSING_KEY}" if several else MISSING_KEY
                )
            settings = connection_settings(
                key,
                project.flavour,
                project.base_url,
                rate_per_second,
                rate_per_minute,
                max_in_flight,
                timeout_seconds,
                max_attempts,
            )
            limit = project.global_limit or (
                f"{global_limit}-{project.name}" if several and global_limit else global_limit
            )
            done = await collect_project(
                project,
                settings,
                store,
                project_run,
                chunk_size,
                window_minutes,
                interval_minutes,
                limit,
                run_started,
                check_first,
            )
        except (MissingApiKeyError, KapsoListError, KapsoAuthError, ValueError) as exc:
            if not several:
                raise
            logger.error("Project %s failed: %s", project.name, exc)
            return ProjectRun({"project": project.name, "run_id": project_run}, set(), exc)
        _clear_earlier_attempt(store, project_run, done.written)
        return done

    runs = await asyncio.gather(*(one(project) for project in chosen))
    summary = combined_summary(run_id, [r.summary for r in runs], storage)
    await _publish_summary(summary)
    logger.info("Done: %s", ", ".join(f"{k} {v}" for k, v in summary["outcomes"].items()))
    failed = [r for r in runs if r.error is not None]
    if not several and failed:  # every number has its row; now fail the run loudly
        raise failed[0].error
    if failed:
        raise ProjectsFailedError(
            "projects failed: " + "; ".join(f"{r.summary['project']}: {r.error}" for r in failed)
        )
    return summary


def window_start(
    now: datetime, scheduled: datetime | None, window_minutes: float | None
) -> datetime:
    """Where a rolling run's window starts: when the schedule wanted the run, so a run that
    starts late still ends before the next one is due; from now when it started later than
    a whole window after that (or was not scheduled)."""
    if scheduled is None or window_minutes is None or scheduled > now:
        return now
    late = now - scheduled
    return scheduled if late < timedelta(minutes=window_minutes) else now


def _clear_earlier_attempt(store: ParquetStore, run_id: str, written: set[str]) -> None:
    """Files of an earlier attempt of this run id that this attempt did not write again."""
    stale = [path for path in store.run_files(run_id) if path not in written]
    stale += store.run_files(run_id, temporary=True)  # all of this attempt's writes are done
    if stale:
        get_run_logger().info(
            "Replaced an earlier attempt of run %s: removed %d files", run_id, store.remove(stale)
        )


def combined_summary(run_id: str, parts: list[dict[str, Any]], storage: str) -> dict[str, Any]:
    """The run's summary: totals over its projects, and each project's own under `projects`."""
    summary: dict[str, Any] = {"run_id": run_id, "storage": storage}
    for name in ("numbers", "requests", "rate_limited_responses", "planned", "not_reached"):
        summary[name] = sum(part.get(name, 0) for part in parts)
    for name in ("outcomes", "statuses", "state_change_events", "attempts_by_outcome"):
        total: Counter[str] = Counter()
        for part in parts:
            total.update(part.get(name, {}))
        summary[name] = dict(sorted(total.items()))
    summary["seconds"] = max((part.get("seconds", 0.0) for part in parts), default=0.0)
    for name in ("shared_limit_batches", "shared_limit_batch_size"):
        summary[name] = sum(part.get(name, 0) for part in parts)
    summary["capacity"] = [part["capacity"]["line"] for part in parts if "capacity" in part]
    summary["projects"] = {part["project"]: part for part in parts}
    return summary


async def _publish_summary(summary: dict[str, Any]) -> None:
    rows = [{"kind": "outcome", "value": k, "numbers": v} for k, v in summary["outcomes"].items()]
    rows += [{"kind": "status", "value": k, "numbers": v} for k, v in summary["statuses"].items()]
    rows += [
        {
            "kind": "capacity",
            "value": f"{name}: {part['capacity']['line']}",
            "numbers": part["planned"],
        }
        for name, part in summary["projects"].items()
        if "capacity" in part
    ]
    await acreate_table_artifact(
        rows,
        key="collect-health-summary",
        description=f"Run {summary['run_id']}: {summary['numbers']} numbers in "
        f"{summary['seconds']} s, {summary['requests']} requests, "
        f"{summary['rate_limited_responses']} answered 429",
    )
