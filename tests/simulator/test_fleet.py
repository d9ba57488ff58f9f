"""The simulated fleet: deterministic, cached like Kapso, and covering every documented variant."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from kapso_health.simulator.fleet import CACHE_SECONDS, Fleet
from kapso_health.tasks.flatten import flatten_polls
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.vocabulary import Outcome

T0 = datetime(2026, 3, 1, tzinfo=UTC).timestamp()


def bodies(fleet: Fleet, flavour: str, times: list[float]) -> list[dict]:
    return [
        fleet.health(n, flavour, t) for n in fleet.numbers if n.profile != "deleted" for t in times
    ]


def test_same_seed_same_fleet_and_bodies() -> None:
    a, b = Fleet(50, seed=9), Fleet(50, seed=9)
    assert [n.config_id for n in a.numbers] == [n.config_id for n in b.numbers]
    assert bodies(a, "platform", [T0]) == bodies(b, "platform", [T0])
    assert [n.config_id for n in Fleet(50, seed=10).numbers] != [n.config_id for n in a.numbers]


def test_ids_look_like_kapso_ids() -> None:
    for number in Fleet(100).numbers:
        assert len(number.config_id) == 36 and number.config_id.count("-") == 4
        assert number.phone_number_id.isdigit() and len(number.phone_number_id) >= 15


def test_bodies_repeat_within_kapsos_cache_window() -> None:
    fleet = Fleet(40)
    number = next(n for n in fleet.numbers if n.profile == "healthy")
    first = fleet.health(number, "legacy", T0)
    checked = datetime.fromisoformat(first["timestamp"]).timestamp()
    assert fleet.health(number, "legacy", checked + CACHE_SECONDS - 1) == first
    later = fleet.health(number, "legacy", checked + CACHE_SECONDS)
    assert later["timestamp"] != first["timestamp"]


def test_every_documented_variant_appears_and_flattens() -> None:
    fleet = Fleet(400, seed=1)
    times = [T0 + hour * 3600 for hour in range(0, 48, 6)]
    seen = {"legacy": bodies(fleet, "legacy", times), "platform": bodies(fleet, "platform", times)}
    everything = seen["legacy"] + seen["platform"]
    statuses = {b["status"] for b in everything}
    assert statuses == {"healthy", "degraded", "unhealthy", "error"}
    platform, legacy = seen["platform"], seen["legacy"]
    checks = [b.get("checks") or {} for b in everything]
    assert any("retry_after" in b for b in platform) and not any("retry_after" in b for b in legacy)
    assert any(c.get("phone_number_connection", {}).get("passed", False) is None for c in checks)
    assert any(
        c.get("phone_number_connection", {}).get("details", {}).get("status") == "DISCONNECTED"
        for c in checks
    )
    assert any("business_verification" in c for c in checks)
    assert any("token_validity" in c for c in checks)
    assert any(c.get("webhook_subscription", {}).get("details", 1) is None for c in checks)
    assert any(b"141006" in orjson.dumps(c) for c in checks)
    assert any(b'"code\\" => 190' in orjson.dumps(c) or b"190" in orjson.dumps(c) for c in checks)
    legacy_apps = {
        type(c["webhook_subscription"]["details"]["app_id"])
        for b in legacy
        if (c := b.get("checks")) and c["webhook_subscription"].get("details")
    }
    assert legacy_apps == {int}
    entity_counts = {
        len(c["messaging_health"]["details"]["entities"])
        for c in checks
        if "messaging_health" in c and c["messaging_health"].get("details")
    }
    assert 1 in entity_counts and 4 in entity_counts
    ratings = {
        c["phone_number_access"].get("details", {}).get("quality_rating")
        for c in checks
        if "phone_number_access" in c
    }
    assert {"GREEN", "YELLOW", "RED", "NA"} <= ratings
    results = [
        PollResult(str(i), datetime.now(UTC), Outcome.OK, 200, 1, 1.0, b)
        for i, b in enumerate(everything)
    ]
    flat = flatten_polls(results, "r")
    assert flat.polls.num_rows == len(everything)
    assert flat.polls["checked_at"].null_count == 0


def test_quality_ratings_drift_over_time() -> None:
    fleet = Fleet(30, seed=2)
    days = [T0 + day * 86400 for day in range(30)]
    changed = 0
    for number in fleet.numbers:
        if number.profile in ("deleted", "check_error", "token_backoff"):
            continue
        found = [fleet.health(number, "platform", t).get("checks") for t in days]
        ratings = {c["phone_number_access"]["details"]["quality_rating"] for c in found if c}
        changed += len(ratings) > 1
    assert changed >= 10


def test_list_pages_cover_every_listed_number_once() -> None:
    fleet = Fleet(230)
    first = fleet.list_page("platform", 1, 100)
    pages = [first] + [
        fleet.list_page("platform", p, 100) for p in range(2, first["meta"]["total_pages"] + 1)
    ]
    ids = [item["id"] for page in pages for item in page["data"]]
    listed = [n.phone_number_id for n in fleet.numbers if n.profile != "deleted"]
    assert ids == listed and first["meta"]["total_count"] == len(listed)
