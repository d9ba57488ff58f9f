"""One vocabulary: the report's `worse` and the emitted events agree on every transition."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest

from kapso_health.reports.quality import transitions
from kapso_health.tasks.alerts import STATE_COLUMNS, state_changes
from kapso_health.tasks.vocabulary import ASPECT_OF_COLUMN, RATINGS, TROUBLED_PHONE_STATUSES

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
# Every phone status the API documents, and one it does not (enums are open sets).
PHONE_STATUSES = (
    "CONNECTED", "DISCONNECTED", "FLAGGED", "RESTRICTED", "PENDING", "OFFLINE", "BANNED",
    "DELETED", "RATE_LIMITED", "PAUSED", "UNKNOWN", "SOMETHING_NEW",
)  # fmt: skip
VALUES = {"quality_rating": (*RATINGS, "PURPLE"), "phone_status": PHONE_STATUSES}
PAIRS = [
    (column, before, after)
    for column, values in VALUES.items()
    for before, after in itertools.permutations(values, 2)
]


def _report_worse(column: str, before: str, after: str) -> bool:
    obs = pd.DataFrame(
        {
            "config_id": ["A", "A"],
            "at": pd.to_datetime([AT, AT + timedelta(minutes=15)], utc=True),
            "day": pd.to_datetime([AT.date(), AT.date()]).tz_localize("UTC"),
            column: pd.array([before, after], dtype="string"),
        }
    )
    found = transitions(obs, column)
    assert len(found) == 1  # the value changed, so the report lists it
    return bool(found["worse"].iloc[0])


def _event(column: str, before: str, after: str) -> str | None:
    row = {c: None for c in STATE_COLUMNS} | {column: after}
    polls = pa.Table.from_pylist(
        [{"config_id": "A", "outcome": "ok", "is_repeat": False, "checked_at": AT, **row}]
    )
    changes = state_changes({"A": {column: before}}, polls)
    assert all(change.aspect == ASPECT_OF_COLUMN[column] for change in changes)
    return changes[0].event if changes else None


@pytest.mark.parametrize(("column", "before", "after"), PAIRS)
def test_report_worse_and_the_worsened_event_agree(column: str, before: str, after: str) -> None:
    assert _report_worse(column, before, after) == (
        _event(column, before, after) == "kapso.number.worsened"
    )


def test_every_troubled_phone_status_is_a_worsening_from_connected() -> None:
    for status in TROUBLED_PHONE_STATUSES:
        assert _event("phone_status", "CONNECTED", status) == "kapso.number.worsened"
        assert _report_worse("phone_status", "CONNECTED", status)
