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


def observation(number: str, at: str, status: str, **fields: object) -> dict:
    """A polls row of an `ok` poll (AVAILABLE, GREEN, CONNECTED, webhook verified unless said)."""
    moment = pd.Timestamp(at, tz="UTC")
    return {
        "config_id": number,
        "polled_at": moment,
        "checked_at": moment,
        "outcome": "ok",
        "status": status,
        "quality_rating": "GREEN",
        "can_send_message": "AVAILABLE",
        "phone_status": "CONNECTED",
        "passed_webhook_verified": True,
        **fields,
    }


def poll(number: str, at: str, status: str, rating: str) -> dict:
    return observation(number, at, status, quality_rating=rating)


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

    def __init__(self, polls: pd.DataFrame, **others: list[dict]) -> None:
        self.frames = {"polls": polls, **others}

    def read_arrow(
        self,
        name: str,
        start: date | None = None,
        end: date | None = None,
        columns: list[str] | None = None,
        dictionary: bool = False,
    ) -> pa.Table:
        schema = TABLES[name]
        found = self.frames.get(name, [])
        rows = found.to_dict("records") if isinstance(found, pd.DataFrame) else found
        table = pa.Table.from_pylist(rows, schema=schema)  # absent columns are null
        return table.select(columns or schema.names)


def report_tables(
    polls: pd.DataFrame = HISTORY,
    days: list[pd.Timestamp] = DAYS,
    policy: Policy | None = None,
    **others: list[dict],
) -> dict[str, pd.DataFrame]:
    """The report of `days` from `polls` (and `checks`, `entities`, `numbers` when given)."""
    history = FrameHistory(polls, **others)
    return build_reports(history, [day.date() for day in days], policy or Policy())


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


ACME = {"verified_name": "Acme Corp", "display_phone_number": "+1 555-123-4567"}
TOKEN_ERROR = (
    'Meta Graph API error: 400 - {"error" => {"message" => "Invalid OAuth access token", '
    '"code" => 190}}'
)
PAYMENT = "Add a valid payment method to the WhatsApp Business Account"
TROUBLE_DAY = [pd.Timestamp("2026-03-02", tz="UTC")]


def trouble_history() -> dict:
    """Four numbers over 1-2 March, the report on 2 March: acme goes down (token) at 09:00,
    blocked loses messaging (WABA 141006) at 10:00, limited is LIMITED with its webhook
    unverified since 1 March 20:00 (its last good observation 19:00), mended recovers; good
    stays healthy. Acme's customer comes from the numbers table only."""
    bad = {"can_send_message": "BLOCKED"}
    limited = {"can_send_message": "LIMITED", "passed_webhook_verified": False}
    polls = [
        observation("acme", "2026-03-01 10:00", "healthy", **ACME),
        observation("acme", "2026-03-02 08:00", "healthy", **ACME),
        observation("acme", "2026-03-02 09:00", "unhealthy"),  # no details: access failed
        observation("acme", "2026-03-02 12:00", "unhealthy"),
        observation("blocked", "2026-03-01 10:00", "healthy"),
        observation("blocked", "2026-03-02 10:00", "unhealthy", **bad),
        observation("blocked", "2026-03-02 12:00", "unhealthy", **bad),
        observation("limited", "2026-03-01 19:00", "healthy"),
        observation("limited", "2026-03-01 20:00", "degraded", **limited),
        observation("limited", "2026-03-02 12:00", "degraded", **limited),
        observation("mended", "2026-03-01 12:00", "unhealthy"),
        observation("mended", "2026-03-02 12:00", "healthy"),
        observation("good", "2026-03-01 12:00", "healthy"),
        observation("good", "2026-03-02 12:00", "healthy"),
    ]
    at = pd.Timestamp("2026-03-02 12:00", tz="UTC")
    checks = [
        {"config_id": "acme", "polled_at": at, "check_name": "phone_number_access",
         "passed": False, "error": TOKEN_ERROR, "meta_error_code": 190},
        {"config_id": "acme", "polled_at": at, "check_name": "webhook_verified", "passed": True},
        {"config_id": "acme", "polled_at": at - pd.Timedelta(hours=3),
         "check_name": "messaging_health", "passed": False, "error": "an older failure"},
        {"config_id": "blocked", "polled_at": at, "check_name": "messaging_health",
         "passed": False},
    ]  # fmt: skip
    entities = [
        {"config_id": "blocked", "polled_at": at, "entity_type": "WABA", "entity_id": "w-1",
         "can_send_message": "BLOCKED", "errors": [{"error_code": "141006",
         "error_description": "Payment method issue", "possible_solution": PAYMENT}]},
        {"config_id": "blocked", "polled_at": at, "entity_type": "APP", "entity_id": "a-1",
         "can_send_message": "AVAILABLE", "errors": []},
        {"config_id": "limited", "polled_at": at, "entity_type": "PHONE_NUMBER",
         "entity_id": "p-1", "can_send_message": "LIMITED",
         "additional_info": ["Replies inside the 24-hour window still work."]},
    ]  # fmt: skip
    numbers = [
        {"config_id": "acme", "listed_at": at, "name": "acme-line", "customer_id": "cus-42"},
        {"config_id": "blocked", "listed_at": at, "name": "Blocked Ltd",
         "display_phone_number": "+44 20 7946 0000"},
    ]  # fmt: skip
    return {"polls": polls, "checks": checks, "entities": entities, "numbers": numbers}


@pytest.fixture
def trouble() -> dict[str, pd.DataFrame]:
    """The report of 2 March over `trouble_history()`."""
    return report_tables(days=TROUBLE_DAY, **trouble_history())
