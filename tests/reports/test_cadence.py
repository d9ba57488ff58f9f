"""Observations hold for their number's own cadence unless a fixed max gap is given; the
figures below are worked out by hand for a one-day report on D (polls of D-1 and D+1 read too).
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest

from kapso_health.reports.availability import incidents
from kapso_health.reports.timeline import Policy, observations

D = pd.Timestamp("2026-03-01", tz="UTC")
CADENCE = Policy(max_gap=None)
MINUTES_A_DAY = 1440


def poll(number: str, at: pd.Timestamp, status: str = "healthy") -> dict:
    return {
        "config_id": number,
        "polled_at": at,
        "checked_at": at,
        "outcome": "ok",
        "status": status,
    }


def every(number: str, first: str, minutes: int, count: int) -> list[dict]:
    start = pd.Timestamp(first, tz="UTC")
    return [poll(number, start + pd.Timedelta(minutes=minutes * k)) for k in range(count)]


HISTORY = pd.DataFrame(
    [
        # slow: every 35 min from D-1 22:17 (…, D-1 23:27, D 00:02, …, D 23:57, D+1 00:32, …).
        # Cadence 1.5 x 35 = 52.5 min: each holds until the next one, D fully covered. Fixed
        # 30 min: D-1 23:27 stops at 23:57 (0 on D), D 00:02…23:22 give 41 x 30, and 23:57
        # gives 3 before midnight: 1233 min.
        *every("slow", "2026-02-28 22:17", 35, 47),
        # hole: every 15 min from D-1 00:00 to D+1 00:00, none between D 10:00 and 15:00.
        # Median 15 min, 1.5 x 15 = 22.5, raised to the 30-min floor: 10:00 holds until 10:30,
        # then 4.5 h unknown: 1440 - 270 = 1170 min.
        *[
            p
            for p in every("hole", "2026-02-28 00:00", 15, 2 * 96 + 1)
            if not D + pd.Timedelta(hours=10) < p["checked_at"] < D + pd.Timedelta(hours=15)
        ],
        # rare: every 4 h from D-1 00:00 to D+1 00:00. 1.5 x 240 = 360 min, capped at 3 h: six
        # observations on D hold 180 min each: 1080 min.
        *every("rare", "2026-02-28 00:00", 240, 13),
        # once: a single observation: nothing to measure, so the 30-min floor.
        poll("once", D + pd.Timedelta(hours=12)),
        # fading: hourly D 00:00…12:00, down from 11:00 on, then silent. Cadence 90 min: 12:00
        # holds until 13:30, the open incident lasts 11:00→13:30.
        *every("fading", "2026-03-01 00:00", 60, 11),
        # watched: every 40 min from D-1 00:00 to D+1 00:00, and every 5 min while a rolling
        # run watched it, D 06:05…11:55 (72 intervals of 5 min against 63 of 40). By count the
        # median is 5 min (the 30-min floor would leave a quarter of each 40 min unknown);
        # by time the 5-min ones cover 6 of the 48 hours, so the cadence is 40 min, 1.5 x 40 =
        # 60: D fully covered.
        *[
            p
            for p in every("watched", "2026-02-28 00:00", 40, 73)
            if not D + pd.Timedelta(hours=6) < p["checked_at"] < D + pd.Timedelta(hours=12)
        ],
        *every("watched", "2026-03-01 06:05", 5, 71),
        poll("fading", D + pd.Timedelta(hours=11), "unhealthy"),
        poll("fading", D + pd.Timedelta(hours=12), "unhealthy"),
    ]
)


def availability(build, policy: Policy) -> pd.DataFrame:
    tables = build(HISTORY, [D], policy)
    return tables["availability_daily"].set_index("config_id")


def test_each_number_holds_for_its_own_cadence(build) -> None:
    day = availability(build, CADENCE)
    minutes = day["coverage"] * MINUTES_A_DAY
    assert minutes["slow"] == pytest.approx(MINUTES_A_DAY)  # every 35 min: covered
    assert minutes["hole"] == pytest.approx(1170)  # the 5-hour hole is not
    assert minutes["rare"] == pytest.approx(1080)  # at most 3 h
    assert minutes["once"] == pytest.approx(30)  # too few observations: the floor
    assert minutes["fading"] == pytest.approx(12 * 60 + 90)  # 00:00…11:00 an hour each
    assert minutes["watched"] == pytest.approx(MINUTES_A_DAY)  # time-weighted cadence
    assert day["max_gap_seconds"].to_dict() == {
        "slow": 52.5 * 60,
        "hole": 30 * 60,
        "rare": 180 * 60,
        "once": 30 * 60,
        "fading": 90 * 60,
        "watched": 60 * 60,
    }


def test_an_open_incident_ends_when_its_last_observation_stops_holding_by_cadence(build) -> None:
    found = build(HISTORY, [D], CADENCE)["incidents"]
    assert found[["config_id", "ongoing", "duration_seconds"]].to_dict("records") == [
        {"config_id": "fading", "ongoing": True, "duration_seconds": 150 * 60}
    ]
    assert availability(build, CADENCE).loc["fading", "downtime_seconds"] == 150 * 60
    fixed = incidents(observations(HISTORY[HISTORY["config_id"] == "fading"]))
    assert fixed["duration_seconds"].tolist() == [90 * 60]  # the pure default: 30 min


def test_an_explicit_max_gap_overrides_the_cadence(build) -> None:
    day = availability(build, Policy(max_gap=timedelta(minutes=30)))
    minutes = day["coverage"] * MINUTES_A_DAY
    assert minutes["slow"] == pytest.approx(1233)
    assert minutes["rare"] == pytest.approx(6 * 30)
    assert (day["max_gap_seconds"] == 1800).all()
    longer = availability(build, Policy(max_gap=timedelta(hours=4)))
    assert longer.loc["rare", "coverage"] == pytest.approx(1.0)  # above the cadence's 3-hour cap


def test_the_rule_is_told_in_words() -> None:
    assert "own cadence" in CADENCE.gap_rule() and "30 min to 3 h" in CADENCE.gap_rule()
    assert Policy(max_gap=timedelta(minutes=45)).gap_rule().startswith("a fixed 45 min")
