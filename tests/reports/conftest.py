"""Shared by the report tests: a two-number, two-day history and its report tables, built by
the report's own composition (`reports.build`) from an in-memory history reader."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa
import pytest

from kapso_health.reports.build import build_reports
from kapso_health.reports.timeline import Policy
from kapso_health.tasks.schemas import TABLES

DAYS = [pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-03-02", tz="UTC")]


def poll(number: str, at: str, status: str, rating: str) -> dict:
    moment = pd.Timestamp(at, tz="UTC")
    return {
        "config_id": number,
        "polled_at": moment,
        "checked_at": moment,
        "outcome": "ok",
        "status": status,
        "quality_rating": rating,
        "can_send_message": "AVAILABLE",
        "phone_status": "CONNECTED",
    }


HISTORY = pd.DataFrame(
    [
        poll("good", "2026-03-01 10:00", "healthy", "GREEN"),
        poll("good", "2026-03-02 10:00", "healthy", "GREEN"),
        poll("bad<script>", "2026-03-01 10:00", "unhealthy", "GREEN"),
        poll("bad<script>", "2026-03-01 10:15", "unhealthy", "RED"),
        poll("bad<script>", "2026-03-02 10:00", "healthy", "RED"),
    ]
)


class FrameHistory:
    """A `HistoryReader` over in-memory polls (other tables empty); the range is not filtered:
    the test histories lie inside it."""

    def __init__(self, polls: pd.DataFrame) -> None:
        self.polls = polls

    def read_arrow(
        self,
        name: str,
        start: date | None = None,
        end: date | None = None,
        columns: list[str] | None = None,
        dictionary: bool = False,
    ) -> pa.Table:
        schema = TABLES[name]
        rows = self.polls.to_dict("records") if name == "polls" else []
        table = pa.Table.from_pylist(rows, schema=schema)  # absent columns are null
        return table.select(columns or schema.names)


def report_tables(
    polls: pd.DataFrame = HISTORY, days: list[pd.Timestamp] = DAYS, policy: Policy | None = None
) -> dict[str, pd.DataFrame]:
    return build_reports(FrameHistory(polls), [day.date() for day in days], policy or Policy())


@pytest.fixture
def tables() -> dict[str, pd.DataFrame]:
    return report_tables()


@pytest.fixture
def build():
    """`report_tables` for a test's own polls, days and policy."""
    return report_tables


@pytest.fixture
def two_projects() -> dict[str, pd.DataFrame]:
    """The same history, its two numbers in two Kapso projects."""
    owner = {"good": "alpha", "bad<script>": "beta"}
    return report_tables(HISTORY.assign(project=HISTORY["config_id"].map(owner)))
