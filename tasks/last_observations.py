"""What the history last knew of each number: its newest observation (what a collection compares
new polls against) and both its ids from recent listings."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kapso_health.tasks.flatten import NumberIds, number_ids
from kapso_health.tasks.names import POLL_NAME_COLUMNS
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


# What `seen_from_polls` and `sent_lately` read of each poll.
SEEN_COLUMNS = list(
    dict.fromkeys(
        ["polled_at", "checked_at", "outcome", "attempts", "error", "retry_after", *STATE_COLUMNS]
    )
)


def recent_polls(
    store: ParquetStore,
    now: datetime,
    key: str,
    project: str,
    exclude_run: str | None = None,
    days: int = 2,
) -> pd.DataFrame:
    """The last `days` days' polls of `project` (its numbers keyed by the polls column `key`,
    the polled id), with the columns the planner reads (`SEEN_COLUMNS`)."""
    wanted = list(dict.fromkeys(["run_id", "project", key, *SEEN_COLUMNS]))
    polls = to_pandas(
        store.read_arrow("polls", (now - timedelta(days=days)).date(), now.date(), wanted)
    )
    keep = polls["project"].eq(project) & polls[key].notna()
    if exclude_run is not None:
        keep &= polls["run_id"].ne(exclude_run)
    return polls.loc[keep, [key, *SEEN_COLUMNS]].reset_index(drop=True)


def sent_lately(polls: pd.DataFrame, now: datetime, seconds: float = 61.0) -> list[float]:
    """The requests (Unix seconds, one per attempt, at the poll's first send) of the `polls`
    rows of the last `seconds` before `now`: what the project's budget still counts
    (`RateLimiter.prime`). A row of an older file without `attempts` counts one."""
    since = pd.Timestamp(now) - pd.Timedelta(seconds=seconds)
    recent = polls[polls["polled_at"].ge(since) & polls["outcome"].ne(Outcome.SKIPPED.value)]
    if "attempts" in recent:
        counts = recent["attempts"].fillna(1).astype(int)
    else:
        counts = pd.Series(1, index=recent.index)
    return [at.timestamp() for at in recent["polled_at"].repeat(counts)]


@dataclass
class Known:
    """What a run knows of each number's newest observation, kept up to date by its own
    polls: when Kapso checked it (a body seen again is a repeat), its state and names (what
    the state-change events compare against), and Kapso's backoff (by polled id)."""

    checked_at: dict[str, datetime]
    states: dict[str, dict[str, Any]]
    skip_until: dict[str, datetime]

    @classmethod
    def read(cls, store: ParquetStore, now: datetime, run_id: str, polled_column: str) -> Known:
        """From the last two days' polls, leaving out the run `run_id` (being replaced)."""
        known = cls({}, {}, {})
        known.learn(
            last_observations(store, now, exclude_run=run_id, columns=KNOWN_COLUMNS),
            polled_column,
        )
        return known

    def learn(self, polls: pa.Table, polled_column: str) -> None:
        """Take the `ok` observations of `polls` as the newest known (a run learns its polls
        in the order it makes them)."""
        if "outcome" in polls.column_names:
            polls = polls.filter(pc.equal(polls.column("outcome"), Outcome.OK.value))
        columns = list(dict.fromkeys(["config_id", "checked_at", "retry_after", *KNOWN_COLUMNS]))
        for row in polls.select(columns).to_pylist():
            number = row["config_id"]
            if row["checked_at"] is not None:
                self.checked_at[number] = row["checked_at"]
            self.states[number] = row
            if row["retry_after"] is not None and row[polled_column] is not None:
                self.skip_until[row[polled_column]] = row["retry_after"]


KNOWN_COLUMNS = [*STATE_COLUMNS, *POLL_NAME_COLUMNS, "phone_number_id"]
