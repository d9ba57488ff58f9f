"""The collect-health flow under the Prefect test harness, against the simulator over HTTP."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pytest
from prefect.client.orchestration import get_client

from kapso_health.flows.collect import collect_health
from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import SimulatorConfig
from kapso_health.tasks.alerts import state_changes
from kapso_health.tasks.client import KapsoAuthError
from kapso_health.tasks.storage import ParquetStore
from tests.prefect_events import stored_events

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]

FAST = dict(rate_per_second=200, rate_per_minute=12_000, max_in_flight=32, timeout_seconds=1.0)


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = "sk-integration-4f1d2c"
    monkeypatch.setenv("KAPSO_API_KEY", key)
    return key


async def test_explicit_platform_ids_keep_text_and_unknown_ids_are_not_found(
    tmp_path: Path, api_key: str
) -> None:
    fleet = Fleet(30, seed=5)
    ids = [n.phone_number_id for n in fleet.numbers[:20]]
    unknown = "0999999999999999999"
    with running_simulator(
        SimulatorConfig(numbers=30, seed=5, rate_per_second=None, rate_per_minute=None)
    ) as simulator:
        summary = await collect_health(
            ids=[*ids, unknown, ids[0], f" {ids[1]} "],
            base_url=simulator.base_url("platform"),
            flavour="platform",
            storage=str(tmp_path),
            **FAST,
        )
        counts = simulator.stats()["counts"]
    # the preflight (one cheap request), then one listing page for the ids' Kapso config ids
    assert counts["list_requests"] == 2
    assert counts["health_requests"] >= 21
    polls = ParquetStore(str(tmp_path)).read("polls").set_index("phone_number_id")
    assert sorted(polls.index) == sorted([*ids, unknown])
    # Kapso's config id comes from a listing made for it; a number no listing has keeps its
    # phone number id (deleted numbers are not listed either)
    listed = {n.phone_number_id: n.config_id for n in fleet.numbers if n.profile != "deleted"}
    assert polls["config_id"].to_dict() == {i: listed.get(i, i) for i in polls.index}
    assert (polls.loc[unknown, "outcome"], polls.loc[unknown, "http_status"]) == ("not_found", 404)
    deleted = {n.phone_number_id for n in fleet.numbers[:20] if n.profile == "deleted"}
    assert set(polls.index[polls["outcome"] == "not_found"]) == {unknown, *deleted}
    assert summary["numbers"] == 21


async def test_second_run_marks_repeats_and_skips_numbers_in_backoff(
    tmp_path: Path, api_key: str
) -> None:
    config = SimulatorConfig(numbers=200, seed=3, rate_per_second=None, rate_per_minute=None)
    with running_simulator(config) as simulator:
        kwargs = dict(
            base_url=simulator.base_url("platform"),
            flavour="platform",
            storage=str(tmp_path),
            **FAST,
        )
        await collect_health(run_id="first", **kwargs)
        second_started = time.time()
        await collect_health(run_id="second", **kwargs)
    polls = ParquetStore(str(tmp_path)).read("polls")
    first = polls[polls["run_id"] == "first"].set_index("config_id")
    second = polls[polls["run_id"] == "second"].set_index("config_id")
    backing_off = set(
        first.index[first["retry_after"].dt.tz_convert(None).astype("int64") / 1e6 > second_started]
    )
    assert backing_off, "the fleet should have numbers in Kapso's backoff"
    assert set(second.index[second["outcome"] == "skipped"]) == backing_off
    polled = second[second["outcome"] == "ok"]
    same_body = polled["checked_at"] == first.loc[polled.index, "checked_at"]
    assert (polled["is_repeat"] == same_body).all()
    assert polled["is_repeat"].any()
    assert not first["is_repeat"].any()


REFUSING = SimulatorConfig(
    numbers=500, api_key="the-right-key", rate_per_second=None, rate_per_minute=None
)


async def collect_refused(tmp_path: Path, **options: object) -> tuple[str, dict]:
    """collect-health against a simulator refusing the key: the error text, the counts."""
    with running_simulator(REFUSING) as simulator:
        with pytest.raises(KapsoAuthError) as raised:
            await collect_health(
                ids=[n.config_id for n in Fleet(500).numbers],
                base_url=simulator.base_url(),
                storage=str(tmp_path),
                **FAST,
                **options,
            )
        return str(raised.value), simulator.stats()["counts"]


async def test_a_refused_key_is_found_by_the_preflight_before_any_health_request(
    tmp_path: Path, api_key: str
) -> None:
    raised, counts = await collect_refused(tmp_path)
    assert (counts.get("list_requests", 0), counts.get("health_requests", 0)) == (1, 0)
    assert api_key not in raised and "Kapso refused the API key (HTTP 401" in raised
    assert ParquetStore(str(tmp_path)).files("polls") == []


async def test_a_key_refused_mid_run_stops_the_run_at_once(tmp_path: Path, api_key: str) -> None:
    # check_first=False: as if the key were revoked after the preflight
    raised, counts = await collect_refused(tmp_path, check_first=False)
    requests = counts.get("health_requests", 0)
    assert requests <= FAST["max_in_flight"]  # no retry storm: only what was already in flight
    assert api_key not in raised and "401" in raised
    polls = ParquetStore(str(tmp_path)).read("polls")  # yet every number has its row
    assert len(polls) == 500 and set(polls["outcome"]) == {"unauthorized"}
    assert (polls["http_status"] == 401).sum() == requests


async def test_an_empty_project_gives_an_empty_correct_result(tmp_path: Path, api_key: str) -> None:
    with running_simulator(SimulatorConfig(numbers=0)) as simulator:
        summary = await collect_health(base_url=simulator.base_url(), storage=str(tmp_path), **FAST)
    assert (summary["numbers"], summary["outcomes"], summary["requests"]) == (0, {}, 0)
    assert ParquetStore(str(tmp_path)).read("polls").empty


async def test_state_changes_between_runs_become_events(tmp_path: Path, api_key: str) -> None:
    config = SimulatorConfig(numbers=60, seed=5, rate_per_second=None, rate_per_minute=None)
    started = datetime.now(UTC)  # the server also holds the events of earlier tests' runs
    with running_simulator(config) as simulator:
        first = await collect_health(base_url=simulator.base_url(), storage=str(tmp_path), **FAST)
        simulator.advance_clock(6 * 3600)  # states drift hourly, ratings every six hours
        second = await collect_health(base_url=simulator.base_url(), storage=str(tmp_path), **FAST)
    polls = ParquetStore(str(tmp_path)).read_arrow("polls")
    runs = {
        run: polls.filter(pc.equal(polls["run_id"], run))
        for run in (first["run_id"], second["run_id"])
    }
    before = {
        row["config_id"]: row for row in runs[first["run_id"]].to_pylist() if row["outcome"] == "ok"
    }
    expected = state_changes(before, runs[second["run_id"]])
    assert len(expected) > 0 and any(c.worse for c in expected)
    assert first["state_change_events"] == {}
    assert second["state_change_events"] == dict(Counter(c.event for c in expected))
    async with get_client() as client:
        events = await stored_events(
            client, prefix="kapso.number.", at_least=len(expected), since=started
        )
    seen = sorted(
        (
            e.resource["prefect.resource.id"],
            e.payload["aspect"],
            e.payload["from"],
            e.payload["to"],
            e.event,
        )
        for e in events
    )
    assert seen == sorted(
        (f"kapso.number.{c.config_id}", c.aspect, c.before, c.after, c.event) for c in expected
    )
    roles = {r["prefect.resource.role"] for e in events for r in e.related}
    assert {"from", "to"} <= roles
    listed = ParquetStore(str(tmp_path)).read("numbers").drop_duplicates("config_id")
    customers = dict(zip(listed["config_id"], listed["customer_id"], strict=True))
    names = {c.config_id: c.name for c in expected}
    for event in events:  # named where known, the id beside; the customer from the listing
        number = event.resource["prefect.resource.id"].removeprefix("kapso.number.")
        assert event.payload["number"].endswith(f"({number})")
        assert event.payload["name"] == names[number]
        customer = customers[number]
        assert event.payload["customer_id"] == (None if customer is pd.NA else customer)
    assert any(event.payload["name"] for event in events)


async def test_a_shared_global_limit_is_taken_in_batches(tmp_path: Path, api_key: str) -> None:
    async with get_client() as client:
        await client.upsert_global_concurrency_limit_by_name("kh-test-shared", 20, 200.0)
    config = SimulatorConfig(numbers=30, seed=2, rate_per_second=None, rate_per_minute=None)
    with running_simulator(config) as simulator:
        summary = await collect_health(
            base_url=simulator.base_url(),
            storage=str(tmp_path),
            global_limit="kh-test-shared",
            **FAST,
        )
        stats = simulator.stats()["counts"]
    assert summary["numbers"] == len([n for n in Fleet(30, 2).numbers if n.profile != "deleted"])
    assert summary["requests"] == stats["health_requests"]  # the list has its own budget
    batch = summary["shared_limit_batch_size"]
    assert 1 < batch <= 20  # slots are taken several at a time, never more than the limit
    assert summary["shared_limit_batches"] == -(-summary["requests"] // batch)


async def test_a_missing_global_limit_is_said_clearly_and_the_run_goes_on(
    tmp_path: Path, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = SimulatorConfig(numbers=5, seed=2, rate_per_second=None, rate_per_minute=None)
    with running_simulator(config) as simulator:
        summary = await collect_health(
            base_url=simulator.base_url(),
            storage=str(tmp_path),
            global_limit="kh-no-such-limit",
            **FAST,
        )
    assert summary["numbers"] == 5
    assert summary["shared_limit_batches"] == 0
    assert "The global rate limit 'kh-no-such-limit' is missing" in caplog.text


def test_a_late_run_keeps_to_its_schedules_window_unless_it_missed_all_of_it() -> None:
    from datetime import UTC, datetime, timedelta

    from kapso_health.flows.collect import window_start

    due = datetime(2026, 3, 2, 12, 15, tzinfo=UTC)
    assert window_start(due + timedelta(minutes=2), due, 14.75) == due  # ends on schedule
    late = due + timedelta(minutes=20)
    assert window_start(late, due, 14.75) == late  # a whole window late: from now
    assert window_start(late, None, 14.75) == late  # not scheduled
    assert window_start(late, due, None) == late  # a full sweep has no window
