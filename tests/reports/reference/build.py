"""The report, composed: every report table for a range of days, from a history reader.

Numbers are computed in batches and checks day by day, so memory stays bounded however long
the range. The history comes in through `HistoryReader` (the store satisfies it): this
package reads no files itself and imports neither Prefect nor the storage layer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kapso_health.reports.attention_details import (
    CHECK_COLUMNS as ATTENTION_CHECK_COLUMNS,
)
from kapso_health.reports.attention_details import (
    ENTITY_COLUMNS,
    ERROR_COLUMNS,
    FAILING_COLUMNS,
    entity_errors,
    failing_checks,
)
from kapso_health.reports.rollup import fleet_rollup, latest_attributes
from kapso_health.tasks.names import number_names, observed_names
from kapso_health.tasks.schemas import DEFAULT_PROJECT, to_pandas
from tests.reports.reference.attention import changes_since, needs_attention
from tests.reports.reference.availability import (
    check_pass_rates,
    daily_availability,
    incident_days,
    incidents,
)
from tests.reports.reference.quality import all_transitions, daily_quality
from tests.reports.reference.timeline import Policy, intervals, observations


class HistoryReader(Protocol):
    """What the report needs of the history: a table's rows for a range of UTC days."""

    def read_arrow(
        self,
        name: str,
        start: date | None = None,
        end: date | None = None,
        columns: list[str] | None = None,
        dictionary: bool = False,
    ) -> pa.Table: ...


POLL_COLUMNS = [
    "config_id",
    "project",
    "polled_at",
    "checked_at",
    "outcome",
    "status",
    "quality_rating",
    "can_send_message",
    "phone_status",
    "passed_webhook_verified",  # the rest for what needs attention, and names
    "verified_name",
    "display_phone_number",
]
CHECK_COLUMNS = ["config_id", "polled_at", "checked_at", "check_name", "passed"]


def report_days(day: date | None, to: date | None) -> list[date]:
    """[day, to] inclusive; by default yesterday (UTC)."""
    first = day or (datetime.now(UTC) - timedelta(days=1)).date()
    last = to or first
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


ROWS_PER_BATCH = 1_000_000  # numbers are computed in batches of about this many polls rows


def number_tables(polls: pd.DataFrame, days: list[date], policy: Policy) -> dict[str, pd.DataFrame]:
    """The per-number tables for `days`, from those numbers' polls of the days and one day
    either side: availability, quality (both with the number's `project`), incidents,
    transitions."""
    stamps = [pd.Timestamp(d, tz="UTC") for d in days]
    obs = observations(polls, policy)
    # Incidents and transitions look across the margin; holding time only matters in range.
    reach = obs["max_gap"]  # each observation's own: only then can it hold into the range
    near = (obs["at"] >= stamps[0] - reach) & (
        obs["at"] <= stamps[-1] + pd.Timedelta(days=1) + reach
    )
    pieces = intervals(obs[near], policy)
    found = incident_days(incidents(obs, policy))
    changes = all_transitions(obs)
    project = projects(polls)
    tables = {
        "availability_daily": _with_project(
            daily_availability(obs, pieces, stamps, policy, found), project
        ),
        "quality_daily": _with_project(daily_quality(obs, pieces, stamps, changes), project),
        "incidents": found,
        "quality_transitions": changes,
    }
    return {
        name: frame[frame["day"].isin(stamps)].reset_index(drop=True)
        for name, frame in tables.items()
    }


def projects(polls: pd.DataFrame) -> pd.Series:
    """The Kapso project of each number (`config_id` → project): that of its latest poll; rows
    without one (a history from before the column) are the default project."""
    if "project" not in polls:
        polls = polls.assign(project=pd.NA)
    latest = polls.sort_values("polled_at", kind="stable").drop_duplicates("config_id", keep="last")
    project = latest["project"].astype("string").fillna(DEFAULT_PROJECT)
    return pd.Series(project.to_numpy(), index=latest["config_id"].astype("string"), name="project")


def _with_project(table: pd.DataFrame, project: pd.Series) -> pd.DataFrame:
    """`table` with its numbers' `project` beside `config_id` and `day`."""
    found = table["config_id"].map(project).astype("string").fillna(DEFAULT_PROJECT)
    table.insert(2, "project", found)
    return table


def fleet_tables(
    availability: pd.DataFrame, quality: pd.DataFrame, numbers: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """Roll-ups per day: the fleet, per Kapso project (from the polls, in `availability`), and
    per customer and per WABA from the `numbers` table."""
    attributes = latest_attributes(numbers)
    return {
        "fleet_daily": fleet_rollup(availability, quality),
        "project_daily": fleet_rollup(availability, quality, by="project"),
        "customer_daily": fleet_rollup(availability, quality, attributes, "customer_id"),
        "waba_daily": fleet_rollup(availability, quality, attributes, "business_account_id"),
    }


def build_reports(
    history: HistoryReader, days: list[date], policy: Policy
) -> dict[str, pd.DataFrame]:
    """Every report table for `days`. Numbers are computed in batches and checks day by day,
    so memory stays bounded however long the range."""
    margin = timedelta(days=1)  # observations just before or after the range hold into it
    polls = history.read_arrow(
        "polls", days[0] - margin, days[-1] + margin, columns=POLL_COLUMNS, dictionary=True
    )
    batches = _number_batches(polls)
    del polls  # the batches own it now, and let go of it as early as they can
    end = pd.Timestamp(days[-1], tz="UTC") + pd.Timedelta(days=1)
    parts = [number_tables(batch, days, policy) | attention_tables(batch, end) for batch in batches]
    tables = {
        name: pd.concat([part[name] for part in parts], ignore_index=True) for name in parts[0]
    }
    tables["check_pass_rates"] = pd.concat(
        [
            check_pass_rates(
                history.read_arrow("checks", day, day, columns=CHECK_COLUMNS, dictionary=True),
                [day],
            )
            for day in days
        ],
        ignore_index=True,
    )
    numbers = to_pandas(history.read_arrow("numbers", None, days[-1]))
    tables.update(fleet_tables(tables["availability_daily"], tables["quality_daily"], numbers))
    tables.update(attention_details(history, tables["needs_attention"]))
    ids = pd.concat([tables[name]["config_id"] for name in NAMED], ignore_index=True)
    observed = tables.pop("observed_names").set_index("config_id")
    tables["number_names"] = number_names(ids.astype("string"), observed, numbers)
    return tables


NAMED = ("needs_attention", "changes_since_day_before", "availability_daily", "incidents")


def attention_tables(polls: pd.DataFrame, end: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """For a batch of whole numbers: what needs attention at `end`, what changed since the day
    before, and the names the numbers were last observed with."""
    return {
        "needs_attention": needs_attention(polls, end),
        "changes_since_day_before": changes_since(polls, end - pd.Timedelta(days=1), end),
        "observed_names": observed_names(polls).reset_index(),
    }


def attention_details(history: HistoryReader, attention: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The failing checks and entity errors of each number needing attention, read from the
    days of those observations only."""
    keys = attention[["config_id", "polled_at"]]
    days = sorted({stamp.date() for stamp in pd.to_datetime(keys["polled_at"], utc=True)})
    checks, errors = [], []
    for day in days:
        found = history.read_arrow("checks", day, day, ATTENTION_CHECK_COLUMNS, dictionary=True)
        checks.append(failing_checks(found, keys))
        found = history.read_arrow("entities", day, day, ENTITY_COLUMNS, dictionary=True)
        errors.append(entity_errors(found, keys))
    return {
        "attention_checks": pd.concat([pd.DataFrame(columns=FAILING_COLUMNS), *checks]),
        "attention_entity_errors": pd.concat([pd.DataFrame(columns=ERROR_COLUMNS), *errors]),
    }


def _number_batches(polls: pa.Table) -> Iterator[pd.DataFrame]:
    """The polls as pandas, a few whole numbers at a time (about ROWS_PER_BATCH rows each)."""
    if polls.num_rows <= ROWS_PER_BATCH:  # one chunk per column: pandas takes from it fast
        yield to_pandas(polls.unify_dictionaries().combine_chunks())
        return
    polls = polls.unify_dictionaries().combine_chunks()
    column = polls.column("config_id").chunk(0)
    ranks = pc.rank(column.dictionary, sort_keys="ascending", tiebreaker="dense")  # 1-based
    step = max(1, len(column.dictionary) * ROWS_PER_BATCH // polls.num_rows)
    batch_of_row = pc.take(pc.divide(pc.subtract(ranks, 1), step), column.indices)
    order = pc.sort_indices(batch_of_row)
    ordered = polls.take(order)  # still dictionary-encoded: decoded one batch at a time
    sizes = pc.value_counts(pc.take(batch_of_row, order)).field("counts").to_pylist()
    del polls, column, batch_of_row, order
    start = 0
    for size in sizes:
        yield to_pandas(ordered.slice(start, size))
        start += size
