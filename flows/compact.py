"""The `compact-history` flow: each closed day's many small files → one file per table."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from kapso_health.flows.steps import finish_compactions_left
from kapso_health.tasks.compaction import compact
from kapso_health.tasks.schemas import TABLES
from kapso_health.tasks.settings import DEFAULT_STORAGE, configured
from kapso_health.tasks.storage import ParquetStore


@task(name="compact-day", cache_policy=NO_CACHE, task_run_name="compact-{name}-{day}")
def compact_day(store: ParquetStore, name: str, day: date) -> int:
    """Files merged (0: nothing to do, or another compaction got there first)."""
    return compact(store, name, day)


@flow(name="compact-history")
def compact_history(storage: str | None = None, before: date | None = None) -> dict[str, Any]:
    """Compact every table's days before `before` (default: today, UTC, so every closed day).
    `storage` defaults as for the other flows (Variable `kapso_health_storage`, ...).

    Safe beside running collections and reports: readers see each row exactly once at any
    moment, and a compaction killed at any point loses or doubles nothing.
    """
    logger = get_run_logger()
    storage = configured("storage", storage, DEFAULT_STORAGE)
    store = ParquetStore(storage)
    finish_compactions_left(store)
    cutoff = before or datetime.now(UTC).date()
    merged: dict[str, int] = {}
    days = 0
    for name in TABLES:
        merged[name] = 0
        for day in store.days(name):
            if day < cutoff and len(store.files(name, day, day)) > 1:
                merged[name] += compact_day(store, name, day)
                days += 1
    logger.info(
        "Compacted %d table-days before %s: %s",
        days,
        cutoff,
        ", ".join(f"{name} {count} files" for name, count in merged.items()),
    )
    create_table_artifact(
        [{"table": name, "files_merged": count} for name, count in merged.items()],
        key="compact-history-summary",
        description=f"Files merged into one per day, for days before {cutoff}",
    )
    return {"before": cutoff.isoformat(), "table_days": days, "files_merged": merged}
