"""Several Kapso projects: each number's project comes from its polls, `project_daily` rolls up
per project and day. Figures worked out by hand (fixed 30-minute max gap, days D and D1)."""

from __future__ import annotations

import pandas as pd
import pytest

D, D1 = pd.Timestamp("2026-03-01", tz="UTC"), pd.Timestamp("2026-03-02", tz="UTC")


def poll(project: str | None, number: str, at: str, status: str, rating: str) -> dict:
    moment = pd.Timestamp(at, tz="UTC")
    return {
        "project": project,
        "config_id": number,
        "polled_at": moment,
        "checked_at": moment,
        "outcome": "ok",
        "status": status,
        "quality_rating": rating,
    }


# p1 "good": up D 10:00-10:30 and D1 10:00-10:30, GREEN.
# p1 "also": degraded (counts as up) D 12:00-12:30, YELLOW; not polled on D1.
# p2 "bad": down D 10:00-10:45 (GREEN, then RED at 10:15), up D1 10:00-10:30: one incident
#    from D 10:00 to D1 10:00, touching both days; one downgrade on D.
TWO_PROJECTS = pd.DataFrame(
    [
        poll("p1", "good", "2026-03-01 10:00", "healthy", "GREEN"),
        poll("p1", "good", "2026-03-02 10:00", "healthy", "GREEN"),
        poll("p1", "also", "2026-03-01 12:00", "degraded", "YELLOW"),
        poll("p2", "bad", "2026-03-01 10:00", "unhealthy", "GREEN"),
        poll("p2", "bad", "2026-03-01 10:15", "unhealthy", "RED"),
        poll("p2", "bad", "2026-03-02 10:00", "healthy", "RED"),
    ]
)
COLUMNS = [
    "numbers",
    "numbers_polled",
    "mean_availability_time",
    "mean_coverage",
    "numbers_with_incidents",
    "incidents",
    "downtime_seconds",
    "downgrades",
    "numbers_green",
    "numbers_yellow",
    "numbers_red",
]


def test_project_daily_rolls_up_each_project_and_day(build) -> None:
    tables = build(TWO_PROJECTS)
    got = tables["project_daily"].set_index(["project", "day"]).sort_index()[COLUMNS]
    expected = pd.DataFrame(
        [
            ("p1", D, 2, 2, 1.0, 1800 / 86400, 0, 0, 0.0, 0, 1, 1, 0),
            ("p1", D1, 2, 1, 1.0, 900 / 86400, 0, 0, 0.0, 0, 1, 0, 0),
            ("p2", D, 1, 1, 0.0, 2700 / 86400, 1, 1, 2700.0, 1, 0, 0, 1),
            ("p2", D1, 1, 1, 1.0, 1800 / 86400, 1, 1, 0.0, 0, 0, 0, 1),
        ],
        columns=["project", "day", *COLUMNS],
    ).set_index(["project", "day"])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_index_type=False)
    fleet = tables["fleet_daily"].set_index("day")
    assert fleet.loc[D, "numbers"] == 3 and fleet.loc[D, "downgrades"] == 1  # the sum of both


def test_per_number_tables_carry_the_project(build) -> None:
    tables = build(TWO_PROJECTS)
    for name in ("availability_daily", "quality_daily"):
        project = tables[name].drop_duplicates("config_id").set_index("config_id")["project"]
        assert project.to_dict() == {"also": "p1", "bad": "p2", "good": "p1"}


def test_polls_from_before_the_project_column_are_the_default_project(build) -> None:
    tables = build(TWO_PROJECTS.assign(project=None))
    assert tables["project_daily"]["project"].tolist() == ["default", "default"]
    assert tables["project_daily"]["numbers"].tolist() == [3, 3]
    assert set(tables["availability_daily"]["project"]) == {"default"}


@pytest.mark.parametrize("name", ["availability_daily", "quality_daily", "project_daily"])
def test_project_tables_fit_their_schema(build, name: str) -> None:
    from kapso_health.reports.schemas import REPORT_SCHEMAS, to_arrow

    table = to_arrow(name, build(TWO_PROJECTS)[name])
    assert table.schema == REPORT_SCHEMAS[name]
    assert table.column("project").null_count == 0
