"""`newest_known`: each number's newest known observation, by its check time, then its poll
time (a body Kapso's cache repeated is the last poll of it)."""

from __future__ import annotations

import pandas as pd

from kapso_health.reports import engine
from tests.reports.conftest import observation

DAYS = [pd.Timestamp("2026-03-02").date()]


def newest(*polls: dict) -> pd.DataFrame:
    found = engine.run("newest_known", days=DAYS, polls=engine.polls_table(pd.DataFrame(polls)))
    return found.set_index("before")


def test_the_newest_check_wins_even_when_an_older_one_was_polled_later() -> None:
    late_poll_of_old_body = observation("a", "2026-03-02 09:00", "unhealthy")
    late_poll_of_old_body["polled_at"] = pd.Timestamp("2026-03-02 11:00", tz="UTC")
    found = newest(
        observation("a", "2026-03-02 10:00", "healthy"),
        late_poll_of_old_body,
        observation("a", "2026-03-01 10:00", "degraded"),
    )
    assert found.loc[False, "status"] == "healthy"
    assert found.loc[True, "status"] == "degraded"  # before the day before the end
    assert found.loc[False, "good_status"] == "healthy"


def test_of_a_repeated_body_the_last_poll_is_the_newest() -> None:
    first, repeat = (observation("a", "2026-03-02 10:00", "healthy") for _ in range(2))
    repeat["polled_at"] = pd.Timestamp("2026-03-02 10:03", tz="UTC")
    for polls in ((first, repeat), (repeat, first)):
        found = newest(*polls)
        assert found.loc[False, "polled_at"] == repeat["polled_at"]
