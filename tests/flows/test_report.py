"""The daily-report flow and command on a two-day history written through the store."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from kapso_health.flows.report import daily_report
from kapso_health.reports.schemas import REPORT_SCHEMAS
from kapso_health.simulator.fleet import Fleet
from kapso_health.tasks.flatten import flatten_numbers, flatten_polls
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.schemas import DEFAULT_PROJECT
from kapso_health.tasks.storage import ParquetStore
from kapso_health.tasks.vocabulary import Outcome

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
DAY = date(2026, 3, 1)


def write_history(root: Path, numbers: int = 20, projects: int = 1) -> ParquetStore:
    """Two days plus the evening before, every 15 minutes; every 7th poll of a number fails.
    With several projects, the i-th listed number is in project `p{i % projects}`."""
    store, fleet = ParquetStore(str(root)), Fleet(numbers, seed=8)
    listed = [n for n in fleet.numbers if n.profile != "deleted"]
    items = fleet.list_page("legacy", 1, 100)["data"]
    start = datetime(2026, 2, 28, 22, tzinfo=UTC)
    store.write("numbers", flatten_numbers(items, "legacy", "list", start), "list", "numbers")
    for step in range(50 * 4):
        at = start + timedelta(minutes=15 * step)
        results = [
            PollResult(n.config_id, at, Outcome.TIMEOUT, attempts=4)
            if (step + i) % 7 == 0
            else PollResult(
                n.config_id, at, Outcome.OK, 200, 1, 1.0, fleet.health(n, "legacy", at.timestamp())
            )
            for i, n in enumerate(listed)
        ]
        for part in range(projects):
            mine = results[part::projects]
            project = f"p{part}" if projects > 1 else DEFAULT_PROJECT
            flat = flatten_polls(mine, f"run{step}", project=project)
            for name, table in flat.tables().items():
                store.write(name, table, f"run{step}", f"c{part}")
    return store


def expected_counts(store: ParquetStore, day: date) -> pd.DataFrame:
    """Counted independently from the raw polls, as the README defines them."""
    polls = store.read("polls", day - timedelta(days=1), day + timedelta(days=1))
    at = polls["checked_at"].fillna(polls["polled_at"])
    polls = polls.assign(day=at.dt.date)
    polls = polls[polls["day"] == day]
    ok = polls[polls["outcome"] == "ok"].drop_duplicates(["config_id", "checked_at"])
    counts = ok.groupby(["config_id", "status"]).size().unstack(fill_value=0)
    failed = polls[polls["outcome"] != "ok"].groupby("config_id").size()
    unknown = counts.get("error", 0) + failed.reindex(counts.index, fill_value=0)
    return pd.DataFrame(
        {
            "polls_up": counts.get("healthy", 0),
            "polls_down": counts.get("unhealthy", 0),
            "polls_degraded": counts.get("degraded", 0),
            "polls_unknown": unknown,
        }
    ).astype("int64")


def test_report_counts_match_an_independent_count_and_rebuilds_replace(tmp_path: Path) -> None:
    store = write_history(tmp_path)
    summary = daily_report(day=DAY, to=DAY + timedelta(days=1), storage=str(tmp_path))
    schema = REPORT_SCHEMAS["availability_daily"]
    availability = store.read("reports/availability_daily", DAY, DAY, schema=schema)
    got = availability.set_index("config_id")[list(expected_counts(store, DAY).columns)]
    pd.testing.assert_frame_equal(
        got.sort_index().astype("int64"),
        expected_counts(store, DAY).sort_index(),
        check_names=False,
    )
    assert availability["coverage"].between(0, 1).all()
    # a known observation holds until the next poll 15 min later, give or take Kapso's 3-minute
    # cache offset of `checked_at` (12 to 18 min), plus a slot at either edge of the day
    known = availability[["polls_up", "polls_down", "polls_degraded"]].sum(axis=1)
    seconds = availability["coverage"] * 86400
    assert ((seconds >= known * 720 - 1800) & (seconds <= known * 1080 + 1800)).all()
    assert [row["day"] for row in summary["fleet"]] == ["2026-03-01", "2026-03-02"]
    before = {
        p: len(store.read(p, DAY, DAY + timedelta(days=1), schema=REPORT_SCHEMAS[p[8:]]))
        for p in (
            "reports/availability_daily",
            "reports/quality_daily",
            "reports/incidents",
            "reports/fleet_daily",
            "reports/project_daily",
        )
    }
    daily_report(day=DAY, to=DAY + timedelta(days=1), storage=str(tmp_path))
    after = {
        p: len(store.read(p, DAY, DAY + timedelta(days=1), schema=REPORT_SCHEMAS[p[8:]]))
        for p in before
    }
    assert before == after and before["reports/fleet_daily"] == 2
    assert before["reports/project_daily"] == 2  # one project, the default, on each day


async def read_artifacts(flow_run_id) -> dict:
    async with get_client() as client:
        found = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    return {a.key: a for a in found}


def test_report_writes_a_page_and_three_keyed_artifacts(tmp_path: Path) -> None:
    write_history(tmp_path, numbers=8)
    state = daily_report(day=DAY, storage=str(tmp_path), return_state=True)
    summary = state.result()
    page = Path(summary["page"])
    assert page == tmp_path / "reports" / "html" / "kapso-health-2026-03-01.html"
    html = page.read_text()
    assert html.count("class=cell") == 2 * 8 and html.count("<script") == 1  # filter and sort
    # the default rule, said on the page
    assert "own cadence: 1.5 x its time-weighted median interval" in html
    assert summary["max_gap"].startswith("each number's own cadence")
    artifacts = asyncio.run(read_artifacts(state.state_details.flow_run_id))
    assert set(artifacts) == {
        "daily-report-summary",
        "daily-report-worst-numbers",
        "daily-report-page",
    }
    assert "| 2026-03-01 |" in artifacts["daily-report-summary"].data
    assert "Observations hold at most each number's own cadence" in (
        artifacts["daily-report-summary"].data
    )
    assert page.as_uri() in artifacts["daily-report-page"].data
    worst = json.loads(artifacts["daily-report-worst-numbers"].data)
    availability = ParquetStore(str(tmp_path)).read(
        "reports/availability_daily", DAY, DAY, schema=REPORT_SCHEMAS["availability_daily"]
    )
    lowest = availability.sort_values("availability_time").iloc[0]
    assert worst[0]["config_id"] == lowest["config_id"]  # one day: the mean is that day
    assert worst[0]["number"].endswith(f"({lowest['config_id']})")  # named, the id beside
    data = artifacts["daily-report-summary"].data
    assert data.startswith("# Kapso health, daily report\n\n## Needs attention (")
    count = int(data.split("## Needs attention (", 1)[1].split(")", 1)[0].replace(",", ""))
    assert f"Needs attention ({count:,})</h2>" in html and count > 0
    listed = data.split("## Needs attention", 1)[1].split("Observations hold", 1)[0]
    rows = [line for line in listed.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) - 1 == min(count, 20)  # the header, then the first 20 at most
    assert all(" · " in row.split(" | ", 1)[0] for row in rows[1:])  # business name · phone


def test_per_customer_rollup_uses_the_numbers_table(tmp_path: Path) -> None:
    store = write_history(tmp_path, numbers=30)
    daily_report(day=DAY, storage=str(tmp_path))
    customers = store.read(
        "reports/customer_daily", DAY, DAY, schema=REPORT_SCHEMAS["customer_daily"]
    )
    listed = store.read("numbers")
    expected = listed["customer_id"].fillna("(unknown)").value_counts().sort_index()
    got = customers.set_index("customer_id")["numbers"].sort_index()
    assert got.to_dict() == expected.to_dict()


def test_two_projects_get_their_rollup_page_section_and_summary_rows(tmp_path: Path) -> None:
    store = write_history(tmp_path, numbers=6, projects=2)
    state = daily_report(day=DAY, storage=str(tmp_path), return_state=True)
    summary = state.result()
    polls = store.read("polls", DAY, DAY)
    counts = polls.groupby("project")["config_id"].nunique().to_dict()
    assert set(counts) == {"p0", "p1"} and sum(counts.values()) == polls["config_id"].nunique()
    assert {r["project"]: r["numbers"] for r in summary["projects"]} == counts
    rollup = store.read("reports/project_daily", DAY, DAY, schema=REPORT_SCHEMAS["project_daily"])
    assert rollup.set_index("project")["numbers"].to_dict() == counts
    assert "id=projects" in Path(summary["page"]).read_text()
    artifact = asyncio.run(read_artifacts(state.state_details.flow_run_id))["daily-report-summary"]
    assert "## Per Kapso project" in artifact.data
    assert "| 2026-03-01 | p0 |" in artifact.data and "| 2026-03-01 | p1 |" in artifact.data


def test_a_day_without_data_gives_empty_tables_not_an_error(tmp_path: Path) -> None:
    summary = daily_report(day=DAY, storage=str(tmp_path / "empty"))
    assert summary["fleet"] == []


def test_an_explicit_max_gap_is_the_rule_the_page_states(tmp_path: Path) -> None:
    summary = daily_report(day=DAY, storage=str(tmp_path / "empty"), max_gap_minutes=45)
    assert summary["max_gap"] == "a fixed 45 min (max gap set explicitly)"
    assert "at most a fixed 45 min" in Path(summary["page"]).read_text()


def test_report_command_prints_the_fleet_table(tmp_path: Path, run_cli) -> None:
    write_history(tmp_path / "data", numbers=5)
    done = run_cli(["report", "--day", "2026-03-01", "--storage", str(tmp_path / "data")], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2026-03-01" in done.stdout and "Report tables:" in done.stdout
    assert (tmp_path / "data" / "reports" / "html" / "kapso-health-2026-03-01.html").exists()
    assert "kapso-health-2026-03-01.html" in done.stdout
    assert "ERROR" not in done.stdout + done.stderr


def test_report_out_puts_the_page_where_asked_and_storage_comes_from_the_environment(
    tmp_path: Path, run_cli
) -> None:
    write_history(tmp_path / "history", numbers=3)
    done = run_cli(
        ["report", "--day", "2026-03-01", "--out", str(tmp_path / "pages")],
        tmp_path,
        env={"KAPSO_HEALTH_STORAGE": str(tmp_path / "history")},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    page = tmp_path / "pages" / "kapso-health-2026-03-01.html"
    assert page.is_file() and str(page) in done.stdout
    assert not (tmp_path / "history" / "reports" / "html").exists()
    assert (tmp_path / "history" / "reports" / "availability_daily").is_dir()
