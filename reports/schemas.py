"""Explicit Arrow schemas of the report tables (`<root>/reports/<name>/date=YYYY-MM-DD/`)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from kapso_health.tasks.schemas import TIMESTAMP
from kapso_health.tasks.vocabulary import RATINGS


def _schema(*groups: list[tuple[str, pa.DataType]]) -> pa.Schema:
    return pa.schema([field for group in groups for field in group])


def _typed(kind: pa.DataType, *names: str) -> list[tuple[str, pa.DataType]]:
    return [(name, kind) for name in names]


NUMBER_DAY = [("config_id", pa.string()), ("day", pa.date32())]
NUMBER_DAY_PROJECT = [*NUMBER_DAY, ("project", pa.string())]
ROLLUP = [
    *_typed(pa.int64(), "numbers", "numbers_polled"),
    *_typed(pa.float64(), "mean_availability_time", "mean_availability_samples", "mean_coverage"),
    *_typed(pa.int64(), "numbers_with_incidents", "incidents"),
    ("downtime_seconds", pa.float64()),
    ("downgrades", pa.int64()),
    *_typed(pa.int64(), *(f"numbers_{r.lower()}" for r in RATINGS)),
]

REPORT_SCHEMAS: dict[str, pa.Schema] = {
    "availability_daily": _schema(
        NUMBER_DAY_PROJECT,
        _typed(pa.int64(), "polls_up", "polls_down", "polls_degraded", "polls_unknown"),
        _typed(
            pa.float64(),
            "availability_samples",
            "availability_time",
            "coverage",
            "seconds_up",
            "seconds_degraded",
            "seconds_down",
            "downtime_seconds",
            "messaging_available_share",
            "messaging_limited_share",
            "messaging_blocked_share",
        ),
        _typed(pa.int64(), "incidents", "blocked_incidents"),
        _typed(pa.float64(), "mttr_seconds", "max_gap_seconds"),
    ),
    "quality_daily": _schema(
        NUMBER_DAY_PROJECT,
        _typed(pa.float64(), *(f"share_{r.lower()}" for r in RATINGS)),
        _typed(pa.string(), "worst_rating", "last_rating"),
        _typed(pa.int64(), "rating_changes", "downgrades", "phone_status_changes"),
        [("last_phone_status", pa.string())],
    ),
    "incidents": _schema(
        _typed(pa.string(), "incident_id", "kind", "config_id"),
        _typed(TIMESTAMP, "start", "end"),
        [
            ("ongoing", pa.bool_()),
            ("duration_seconds", pa.float64()),
            ("day", pa.date32()),
            ("seconds_in_day", pa.float64()),
        ],
    ),
    "quality_transitions": _schema(
        [("config_id", pa.string()), ("at", TIMESTAMP), ("day", pa.date32())],
        _typed(pa.string(), "field", "from_value", "to_value"),
        [("worse", pa.bool_())],
    ),
    "check_pass_rates": _schema(
        NUMBER_DAY,
        [("check_name", pa.string())],
        _typed(pa.int64(), "passed", "failed"),
        [("pass_rate", pa.float64())],
    ),
    "fleet_daily": _schema([("day", pa.date32())], ROLLUP),
    "project_daily": _schema([("day", pa.date32()), ("project", pa.string())], ROLLUP),
    "customer_daily": _schema([("day", pa.date32()), ("customer_id", pa.string())], ROLLUP),
    "waba_daily": _schema([("day", pa.date32()), ("business_account_id", pa.string())], ROLLUP),
}


def to_arrow(name: str, frame: pd.DataFrame) -> pa.Table:
    """A report frame (with `day` as UTC midnight) as an Arrow table in its explicit schema."""
    schema = REPORT_SCHEMAS[name]
    frame = frame.assign(day=pd.to_datetime(frame["day"], utc=True).dt.date)
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
