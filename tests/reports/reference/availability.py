"""Daily availability, incidents and check pass rates per number (pure pandas, frame in/out)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kapso_health.tasks.schemas import TIMESTAMP, to_pandas
from kapso_health.tasks.vocabulary import (
    BLOCKED,
    DEGRADED,
    DOWN,
    KNOWN_STATES,
    MESSAGING,
    UNKNOWN,
    UP,
)
from tests.reports.reference.timeline import (
    DAY,
    DEFAULT_POLICY,
    Policy,
    max_gaps,
    reported_numbers,
    runs,
)


def incidents(obs: pd.DataFrame, policy: Policy = DEFAULT_POLICY) -> pd.DataFrame:
    """Maximal runs of `down` (kind `down`) and of BLOCKED messaging (kind `blocked`).

    An incident starts at its first bad observation and ends at the first good one after it;
    unknown observations in between do not end it. Without a recovery it is `ongoing` and
    lasts until its last bad observation stops holding (at most its `max_gap` after it).
    """
    if "max_gap" not in obs:
        obs = obs.assign(max_gap=max_gaps(obs, policy))
    down = runs(obs, "state", DOWN, (UP, DEGRADED)).assign(kind="down")
    fine = tuple(value for value in MESSAGING if value != BLOCKED)
    blocked = runs(obs, "can_send_message", BLOCKED, fine).assign(kind="blocked")
    found = pd.concat([down, blocked], ignore_index=True).astype(
        {
            "start": "datetime64[us, UTC]",
            "last_seen": "datetime64[us, UTC]",
            "end": "datetime64[us, UTC]",
            "config_id": "string",
            "kind": "string",
        }
    )
    found["ongoing"] = found["end"].isna()
    found["end"] = found["end"].fillna(found["last_seen"] + found["max_gap"])
    found["duration_seconds"] = (found["end"] - found["start"]).dt.total_seconds()
    found["incident_id"] = (
        found["kind"]
        + ":"
        + found["config_id"].astype(str)
        + ":"
        + found["start"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    return found[
        ["incident_id", "kind", "config_id", "start", "end", "ongoing", "duration_seconds"]
    ].sort_values(["config_id", "start"], ignore_index=True)


def incident_days(found: pd.DataFrame) -> pd.DataFrame:
    """Each incident once per UTC day it touches, with the seconds it lasted that day."""
    first_day = found["start"].dt.floor("D")
    touched = np.ceil((found["end"] - first_day) / DAY).fillna(0).astype("int64").clip(lower=1)
    repeated = found.loc[found.index.repeat(touched)].reset_index(drop=True)
    offset = repeated.groupby(repeated["incident_id"].to_numpy(), sort=False).cumcount()
    day = repeated["start"].dt.floor("D") + pd.to_timedelta(offset, unit="D")
    start = repeated["start"].where(repeated["start"] > day, day)
    end = repeated["end"].where(repeated["end"] < day + DAY, day + DAY)
    return repeated.assign(day=day, seconds_in_day=(end - start).dt.total_seconds())


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
    numbers = reported_numbers(obs, pieces, days)
    grid = pd.MultiIndex.from_product([numbers, pd.DatetimeIndex(days, name="day")])
    samples = _count(obs, "state", (UP, DEGRADED, DOWN, UNKNOWN), grid)
    seconds = _sum(pieces, "state", KNOWN_STATES, grid)
    messaging = _sum(pieces, "can_send_message", MESSAGING, grid)
    table = pd.DataFrame(index=grid)
    for state in (UP, DOWN, DEGRADED, UNKNOWN):
        table[f"polls_{state}"] = samples[state].astype("int64")
    available = [UP, DEGRADED] if policy.degraded_counts_as_up else [UP]
    counted = samples[[UP, DEGRADED, DOWN]].sum(axis=1)
    table["availability_samples"] = _ratio(samples[available].sum(axis=1), counted)
    known_seconds = seconds[list(KNOWN_STATES)].sum(axis=1)
    table["availability_time"] = _ratio(seconds[available].sum(axis=1), known_seconds)
    table["coverage"] = known_seconds / DAY.total_seconds()
    for state in KNOWN_STATES:
        table[f"seconds_{state}"] = seconds[state]
    table["downtime_seconds"] = seconds[DOWN]
    messaging_total = messaging.sum(axis=1)
    for value in MESSAGING:
        table[f"messaging_{value.lower()}_share"] = _ratio(messaging[value], messaging_total)
    if found is None:
        found = incident_days(incidents(obs, policy))
    for kind, column in (("down", "incidents"), ("blocked", "blocked_incidents")):
        touched = found[found["kind"] == kind].groupby(["config_id", "day"]).size()
        table[column] = touched.reindex(grid, fill_value=0).astype("int64")
    gaps = obs["max_gap"] if "max_gap" in obs else max_gaps(obs, policy)
    held = gaps.groupby([obs["config_id"], obs["day"]]).max().dt.total_seconds()
    table["max_gap_seconds"] = held.reindex(grid)
    recovered = found[
        (found["kind"] == "down") & ~found["ongoing"] & (found["end"].dt.floor("D") == found["day"])
    ]
    mttr = recovered.groupby(["config_id", "day"])["duration_seconds"].mean()
    table["mttr_seconds"] = mttr.reindex(grid)
    return table.reset_index()


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
    Computed in Arrow: a day of a large fleet has millions of check rows.
    """
    if isinstance(checks, pd.DataFrame):
        checks = pa.Table.from_pandas(checks, preserve_index=False)
    columns = ["config_id", "day", "check_name", "passed", "failed", "pass_rate"]
    if checks.num_rows == 0:
        return pd.DataFrame(columns=columns)
    checked_at = checks.column("checked_at").cast(TIMESTAMP)
    at = pc.coalesce(checked_at, checks.column("polled_at").cast(TIMESTAMP))
    wanted = pa.array([_utc(day) for day in days], TIMESTAMP)
    frame = pa.table(
        {
            "config_id": checks.column("config_id"),
            "day": _utc_midnight(at),
            "check_name": checks.column("check_name"),
            "checked_at": checked_at,
            "passed": checks.column("passed").cast(pa.bool_()),
        }
    )
    frame = frame.filter(pc.is_in(frame.column("day"), value_set=wanted)).unify_dictionaries()
    keys = ["config_id", "day", "check_name"]
    observed = frame.group_by([*keys, "passed"]).aggregate(
        [("checked_at", "count_distinct", pc.CountOptions(mode="all"))]
    )
    counts = to_pandas(observed)
    seen = counts["checked_at_count_distinct"]
    counts["failed"] = seen.where(counts["passed"].eq(False).fillna(False), 0)
    counts["passed"] = seen.where(counts["passed"].eq(True).fillna(False), 0)
    result = counts.groupby(keys, as_index=False)[["passed", "failed"]].sum()
    result["pass_rate"] = _ratio(result["passed"], result["passed"] + result["failed"])
    return result.sort_values(keys, ignore_index=True)[columns]


def _utc_midnight(at: pa.ChunkedArray) -> pa.ChunkedArray:
    """UTC timestamps floored to their day (integer arithmetic: far faster than
    `floor_temporal` on zoned timestamps; exact for times after 1970)."""
    micros = pc.cast(at, pa.int64())
    day = pc.multiply(pc.divide(micros, 86_400_000_000), 86_400_000_000)
    return pc.cast(day, TIMESTAMP)


def _utc(day: object) -> pd.Timestamp:
    stamp = pd.Timestamp(day)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _count(frame: pd.DataFrame, column: str, values: tuple, grid: pd.MultiIndex) -> pd.DataFrame:
    counts = frame.groupby(["config_id", "day", column]).size().unstack(column)
    return counts.reindex(index=grid, columns=list(values)).fillna(0)


def _sum(frame: pd.DataFrame, column: str, values: tuple, grid: pd.MultiIndex) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(0.0, index=grid, columns=list(values))
    totals = frame.groupby(["config_id", "day", column])["seconds"].sum().unstack(column)
    return totals.reindex(index=grid, columns=list(values)).fillna(0.0)


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    return (numerator / denominator).where(denominator > 0)
