"""The planner on constructed histories: capacity, trouble, due order, the cache floor."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from kapso_health.tasks.plan import (
    CACHE,
    RECENT_CHANGE,
    REPEAT_MARGIN,
    TROUBLE_CADENCE_SHARE,
    WATCH_INTERVAL,
    WATCH_SHARE,
    LastSeen,
    capacity,
    next_eligible,
    plan_round,
    seen_after,
    seen_from_polls,
    troubled,
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
SECOND = timedelta(seconds=1)
CADENCE = 35 * MIN


def seen(
    minutes_ago: float, trouble: bool = False, usually: bool | None = None, **extra: object
) -> LastSeen:
    """A number last polled `minutes_ago`; usually in the state it is in unless told."""
    at = NOW - minutes_ago * MIN
    usual = trouble if usually is None else usually
    return LastSeen(at, at, in_trouble=trouble, usually_in_trouble=usual, **extra)


def plan_polls(*args: object, **kwargs: object) -> list[str]:
    """The ids of a `plan_round`, in order."""
    return [number_id for number_id, _ in plan_round(*args, **kwargs)]  # type: ignore[arg-type]


def plan(ids: list[str], last: dict[str, LastSeen], allowed: int, **kwargs: object) -> list[str]:
    """A round whose window allows exactly `allowed` polls at 60/min (one a second)."""
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
    assert "a 14.5-min window allows 870 polls per run" in cap.line()
    warning = cap.warning()
    assert warning is not None
    assert "cannot be covered every 15 min" in warning
    assert warning.endswith("each number is polled every ~35 min instead")


def test_capacity_of_a_covered_fleet_has_no_warning_and_spends_the_rest_of_the_budget() -> None:
    cap = capacity(500, 60, 14.5, 15)
    assert cap.allowed == 870 and cap.covers_fleet
    assert cap.cadence_minutes == pytest.approx(15 * 500 / 870)  # more often than every run
    assert cap.warning() is None
    assert capacity(500, None, 14.5, 15).warning() is None
    unlimited = capacity(500, None, 14.5, 15).cadence_minutes
    assert unlimited is not None and CACHE / MIN <= unlimited < 15  # as often as useful
    small = capacity(20, 60, 14.5, 15)  # each number once per cache period: 4 times a run
    assert small.allowed == 80 and small.cadence_minutes == pytest.approx(15 / 4)


def test_a_full_sweep_longer_than_the_interval_is_not_covered() -> None:
    cap = capacity(1000, 60, None, 15)
    assert cap.allowed == 1000
    assert not cap.covers_fleet
    assert cap.warning() is not None


def test_a_window_smaller_than_one_request_allows_nothing_and_says_so() -> None:
    cap = capacity(10, 60, 0.01, 15)
    assert cap.allowed == 0
    assert cap.cadence_minutes is None
    assert "allows 0 polls per run (nothing will be polled)" in cap.line()
    assert "polled never instead" in (cap.warning() or "")
    assert plan_polls(["a", "b"], {}, NOW, 60, 0.01, CADENCE) == []


# troubled


def in_trouble(row: dict) -> bool:
    return bool(troubled(pd.DataFrame([row])).iloc[0])


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
    assert in_trouble(HEALTHY_ROW | change)


def test_healthy_and_a_lesser_rating_are_not_trouble() -> None:
    assert not in_trouble(HEALTHY_ROW)
    assert not in_trouble(HEALTHY_ROW | {"quality_rating": "YELLOW"})
    assert not in_trouble(HEALTHY_ROW | {"phone_status": None, "can_send_message": None})


# seen_from_polls: what the planner knows of each number


def polls_of(number: str, states: list[str], every: float = 40.0, **extra: object) -> list[dict]:
    """`states` of `number`, one poll every `every` minutes, the last one `every` minutes ago."""
    count = len(states)
    rows = []
    for k, status in enumerate(states):
        at = NOW - (count - k) * every * MIN
        rows.append(
            {"config_id": number, "polled_at": at, "checked_at": at, "outcome": "ok"}
            | {"status": status, "retry_after": None}
            | extra
        )
    return rows


def test_a_usually_fine_number_in_trouble_is_watched_and_so_is_one_usually_in_trouble_now_fine():
    frame = pd.DataFrame(
        polls_of("fresh", [HEALTHY] * 10 + [UNHEALTHY])
        + polls_of("recovered", [UNHEALTHY] * 10 + [HEALTHY])
        + polls_of("chronic", [UNHEALTHY] * 11)
        + polls_of("fine", [HEALTHY] * 11)
    )
    seen_now = seen_from_polls(frame, "config_id", NOW)
    assert {n: s.watched for n, s in seen_now.items()} == {
        "fresh": True,
        "recovered": True,
        "chronic": False,
        "fine": False,
    }
    assert seen_now["fresh"].in_trouble and not seen_now["fresh"].usually_in_trouble
    assert seen_now["fine"].polled_at == NOW - 40 * MIN


def test_usual_trouble_is_time_weighted_so_close_polls_while_watched_do_not_count_more():
    # 10 h healthy, polled every 40 min; then 2 h in trouble, polled every 5 min (24 polls)
    healthy = polls_of("n", [HEALTHY] * 15, every=40.0)
    shift = timedelta(hours=2)
    for row in healthy:
        row["polled_at"] = row["checked_at"] = row["checked_at"] - shift
    trouble = polls_of("n", [UNHEALTHY] * 24, every=5.0)
    seen_now = seen_from_polls(pd.DataFrame(healthy + trouble), "config_id", NOW)["n"]
    assert seen_now.in_trouble and not seen_now.usually_in_trouble  # more polls, less time
    assert seen_now.watched


def test_a_failed_last_poll_is_trouble_and_the_last_observation_keeps_its_backoff():
    rows = polls_of("n", [HEALTHY] * 5)
    later = NOW + 10 * MIN
    rows[-1]["retry_after"] = later
    failed = {"config_id": "n", "polled_at": NOW, "checked_at": None, "outcome": "timeout"}
    seen_now = seen_from_polls(pd.DataFrame([*rows, failed]), "config_id", NOW)["n"]
    assert seen_now.polled_at == NOW and seen_now.in_trouble and seen_now.watched
    assert seen_now.observed_at == rows[-1]["checked_at"]
    assert seen_now.retry_after == later


def test_seen_after_a_round_moves_the_last_poll_but_keeps_the_usual_state():
    before = seen_from_polls(pd.DataFrame(polls_of("n", [HEALTHY] * 10)), "config_id", NOW)
    assert not before["n"].watched
    round_rows = pd.DataFrame(
        [
            {"config_id": number, "polled_at": NOW, "checked_at": NOW, "outcome": "ok"}
            for number in ("n", "new")
        ]
    ).assign(status=UNHEALTHY, retry_after=None)
    after = seen_after(before, round_rows, "config_id", NOW)
    assert after["n"].polled_at == NOW and after["n"].in_trouble
    assert not after["n"].usually_in_trouble and after["n"].watched
    assert after["new"].in_trouble and after["new"].usually_in_trouble  # one look: its usual


# plan_polls: one round of a rolling run


def test_empty_history_polls_in_the_order_given_up_to_the_budget() -> None:
    assert plan(["c", "a", "b"], {}, 2) == ["c", "a"]
    assert plan([], {}, 5) == []


def test_new_numbers_come_first() -> None:
    last = {"a": seen(120), "b": seen(60)}
    assert plan(["a", "b", "new"], last, 2) == ["new", "a"]


def test_most_overdue_first_and_ties_in_the_order_given() -> None:
    last = {"a": seen(40), "b": seen(90), "c": seen(40), "d": seen(60)}
    assert plan(["a", "b", "c", "d", "e"], {**last, "e": seen(10)}, 4) == ["b", "d", "a", "c"]


def test_a_watched_number_due_goes_before_everyone_overdue() -> None:
    last = {
        "overdue": seen(300),
        "watched": seen(WATCH_INTERVAL / MIN + 1, trouble=True, usually=False),
        "chronic": seen(100, trouble=True),
    }
    assert plan(["overdue", "chronic", "watched"], last, 2) == ["watched", "overdue"]
    # usual trouble is not news: due by the fleet's cadence like everyone else
    assert plan(["chronic", "overdue"], last, 1) == ["overdue"]


def test_a_watched_number_is_polled_again_within_the_round_when_it_falls_due() -> None:
    # one slot a second; the watched number may go 30 s (and the margin) into the round
    last = {
        "watched": seen(WATCH_INTERVAL / MIN - 0.5, trouble=True, usually=False),
        **{f"n{i}": seen(60 + i) for i in range(60)},
    }
    round_ = plan(["watched", *(f"n{i}" for i in range(60))], last, 60)
    assert round_.index("watched") == 30 + REPEAT_MARGIN / SECOND
    assert len(round_) == 60


def test_watched_numbers_take_at_most_their_share_of_a_round_before_the_others() -> None:
    watched = {f"w{i}": seen(10, trouble=True, usually=False) for i in range(10)}
    others = {f"o{i}": seen(200) for i in range(10)}
    round_ = plan([*watched, *others], {**watched, **others}, 10)
    assert round_[: int(WATCH_SHARE * 10)] == [f"w{i}" for i in range(int(WATCH_SHARE * 10))]
    assert round_[int(WATCH_SHARE * 10) :] == [f"o{i}" for i in range(10 - int(WATCH_SHARE * 10))]


def test_the_cache_floor_and_kapsos_backoff_keep_a_number_out_even_with_budget_left() -> None:
    later = NOW + 10 * MIN
    last = {
        "a": seen(2, trouble=True, usually=False),  # inside the cache
        "b": seen(3.5, trouble=True, usually=False),
        "c": seen(1),
        "backed_off": seen(60, trouble=True, retry_after=later),
    }
    assert plan(["a", "b", "c", "backed_off", "d"], last, 3) == ["d", "b"]


def test_a_number_whose_cache_ends_inside_the_round_takes_a_later_slot() -> None:
    # `a` may be polled 60 s (and the margin) from now: the slots before that go to nobody
    last = {"a": seen(CACHE / MIN - 1, trouble=True, usually=False)}
    wait = int((MIN + REPEAT_MARGIN) / SECOND)
    assert plan(["a"], last, wait) == []
    assert plan(["a"], last, wait + 1) == ["a"]


def test_spare_budget_polls_numbers_not_yet_due_most_nearly_due_first() -> None:
    last = {"a": seen(5), "b": seen(20), "c": seen(10)}  # none due (cadence 35 min)
    assert plan(["a", "b", "c"], last, 3) == ["b", "c", "a"]


def test_without_a_window_or_a_limit_every_number_is_planned_when_it_may_be_polled() -> None:
    last = {"a": seen(1), "b": seen(30, trouble=True), "c": seen(100), "e": seen(2.5)}
    ids = ["a", "b", "c", "d", "e"]
    assert plan_polls(ids, last, NOW, 60, None, CADENCE) == ["d", "b", "c"]
    in_a_minute = plan_round(ids, last, NOW, None, 1, CADENCE)
    assert in_a_minute == [("d", NOW), ("b", NOW), ("c", NOW), ("e", NOW + 35 * SECOND)]


def test_next_eligible_is_when_the_cache_or_the_backoff_ends() -> None:
    later = NOW + 10 * MIN
    last = {"a": seen(1), "b": seen(60, retry_after=later)}
    assert next_eligible(["a", "b"], last, NOW) == NOW + CACHE - MIN + REPEAT_MARGIN
    assert next_eligible(["b"], last, NOW) == later
    assert next_eligible(["a", "new"], last, NOW) == NOW
    assert next_eligible([], last, NOW) is None


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


def test_a_round_stays_within_what_is_left_of_the_runs_budget() -> None:
    assert plan(["a", "b", "c"], {}, 3, limit=2) == ["a", "b"]
    assert plan(["a", "b", "c"], {}, 3, limit=0) == []


def test_each_poll_of_a_round_has_its_slot_time_and_none_is_before_its_cache_ends() -> None:
    last = {"late": seen(CACHE / MIN - 0.5, trouble=True, usually=False), "due": seen(60)}
    planned = plan_round(["new", "due", "late"], last, NOW, 60, 1, CADENCE)
    assert planned == [("new", NOW), ("due", NOW + SECOND), ("late", NOW + 35 * SECOND)]


def test_watched_numbers_never_take_more_than_their_share_even_when_the_others_are_not_due():
    watched = {f"w{i}": seen(6, trouble=True, usually=False) for i in range(100)}
    others = {f"o{i}": seen(30) for i in range(100)}  # due in 5 min (cadence 35)
    round_ = plan([*watched, *others], {**watched, **others}, 60)
    assert sum(number.startswith("w") for number in round_) == WATCH_SHARE * 60
    assert len(round_) == 60  # the rest of the budget still goes to the others


def test_a_number_that_keeps_failing_soon_counts_as_usually_in_trouble_and_is_not_watched():
    rows = polls_of("n", [HEALTHY] * 12, every=60.0)  # 12 h fine, then 20 h of 404s
    for row in rows:
        row["polled_at"] = row["checked_at"] = row["checked_at"] - timedelta(hours=20)
    failing = [
        {"config_id": "n", "polled_at": NOW - k * 3 * MIN, "checked_at": None}
        | {"outcome": "not_found"}
        for k in range(400, 0, -1)
    ]
    seen_now = seen_from_polls(pd.DataFrame(rows + failing), "config_id", NOW)["n"]
    assert seen_now.in_trouble and seen_now.usually_in_trouble and not seen_now.watched


def test_trouble_as_usual_and_a_change_in_the_last_hour_are_due_sooner_than_the_stable() -> None:
    share_of_cadence = CADENCE * TROUBLE_CADENCE_SHARE / MIN
    last = {
        "stable": seen(share_of_cadence + 1),
        "chronic": seen(share_of_cadence + 0.5, trouble=True),  # in trouble as usual
        "recovered": LastSeen(
            NOW - (share_of_cadence + 0.2) * MIN,
            NOW - (share_of_cadence + 0.2) * MIN,
            changed_at=NOW - 40 * MIN,  # fine, but its trouble went less than an hour ago
        ),
    }
    assert plan(["stable", "chronic", "recovered"], last, 2) == ["chronic", "recovered"]
    assert CACHE < CADENCE * TROUBLE_CADENCE_SHARE < CADENCE


def test_the_last_change_of_trouble_is_when_a_poll_first_showed_it_come_or_go() -> None:
    rows = polls_of("n", [HEALTHY, HEALTHY, UNHEALTHY, UNHEALTHY, HEALTHY])
    seen_now = seen_from_polls(pd.DataFrame(rows), "config_id", NOW)["n"]
    assert seen_now.changed_at == rows[-1]["polled_at"]
    assert seen_now.troubled_lately(NOW) and not seen_now.in_trouble
    later = NOW + RECENT_CHANGE
    assert not seen_now.troubled_lately(later)
