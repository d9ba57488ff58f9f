"""What the history last knew of each number: its newest observation (what a collection compares
new polls against) and both its ids from recent listings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from kapso_health.tasks.flatten import NumberIds, number_ids
from kapso_health.tasks.storage import ParquetStore


def last_observations(
    store: ParquetStore,
    now: datetime,
    days: int = 2,
    exclude_run: str | None = None,
    columns: Iterable[str] = (),
) -> pa.Table:
    """Per number, the newest `ok` poll of the last `days` days: config_id, checked_at,
    retry_after and the `polls` columns asked for.

    `exclude_run` leaves out a run being replaced, whose rows are about to go.
    """
    wanted = ["config_id", "checked_at", "retry_after", *columns]
    polls = store.read_arrow(
        "polls",
        (now - timedelta(days=days)).date(),
        now.date(),
        list(dict.fromkeys(["run_id", "polled_at", "outcome", *wanted])),
    )
    keep = pc.equal(polls.column("outcome"), "ok")
    if exclude_run is not None:
        keep = pc.and_(keep, pc.not_equal(polls.column("run_id"), exclude_run))
    polls = polls.filter(keep)
    newest = polls.group_by("config_id").aggregate([("polled_at", "max")])
    return polls.join(
        newest, ["config_id", "polled_at"], ["config_id", "polled_at_max"], join_type="inner"
    ).select(wanted)


def recent_number_ids(
    store: ParquetStore, now: datetime, flavour: str, days: int = 2
) -> dict[str, NumberIds]:
    """Polled id → (config id, phone number id) from the last `days` days' listings."""
    listed = store.read_arrow("numbers", (now - timedelta(days=days)).date(), now.date())
    listed = listed.filter(pc.equal(listed.column("flavour"), flavour))
    return number_ids(listed.sort_by("listed_at"), flavour)
