"""Which state changes become worsened / recovered events (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa

from kapso_health.tasks.alerts import STATE_COLUMNS, state_changes

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
HEALTHY = {
    "status": "healthy",
    "quality_rating": "GREEN",
    "can_send_message": "AVAILABLE",
    "passed_webhook_verified": True,
    "phone_status": "CONNECTED",
}


def polls(*rows: dict) -> pa.Table:
    full = [
        {"outcome": "ok", "is_repeat": False, "checked_at": AT, **HEALTHY, **row} for row in rows
    ]
    columns = ["config_id", "outcome", "is_repeat", "checked_at", *STATE_COLUMNS]
    return pa.Table.from_pylist([{c: r.get(c) for c in columns} for r in full])


def test_each_worse_aspect_is_one_worsened_change_with_both_states() -> None:
    previous = {"A": HEALTHY}
    new = polls(
        {
            "config_id": "A",
            "status": "degraded",
            "quality_rating": "YELLOW",
            "can_send_message": "BLOCKED",
            "passed_webhook_verified": False,
            "phone_status": "FLAGGED",
        }
    )
    changes = {c.aspect: c for c in state_changes(previous, new)}
    assert set(changes) == {
        "status",
        "quality_rating",
        "messaging",
        "webhook_verified",
        "phone_status",
    }
    assert all(c.worse and c.event == "kapso.number.worsened" for c in changes.values())
    assert (changes["status"].before, changes["status"].after) == ("healthy", "degraded")
    assert (changes["messaging"].before, changes["messaging"].after) == ("AVAILABLE", "BLOCKED")
    assert changes["phone_status"].checked_at == AT


def test_recovery_is_its_own_event_and_sideways_moves_are_none() -> None:
    previous = {
        "A": {**HEALTHY, "status": "unhealthy", "quality_rating": "RED"},
        "B": {**HEALTHY, "phone_status": "FLAGGED"},
    }
    new = polls(
        {"config_id": "A", "status": "healthy", "quality_rating": "RED"},
        {"config_id": "B", "phone_status": "RESTRICTED"},  # troubled to troubled: no news
    )
    changes = state_changes(previous, new)
    assert [(c.config_id, c.aspect, c.worse, c.event) for c in changes] == [
        ("A", "status", False, "kapso.number.recovered")
    ]


def test_no_change_without_two_known_observations() -> None:
    previous = {"A": HEALTHY, "B": {**HEALTHY, "status": None, "quality_rating": "NA"}}
    new = polls(
        {"config_id": "A", "status": "unhealthy", "outcome": "timeout"},  # not an observation
        {"config_id": "A", "status": "unhealthy", "is_repeat": True},  # a cached repeat
        {"config_id": "A", "status": "error"},  # Kapso could not check: unknown
        {"config_id": "B", "status": "unhealthy", "quality_rating": "RED"},  # unknown before
        {"config_id": "C", "status": "unhealthy"},  # first time seen
    )
    assert state_changes(previous, new) == []
