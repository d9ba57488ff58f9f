"""Daily availability, incidents and check pass rates per number.

The computations are the engine's SQL pieces (`sql/incidents.sql`, `incident_days.sql`,
`availability_daily.sql`, `check_pass_rates.sql`); these functions run them on pandas frames.
`worst_numbers` ranks a finished availability table.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from kapso_health.reports import engine
from kapso_health.reports.policy import DEFAULT_POLICY, Policy


def incidents(obs: pd.DataFrame, policy: Policy = DEFAULT_POLICY) -> pd.DataFrame:
    """Maximal runs of `down` (kind `down`) and of BLOCKED messaging (kind `blocked`).

    An incident starts at its first bad observation and ends at the first good one after it;
    unknown observations in between do not end it. Without a recovery it is `ongoing` and
    lasts until its last bad observation stops holding (at most its `max_gap` after it).
    """
    return engine.run_on("incidents", obs, policy, order="config_id, start_us, kind")


def incident_days(found: pd.DataFrame) -> pd.DataFrame:
    """Each incident once per UTC day it touches, with the seconds it lasted that day."""
    return engine.run(
        "incident_days",
        order="config_id, start_us, kind, day_us",
        incidents=engine.table_of(found, engine.INCIDENT),
    )


def daily_availability(
    obs: pd.DataFrame,
    pieces: pd.DataFrame,
    days: list[pd.Timestamp],
    policy: Policy = DEFAULT_POLICY,
    found: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per number and day in `days`: sample and time-weighted availability, coverage,
    incidents, downtime and MTTR, messaging shares, how long the day's observations held at
    most (`max_gap_seconds`). Figures are fractions; null when unknown.

    `found` is `incident_days(incidents(obs, policy))` when the caller has it already."""
    given = {} if found is None else {"incident_days": engine.table_of(found, engine.INCIDENT_DAY)}
    return engine.run_on(
        "availability_daily",
        obs,
        policy,
        days,
        order="config_id, day_us",
        pieces=engine.table_of(pieces, engine.PIECE),
        **given,
    )


def worst_numbers(availability: pd.DataFrame, limit: int = 20) -> pd.DataFrame:
    """Numbers ranked worst first over the days given: lowest mean time-weighted availability,
    then most downtime (unknown availability last)."""
    per_number = availability.groupby("config_id").agg(
        availability_time=("availability_time", "mean"),
        coverage=("coverage", "mean"),
        incidents=("incidents", "sum"),
        downtime_hours=("downtime_seconds", "sum"),
    )
    per_number["downtime_hours"] = per_number["downtime_hours"] / 3600
    ranked = per_number.sort_values(
        ["availability_time", "downtime_hours"], ascending=[True, False], na_position="last"
    )
    return ranked.head(limit).reset_index()


def check_pass_rates(checks: pa.Table | pd.DataFrame, days: list) -> pd.DataFrame:
    """Per number, day and check name (any name, also new ones): passed, failed, pass rate.

    A check counts once per observation (distinct `checked_at`); `passed` null is neither.
    """
    if isinstance(checks, pd.DataFrame):
        checks = pa.Table.from_pandas(checks, preserve_index=False)
    # any body may have been polled twice: tell every one apart (each once, as the report does)
    bodies = {
        "config_id": checks["config_id"].cast(pa.string()),
        "checked_us": checks["checked_at"].cast(pa.timestamp("us", "UTC")).cast(pa.int64()),
    }
    every_body = pa.table(bodies).group_by(["config_id", "checked_us"]).aggregate([])
    return engine.run(
        "check_pass_rates",
        days=days,
        order="config_id, day_us, check_name",
        checks=checks,
        repeated_bodies=every_body,
    )
