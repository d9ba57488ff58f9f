"""The planner on constructed histories: capacity, trouble, due order, the cache floor."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from kapso_health.tasks.plan import (
    CACHE,
    TROUBLE_INTERVAL,
    LastSeen,
    capacity,
    in_trouble,
    plan_polls,
)
from kapso_health.tasks.vocabulary import (
    BLOCKED,
    DEGRADED_STATUS,
    ERROR,
    HEALTHY,
    UNHEALTHY,
    WORST_RATING,
    Outcome,
)

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
MIN = timedelta(minutes=1)
CADENCE = 35 * MIN


def seen(minutes_ago: float, trouble: bool = False, **extra: object) -> LastSeen:
    at = NOW - minutes_ago * MIN
    return LastSeen(polled_at=at, observed_at=at, in_trouble=trouble, **extra)


def plan(ids: list[str], last: dict[str, LastSeen], allowed: int, **kwargs: object) -> list[str]:
    """A plan whose window allows exactly `allowed` polls at 60/min."""
    return plan_polls(ids, last, NOW, 60, allowed / 60, CADENCE, **kwargs)


# capacity


def test_capacity_line_for_two_thousand_numbers() -> None:
    cap = capacity(2000, 60, None, None)
    assert cap.line().startswith("2,000 numbers at 60/min: each number every ~34 min")
    assert cap.allowed == 2000


def test_capacity_with_a_window_counts_its_numbers_and_warns_once() -> None:
    cap = capacity(2000, 60, 14.5, 15)
    assert cap.allowed == 870
    assert not cap.covers_fleet
    assert cap.cadence_minutes == pytest.approx(15 * 2000 / 870)
    assert "a 14.5-min window allows 870 per run" in cap.line()
    warning = cap.warning()
    assert warning is not None
    assert "cannot be covered every 15 min" in warning
    assert warning.endswith("each number is polled every ~35 min instead")


def test_capacity_of_a_covered_fleet_has_no_warning() -> None:
    cap = capacity(500, 60, 14.5, 15)
    assert cap.allowed == 500 and cap.covers_fleet
    assert cap.cadence_minutes == 15
    assert cap.warning() is None
    assert capacity(500, None, 14.5, 15).warning() is None


def test_a_full_sweep_longer_than_the_interval_is_not_covered() -> None:
    cap = capacity(1000, 60, None, 15)
    assert cap.allowed == 1000
    assert not cap.covers_fleet
    assert cap.warning() is not None


def test_a_window_smaller_than_one_request_allows_nothing_and_says_so() -> None:
    cap = capacity(10, 60, 0.01, 15)
    assert cap.allowed == 0
    assert cap.cadence_minutes is None
    assert "allows 0 per run (nothing will be polled)" in cap.line()
    assert "polled never instead" in (cap.warning() or "")
    assert plan_polls(["a", "b"], {}, NOW, 60, 0.01, CADENCE) == []


# in_trouble


HEALTHY_ROW = {
    "outcome": Outcome.OK.value,
    "status": HEALTHY,
    "error": None,
    "can_send_message": "AVAILABLE",
    "quality_rating": "GREEN",
    "phone_status": "CONNECTED",
}


@pytest.mark.parametrize(
    "change",
    [
        {"outcome": Outcome.TIMEOUT.value},
        {"outcome": Outcome.SKIPPED.value},
        {"status": ERROR, "error": "Service temporarily unavailable"},
        {"status": UNHEALTHY},
        {"status": DEGRADED_STATUS},
        {"can_send_message": "LIMITED"},
        {"can_send_message": BLOCKED},
        {"quality_rating": WORST_RATING},
        {"phone_status": "FLAGGED"},
        {"phone_status": "rate_limited"},
    ],
)
def test_trouble(change: dict) -> None:
    assert in_trouble(HEALTHY_ROW | change, NOW, None)


def test_healthy_unless_it_changed_in_the_last_hour() -> None:
    assert not in_trouble(HEALTHY_ROW, NOW, None)
    assert not in_trouble(HEALTHY_ROW | {"quality_rating": "YELLOW"}, NOW, None)
    assert not in_trouble(HEALTHY_ROW, NOW, NOW - 61 * MIN)
    assert in_trouble(HEALTHY_ROW, NOW, NOW - 59 * MIN)


# plan_polls


def test_empty_history_polls_in_the_order_given_up_to_the_budget() -> None:
    assert plan(["c", "a", "b"], {}, 2) == ["c", "a"]
    assert plan([], {}, 5) == []


def test_new_numbers_come_first() -> None:
    last = {"a": seen(120), "b": seen(60)}
    assert plan(["a", "b", "new"], last, 2) == ["new", "a"]


def test_most_overdue_first_and_ties_in_the_order_given() -> None:
    last = {"a": seen(40), "b": seen(90), "c": seen(40), "d": seen(60)}
    assert plan(["a", "b", "c", "d", "e"], {**last, "e": seen(10)}, 4) == ["b", "d", "a", "c"]


def test_trouble_is_due_sooner() -> None:
    last = {"healthy": seen(30), "trouble": seen(10, trouble=True), "x": seen(4)}
    # healthy is due in 5 min, trouble 4 min ago
    assert plan(["healthy", "trouble", "x"], last, 1, trouble_interval=6 * MIN) == ["trouble"]
    # with the default target: healthy due in 5 min, trouble 1 min ago
    last["trouble"] = seen(TROUBLE_INTERVAL / MIN + 1, trouble=True)
    assert plan(["healthy", "trouble", "x"], last, 2) == ["trouble", "healthy"]
    assert CACHE <= TROUBLE_INTERVAL < CADENCE


def test_the_cache_floor_leaves_out_recent_polls_even_with_budget_left() -> None:
    last = {"a": seen(2, trouble=True), "b": seen(3.5, trouble=True), "c": seen(1)}
    assert plan(["a", "b", "c", "d"], last, 3) == ["d", "b"]


def test_a_number_backed_off_by_kapso_waits() -> None:
    later = NOW + 10 * MIN
    last = {"a": seen(60, trouble=True, retry_after=later), "b": seen(30), "c": seen(20)}
    assert plan(["a", "b", "c", "d"], last, 3) == ["d", "b", "c"]


def test_a_covered_fleet_polls_everyone_as_a_full_sweep() -> None:
    last = {"a": seen(1), "b": seen(30, trouble=True), "c": seen(100)}
    ids = ["a", "b", "c", "d"]
    assert plan(ids, last, 4) == ["d", "c", "b", "a"]  # a: inside the cache, still polled
    assert sorted(plan_polls(ids, last, NOW, 60, None, CADENCE)) == sorted(ids)
    assert sorted(plan_polls(ids, last, NOW, None, 1, CADENCE)) == sorted(ids)


def test_consecutive_runs_poll_every_number_once_before_any_twice() -> None:
    ids = [f"n{i:03d}" for i in range(250)]
    last: dict[str, LastSeen] = {}
    now, interval, counts, rounds = NOW, 15 * MIN, Counter[str](), []
    for _ in range(4):
        polled = plan_polls(ids, last, now, 60, 1.5, CADENCE)  # 90 per run
        assert len(polled) == 90
        counts.update(polled)
        rounds.append(max(counts.values()) - min(counts[i] for i in ids))
        last.update({number_id: LastSeen(now, now, False) for number_id in polled})
        now += interval
    assert all(spread <= 1 for spread in rounds)  # nobody twice while someone is at zero
    assert sorted(counts.values()) == [1] * 140 + [2] * 110  # 360 polls: 250 + 110
