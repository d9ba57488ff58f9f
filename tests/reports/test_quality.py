"""Daily quality on a small history whose figures are worked out by hand below."""

from __future__ import annotations

import pandas as pd
import pytest

from kapso_health.reports.quality import daily_quality, transitions
from kapso_health.reports.timeline import intervals, observations

D = pd.Timestamp("2026-03-01", tz="UTC")


def poll(at: str, rating: str | None, phone: str | None, outcome: str = "ok") -> dict:
    moment = pd.Timestamp(at, tz="UTC")
    return {
        "config_id": "Q",
        "polled_at": moment,
        "checked_at": moment if outcome == "ok" else None,
        "outcome": outcome,
        "status": "healthy" if outcome == "ok" else None,
        "quality_rating": rating,
        "phone_status": phone,
    }


# Holding times (max gap 30 min): GREEN 10:00-10:30, YELLOW 10:30-10:45, RED 10:45-11:00,
# nothing known 11:00-11:15 (timeout), YELLOW 11:15-11:30, NA 11:30-12:00 (cap).
# Rated time 6300 s: GREEN 1800, YELLOW 1800, RED 900, NA 1800.
HISTORY = pd.DataFrame(
    [
        poll("2026-03-01 10:00", "GREEN", "CONNECTED"),
        poll("2026-03-01 10:15", "GREEN", "CONNECTED"),
        poll("2026-03-01 10:30", "YELLOW", "FLAGGED"),
        poll("2026-03-01 10:45", "RED", "FLAGGED"),
        poll("2026-03-01 11:00", None, None, outcome="timeout"),
        poll("2026-03-01 11:15", "YELLOW", "CONNECTED"),
        poll("2026-03-01 11:30", "NA", "CONNECTED"),
    ]
)


@pytest.fixture
def quality() -> pd.Series:
    obs = observations(HISTORY)
    return daily_quality(obs, intervals(obs), [D]).set_index("config_id").loc["Q"]


def test_time_shares_of_each_rating(quality: pd.Series) -> None:
    assert quality.share_green == pytest.approx(1800 / 6300)
    assert quality.share_yellow == pytest.approx(1800 / 6300)
    assert quality.share_red == pytest.approx(900 / 6300)
    assert quality.share_na == pytest.approx(1800 / 6300)
    assert quality.share_unknown == 0


def test_worst_last_changes_and_downgrades(quality: pd.Series) -> None:
    assert (quality.worst_rating, quality.last_rating) == ("RED", "NA")
    assert (quality.rating_changes, quality.downgrades) == (4, 2)
    assert (quality.phone_status_changes, quality.last_phone_status) == (2, "CONNECTED")


def test_transitions_carry_their_time_and_flag_what_got_worse() -> None:
    changes = transitions(observations(HISTORY), "quality_rating")
    assert list(zip(changes.from_value, changes.to_value, changes.worse, strict=True)) == [
        ("GREEN", "YELLOW", True),
        ("YELLOW", "RED", True),
        ("RED", "YELLOW", False),
        ("YELLOW", "NA", False),
    ]
    assert changes["at"].iloc[2] == pd.Timestamp("2026-03-01 11:15", tz="UTC")
    status = transitions(observations(HISTORY), "phone_status")
    assert list(zip(status.to_value, status.worse, strict=True)) == [
        ("FLAGGED", True),
        ("CONNECTED", False),
    ]


def test_a_day_without_ratings_has_null_shares() -> None:
    obs = observations(HISTORY.assign(quality_rating=None))
    row = daily_quality(obs, intervals(obs), [D]).iloc[0]
    assert pd.isna(row.share_green) and pd.isna(row.worst_rating) and row.downgrades == 0
