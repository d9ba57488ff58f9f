"""Flattening: every documented and constructed body gives typed rows, never an exception."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from kapso_health.simulator.fleet import Fleet
from kapso_health.tasks import schemas
from kapso_health.tasks.flatten import (
    body_error,
    flatten_numbers,
    flatten_polls,
    meta_error_code,
    number_ids,
)
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.vocabulary import Outcome

BODIES = Path(__file__).parent.parent / "bodies"
BODY_FILES = sorted(BODIES.glob("*.json"))
POLLED_AT = datetime(2025, 1, 20, 18, 23, tzinfo=UTC)


def ok_result(body: object, config_id: str = "cfg-1") -> PollResult:
    raw = orjson.dumps(body)
    return PollResult(config_id, POLLED_AT, Outcome.OK, 200, 1, 12.5, body, raw)


def load(name: str) -> dict:
    return json.loads((BODIES / name).read_text())


@pytest.mark.parametrize("path", BODY_FILES, ids=[p.stem for p in BODY_FILES])
def test_every_body_gives_typed_rows(path: Path) -> None:
    body = json.loads(path.read_text())
    flat = flatten_polls([ok_result(body)], run_id="r1")
    for name, table in flat.tables().items():
        assert table.schema == schemas.TABLES[name], name
    assert flat.polls.num_rows == 1
    assert flat.raw.column("body").to_pylist() == [orjson.dumps(body)]
    checks = body.get("checks")
    expected_checks = len(checks) if isinstance(checks, dict) else 0
    assert flat.checks.num_rows == expected_checks
    assert flat.checks.column("check_name").to_pylist() == list(checks or {})
    entities = ((checks or {}).get("messaging_health") or {}).get("details", {}).get("entities")
    assert flat.entities.num_rows == (len(entities) if isinstance(entities, list) else 0)
    row = flat.polls.to_pylist()[0]
    assert row["status"] == (body["status"] if isinstance(body["status"], str) else "7")
    assert row["checks_total"] == expected_checks


def test_documented_degraded_body_fields() -> None:
    body = load("platform_degraded.json")
    row = flatten_polls([ok_result(body)], "r1").polls.to_pylist()[0]
    access = body["checks"]["phone_number_access"]["details"]
    assert row["checked_at"] == datetime(2025, 1, 15, 10, tzinfo=UTC)
    assert row["quality_rating"] == access["quality_rating"]
    assert row["phone_status"] == access["status"]
    assert row["throughput_tier"] == access["throughput_tier"]
    assert row["messaging_status"] == "LIMITED"
    assert row["can_send_message"] == "LIMITED"
    assert row["webhook_app_id"] == "123456789"
    assert row["webhook_subscribed_fields"] == ["messages"]
    assert row["webhook_verified_at"] is None
    assert row["passed_webhook_verified"] is False
    assert row["passed_phone_number_connection"] is None  # the check is absent
    assert row["checks_failed"] == 2


def test_legacy_integer_app_id_stays_exact_text_and_ms_timestamps_parse() -> None:
    row = flatten_polls([ok_result(load("legacy_healthy.json"))], "r1").polls.to_pylist()[0]
    assert row["webhook_app_id"] == "1234567890123456"
    assert row["webhook_subscribed_fields"] is None
    assert row["checked_at"] == datetime(2025, 1, 10, 8, 15, 30, 123000, tzinfo=UTC)
    assert row["webhook_verified_at"] == datetime(2025, 1, 9, 12, 0, 0, 456000, tzinfo=UTC)
    assert row["phone_number_id"] == "106540352242922"


def test_token_error_codes_and_retry_after() -> None:
    body = load("platform_unhealthy_token_backoff.json")
    flat = flatten_polls([ok_result(body)], "r1")
    codes = dict(
        zip(
            flat.checks["check_name"].to_pylist(),
            flat.checks["meta_error_code"].to_pylist(),
            strict=True,
        )
    )
    assert codes == {
        "phone_number_access": 190,
        "messaging_health": 190,
        "webhook_subscription": 190,
        "webhook_verified": None,
    }
    assert flat.polls["retry_after"].to_pylist() == [datetime(2025, 1, 20, 18, 27, 45, tzinfo=UTC)]
    failed = [row for row in flat.checks.to_pylist() if row["passed"] is False]
    assert len(failed) == 3 and all(row["details"] is None for row in failed)


def test_blocked_entity_errors_keep_codes_as_text() -> None:
    flat = flatten_polls([ok_result(load("platform_waba_blocked.json"))], "r1")
    entities = flat.entities.to_pylist()
    assert [e["entity_type"] for e in entities] == ["PHONE_NUMBER", "WABA", "BUSINESS"]
    waba = entities[1]
    assert waba["can_send_message"] == "BLOCKED"
    assert waba["errors"][0]["error_code"] == "141006"
    assert waba["errors"][0]["possible_solution"].startswith("Add a valid payment")
    assert entities[0]["additional_info"] == ["Your WhatsApp Business Account is blocked."]


def test_error_body_has_status_and_error_but_no_checks() -> None:
    flat = flatten_polls([ok_result(load("error_body.json"))], "r1")
    row = flat.polls.to_pylist()[0]
    assert (row["status"], row["error"]) == ("error", "Service temporarily unavailable")
    assert row["checks_total"] == 0
    assert flat.checks.num_rows == 0


def test_unknown_checks_null_passed_and_odd_values_are_kept() -> None:
    flat = flatten_polls([ok_result(load("constructed_odd_shapes.json"))], "r1")
    checks = {row["check_name"]: row for row in flat.checks.to_pylist()}
    assert checks["business_verification"]["meta_error_code"] == 100
    assert json.loads(checks["business_verification"]["details"]) == {"level": "unverified"}
    assert checks["phone_number_connection"]["passed"] is None
    assert checks["webhook_subscription"]["details"] is None
    assert checks["webhook_verified"]["details"] == "{}"
    assert checks["weird_scalar_check"]["details"] == "true"
    row = flat.polls.to_pylist()[0]
    assert row["quality_rating"] == "PURPLE"
    assert row["phone_status"] == "SOMETHING_NEW"
    assert row["connection_status"] == "UNKNOWN"
    assert row["passed_token_validity"] is True
    assert flat.entities.num_rows == 0


def test_wrong_types_become_text_or_null() -> None:
    flat = flatten_polls([ok_result(load("constructed_wrong_types.json"))], "r1")
    row = flat.polls.to_pylist()[0]
    assert row["checked_at"] is None and row["retry_after"] is None
    assert row["passed_phone_number_access"] is None  # "true" is not a boolean
    assert row["phone_number_id"] == "106540352242922"
    assert row["webhook_subscribed"] is None
    assert row["webhook_subscribed_fields"] == ["messages"]
    assert row["messaging_status"] == "SOME_NEW_STATE"
    entities = flat.entities.to_pylist()
    assert entities[0]["entity_id"] == "42"
    assert entities[0]["errors"][0]["error_code"] == "131031"
    assert entities[0]["errors"][1]["error_description"] == "plain string error"
    assert entities[1]["additional_info"] == ["not an entity"]
    assert entities[2]["additional_info"] == ["a single string"]


def test_naive_and_offset_timestamps_are_utc() -> None:
    bodies = [
        load("constructed_checks_null.json"),
        {"status": "healthy", "timestamp": "2025-03-01T02:00:00+02:00"},
    ]
    polls = flatten_polls([ok_result(b, f"n{i}") for i, b in enumerate(bodies)], "r1").polls
    assert polls["checked_at"].to_pylist() == [datetime(2025, 3, 1, tzinfo=UTC)] * 2


@pytest.mark.parametrize("body", [None, [], "text", 3, {"timestamp": None}, {"checks": []}])
def test_non_object_and_empty_bodies_still_give_a_poll_row(body: object) -> None:
    flat = flatten_polls([ok_result(body)], "r1")
    assert flat.polls.num_rows == 1
    assert flat.polls["outcome"].to_pylist() == ["ok"]


def test_failed_polls_give_a_row_with_outcome_and_no_checks() -> None:
    results = [
        PollResult("a", POLLED_AT, Outcome.TIMEOUT, None, 4, None, None, None, "timed out"),
        PollResult(
            "b",
            POLLED_AT,
            Outcome.NOT_FOUND,
            404,
            1,
            3.0,
            {"error": "x"},
            b'{"error":"x"}',
            "not found",
        ),
        PollResult("c", POLLED_AT, Outcome.SKIPPED, retry_after=POLLED_AT + timedelta(minutes=4)),
    ]
    flat = flatten_polls(results, "r1")
    rows = flat.polls.to_pylist()
    assert [r["outcome"] for r in rows] == ["timeout", "not_found", "skipped"]
    assert [r["error"] for r in rows] == ["timed out", "not found", None]
    assert rows[2]["retry_after"] == POLLED_AT + timedelta(minutes=4)
    assert all(r["status"] is None and r["checks_total"] is None for r in rows)
    assert flat.checks.num_rows == 0 and flat.entities.num_rows == 0
    assert flat.raw.num_rows == 3


def test_numeric_looking_ids_stay_strings() -> None:
    config_id = "0106540352242922"
    polls = flatten_polls([ok_result(load("legacy_healthy.json"), config_id)], "r1").polls
    assert polls["config_id"].to_pylist() == [config_id]


def test_repeated_timestamp_is_marked_as_repeat() -> None:
    body = load("legacy_healthy.json")
    seen = datetime(2025, 1, 10, 8, 15, 30, 123000, tzinfo=UTC)
    results = [ok_result(body, "same"), ok_result(body, "other"), ok_result(body, "newer")]
    previous = {"same": seen, "newer": seen - timedelta(minutes=3)}
    polls = flatten_polls(results, "r1", previous).polls
    assert polls["is_repeat"].to_pylist() == [True, False, False]


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('Meta Graph API error: 400 - {"error" => {"code" => 190}}', 190),
        ('{"error": {"code": 131031, "message": "x"}}', 131031),
        ("no code here", None),
        (None, None),
    ],
)
def test_meta_error_code(text: str | None, code: int | None) -> None:
    assert meta_error_code(text) == code


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"error": "Invalid or missing API key"}, "Invalid or missing API key"),
        ({"error": {"message": "gone"}}, "gone"),
        ({"error": {"code": 5}}, '{"code":5}'),
        ({"status": "healthy"}, None),
        ("<html>", None),
    ],
)
def test_body_error_variants(body: object, error: str | None) -> None:
    assert body_error(body) == error


def test_flatten_numbers_both_flavours() -> None:
    listed_at = datetime(2025, 1, 1, tzinfo=UTC)
    platform = [
        {
            "id": "106540352242922",
            "internal_id": "3f1c",
            "name": "Main",
            "customer_id": None,
            "business_account_id": "102290129340398",
            "is_coexistence": False,
            "whatsapp_business_manager_messaging_limit": "TIER_1K",
        }
    ]
    legacy = [
        {"id": "3f1c", "phone_number_id": "106540352242922", "name": "Main", "customer_id": "cus-1"}
    ]
    p = flatten_numbers(platform, "platform", "r1", listed_at).to_pylist()[0]
    lg = flatten_numbers(legacy, "legacy", "r1", listed_at).to_pylist()[0]
    ids = ("config_id", "internal_id", "phone_number_id")
    # One key per number across flavours: Kapso's config id and Meta's phone number id.
    assert (
        tuple(p[c] for c in ids)
        == tuple(lg[c] for c in ids)
        == (
            "3f1c",
            "3f1c",
            "106540352242922",
        )
    )
    assert p["customer_id"] is None and lg["customer_id"] == "cus-1"
    assert p["business_account_id"] == "102290129340398"


def test_a_legacy_and_a_platform_poll_of_one_number_join_on_phone_number_id() -> None:
    fleet = Fleet(3, seed=4)
    number = fleet.numbers[0]
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    flat = {}
    for flavour in ("legacy", "platform"):
        listing = flatten_numbers(fleet.list_page(flavour, 1, 100)["data"], flavour, "r", now)
        body = fleet.health(number, flavour, now.timestamp())
        body["checks"]["phone_number_access"]["details"].pop("id")  # ids can be missing
        polled = PollResult(number.id_for(flavour), now, Outcome.OK, 200, 1, 50.0, body)
        flat[flavour] = flatten_polls(
            [polled], "r", flavour=flavour, known_ids=number_ids(listing, flavour)
        )
    legacy, platform = (flat[f].polls.to_pandas() for f in ("legacy", "platform"))
    joined = legacy.merge(platform, on="phone_number_id", suffixes=("_legacy", "_platform"))
    assert len(joined) == 1
    assert joined["phone_number_id"][0] == number.phone_number_id
    assert joined["config_id_legacy"][0] == joined["config_id_platform"][0] == number.config_id
    for name in ("checks", "entities", "raw"):
        for table in (flat["legacy"], flat["platform"]):
            rows = getattr(table, name)
            assert set(rows.column("phone_number_id").to_pylist()) <= {number.phone_number_id}
            assert set(rows.column("config_id").to_pylist()) <= {number.config_id}
