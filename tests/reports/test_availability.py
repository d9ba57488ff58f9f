"""Daily availability on a small history whose figures are worked out by hand below."""

from __future__ import annotations

import pandas as pd
import pytest

from kapso_health.reports.availability import (
    check_pass_rates,
    daily_availability,
    incident_days,
    incidents,
)
from kapso_health.reports.timeline import Policy, intervals, observations

D, D1 = pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-03-02", tz="UTC")


def poll(
    number: str,
    at: str,
    status: str | None,
    messaging: str | None = None,
    outcome: str = "ok",
    polled: str | None = None,
) -> dict:
    moment = pd.Timestamp(at, tz="UTC")
    return {
        "config_id": number,
        "polled_at": pd.Timestamp(polled, tz="UTC") if polled else moment,
        "checked_at": moment if outcome == "ok" else pd.NaT,
        "outcome": outcome,
        "status": status,
        "can_send_message": messaging,
        "quality_rating": None,
    }


# Number A (max gap 30 min). Holding times, by hand:
#   D  00:00 up    AVAILABLE  00:00-00:15        D  01:15 down  LIMITED    01:15-01:30
#   D  00:15 up    AVAILABLE  00:15-00:30 (+ a   D  01:30 degr. AVAILABLE  01:30-02:00 (cap)
#                             repeat poll 00:18) D  23:45 down  AVAILABLE  23:45-00:10 (split)
#   D  00:30 down  BLOCKED    00:30-00:45        D1 00:10 down  AVAILABLE  00:10-00:20
#   D  00:45 down  BLOCKED    00:45-01:00        D1 00:20 up    AVAILABLE  00:20-00:50 (cap)
#   D  01:00 timeout (unknown) 01:00-01:15
# Number B: D 12:00 an `error` body, D 12:15 skipped: nothing known.
HISTORY = pd.DataFrame(
    [
        poll("A", "2026-03-01 00:00", "healthy", "AVAILABLE"),
        poll("A", "2026-03-01 00:15", "healthy", "AVAILABLE"),
        poll("A", "2026-03-01 00:15", "healthy", "AVAILABLE", polled="2026-03-01 00:18"),
        poll("A", "2026-03-01 00:30", "unhealthy", "BLOCKED"),
        poll("A", "2026-03-01 00:45", "unhealthy", "BLOCKED"),
        poll("A", "2026-03-01 01:00", None, outcome="timeout"),
        poll("A", "2026-03-01 01:15", "unhealthy", "LIMITED"),
        poll("A", "2026-03-01 01:30", "degraded", "AVAILABLE"),
        poll("A", "2026-03-01 23:45", "unhealthy", "AVAILABLE"),
        poll("A", "2026-03-02 00:10", "unhealthy", "AVAILABLE"),
        poll("A", "2026-03-02 00:20", "healthy", "AVAILABLE"),
        poll("B", "2026-03-01 12:00", "error"),
        poll("B", "2026-03-01 12:15", None, outcome="skipped"),
    ]
)


@pytest.fixture
def report() -> pd.DataFrame:
    obs = observations(HISTORY)
    table = daily_availability(obs, intervals(obs), [D, D1])
    return table.set_index(["config_id", "day"])


def test_sample_counts_treat_repeats_as_one_observation(report: pd.DataFrame) -> None:
    a = report.loc[("A", D)]
    assert (a.polls_up, a.polls_down, a.polls_degraded, a.polls_unknown) == (2, 4, 1, 1)
    assert a.availability_samples == pytest.approx(3 / 7)
    a1 = report.loc[("A", D1)]
    assert (a1.polls_up, a1.polls_down, a1.polls_degraded, a1.polls_unknown) == (1, 1, 0, 0)
    assert a1.availability_samples == pytest.approx(1 / 2)


def test_time_weighted_availability_and_coverage(report: pd.DataFrame) -> None:
    a = report.loc[("A", D)]
    assert (a.seconds_up, a.seconds_down, a.seconds_degraded) == (1800, 3600, 1800)
    assert a.availability_time == pytest.approx(3600 / 7200)
    assert a.coverage == pytest.approx(7200 / 86400)
    assert a.downtime_seconds == 3600
    a1 = report.loc[("A", D1)]
    assert (a1.seconds_up, a1.seconds_down) == (1800, 1200)  # 00:00-00:10 came from D's 23:45
    assert a1.availability_time == pytest.approx(1800 / 3000)
    assert a1.coverage == pytest.approx(3000 / 86400)


def test_nothing_known_is_null_not_zero_or_one(report: pd.DataFrame) -> None:
    for day in (D, D1):
        b = report.loc[("B", day)]
        assert pd.isna(b.availability_samples) and pd.isna(b.availability_time)
        assert b.coverage == 0
    assert report.loc[("B", D)].polls_unknown == 2  # the error body and the skipped poll


def test_incidents_unknown_does_not_end_them_and_midnight_splits_honestly(
    report: pd.DataFrame,
) -> None:
    found = incidents(observations(HISTORY))
    down = found[found.kind == "down"].reset_index(drop=True)
    assert list(down.start) == [
        pd.Timestamp("2026-03-01 00:30", tz="UTC"),
        pd.Timestamp("2026-03-01 23:45", tz="UTC"),
    ]
    assert list(down.duration_seconds) == [3600, 2100]  # 00:30→01:30; 23:45→00:20 next day
    assert not down.ongoing.any()
    pieces = incident_days(down)
    midnight = pieces[pieces.incident_id == down.incident_id[1]]
    assert list(midnight.seconds_in_day) == [900, 1200] and midnight.day.tolist() == [D, D1]
    assert (report.loc[("A", D)].incidents, report.loc[("A", D1)].incidents) == (2, 1)
    assert report.loc[("A", D)].mttr_seconds == 3600  # recovered on D: the first one
    assert report.loc[("A", D1)].mttr_seconds == 2100


def test_messaging_shares_and_blocked_incidents(report: pd.DataFrame) -> None:
    a = report.loc[("A", D)]
    assert a.messaging_available_share == pytest.approx(4500 / 7200)
    assert a.messaging_limited_share == pytest.approx(900 / 7200)
    assert a.messaging_blocked_share == pytest.approx(1800 / 7200)
    blocked = incidents(observations(HISTORY)).query("kind == 'blocked'")
    assert list(blocked.duration_seconds) == [2700]  # 00:30 until LIMITED at 01:15
    assert a.blocked_incidents == 1


def test_an_open_incident_lasts_until_its_last_observation_stops_holding() -> None:
    history = pd.DataFrame(
        [poll("C", "2026-03-01 10:00", "unhealthy"), poll("C", "2026-03-01 10:10", "unhealthy")]
    )
    found = incidents(observations(history))
    assert found.ongoing.tolist() == [True]
    assert found.duration_seconds.tolist() == [(10 + 30) * 60]


def test_degraded_can_count_as_down_time_for_availability() -> None:
    strict = Policy(degraded_counts_as_up=False)
    obs = observations(HISTORY, strict)
    a = daily_availability(obs, intervals(obs, strict), [D], strict).set_index("config_id").loc["A"]
    assert a.availability_samples == pytest.approx(2 / 7)
    assert a.availability_time == pytest.approx(1800 / 7200)


def test_older_histories_without_newer_columns_still_report() -> None:
    old = HISTORY[["config_id", "polled_at", "outcome", "status"]]
    obs = observations(old)
    table = daily_availability(obs, intervals(obs), [D]).set_index("config_id")
    assert table.loc["A", "polls_up"] == 3  # without checked_at a repeat cannot be told apart
    assert pd.isna(table.loc["A", "messaging_available_share"])


def test_check_pass_rates_count_each_observation_once_and_any_name() -> None:
    rows = [
        ("A", "2026-03-01 00:00", "webhook_verified", True),
        ("A", "2026-03-01 00:00", "webhook_verified", True),  # a repeat of the same body
        ("A", "2026-03-01 00:15", "webhook_verified", False),
        ("A", "2026-03-01 00:15", "brand_new_check", None),
        ("A", "2026-03-01 00:30", "brand_new_check", True),
    ]
    checks = pd.DataFrame(rows, columns=["config_id", "checked_at", "check_name", "passed"])
    checks["checked_at"] = pd.to_datetime(checks["checked_at"], utc=True)
    checks["polled_at"] = checks["checked_at"]
    rates = check_pass_rates(checks, [D]).set_index("check_name")
    assert (rates.loc["webhook_verified", "passed"], rates.loc["webhook_verified", "failed"]) == (
        1,
        1,
    )
    assert rates.loc["webhook_verified", "pass_rate"] == 0.5
    assert (rates.loc["brand_new_check", "passed"], rates.loc["brand_new_check", "failed"]) == (
        1,
        0,
    )


def test_a_number_seen_only_in_the_margin_days_is_not_in_the_days_report() -> None:
    history = pd.concat(
        [
            HISTORY,
            pd.DataFrame([poll("C", "2026-03-02 09:00", "healthy")]),  # only on the next day
            pd.DataFrame([poll("E", "2026-02-28 23:50", "healthy")]),  # holds 20 min into D
        ],
        ignore_index=True,
    )
    obs = observations(history)
    table = daily_availability(obs, intervals(obs), [D]).set_index("config_id")
    assert sorted(table.index) == ["A", "B", "E"]
    assert table.loc["E", "seconds_up"] == 20 * 60  # 23:50 + 30 min cap, from midnight
