"""What the history last knew of each number: its newest observation (what a collection compares
new polls against) and both its ids from recent listings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kapso_health.tasks.flatten import NumberIds, number_ids
from kapso_health.tasks.plan import LastSeen, in_trouble
from kapso_health.tasks.schemas import to_pandas
from kapso_health.tasks.storage import ParquetStore
from kapso_health.tasks.vocabulary import STATE_COLUMNS, Outcome


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
    keep = pc.equal(polls.column("outcome"), Outcome.OK.value)
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


def last_seen(
    store: ParquetStore,
    now: datetime,
    key: str,
    project: str,
    exclude_run: str | None = None,
    days: int = 2,
) -> dict[str, LastSeen]:
    """Per number of `project` (keyed by the polls column `key`, the polled id): its last
    poll, last observation, Kapso's backoff and whether it is in trouble, for the planner."""
    wanted = ["run_id", "project", key, "polled_at", "checked_at", "outcome", "status", "error"]
    wanted += ["retry_after", *STATE_COLUMNS]
    polls = to_pandas(
        store.read_arrow(
            "polls", (now - timedelta(days=days)).date(), now.date(), list(dict.fromkeys(wanted))
        )
    )
    polls = polls[polls["project"].eq(project) & polls[key].notna()]
    if exclude_run is not None:
        polls = polls[polls["run_id"].ne(exclude_run)]
    polls = polls.sort_values([key, "polled_at"], kind="stable")
    ok = polls[polls["outcome"].eq(Outcome.OK)].drop_duplicates([key, "checked_at"])
    states = ok[STATE_COLUMNS].astype("string").fillna("")
    same_number = ok[key].eq(ok[key].shift())
    changed = same_number & states.ne(states.shift()).any(axis=1)
    changed_at = ok[changed].groupby(key)["checked_at"].max()
    observed = ok.groupby(key).tail(1).set_index(key)
    last = polls.groupby(key).tail(1)
    seen = {}
    for row in last.astype(object).where(last.notna(), None).to_dict("records"):
        number = row[key]
        newest = observed.loc[number] if number in observed.index else None
        changed_when = changed_at.get(number)
        seen[number] = LastSeen(
            polled_at=row["polled_at"].to_pydatetime(),
            observed_at=None if newest is None else _when(newest["checked_at"]),
            in_trouble=in_trouble(
                row, now, None if changed_when is None else changed_when.to_pydatetime()
            ),
            retry_after=_when(None if newest is None else newest["retry_after"]),
        )
    return seen


def _when(value: object) -> datetime | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()
