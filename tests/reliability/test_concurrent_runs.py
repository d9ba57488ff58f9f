"""Two collections, a report and a compaction at once on one storage root."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from kapso_health.flows.report import write_reports
from kapso_health.reports.timeline import Policy
from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.history import write_day
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import SimulatorConfig
from kapso_health.tasks.storage import ParquetStore
from tests.reliability.children import child_env

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
NUMBERS = 60
REPORT_TABLES = ["availability_daily", "quality_daily", "incidents", "check_pass_rates"]


def day_rows(store: ParquetStore, day) -> dict[str, list]:
    """The day's rows of the tables the history generator writes (it writes no `raw`)."""
    return {
        name: sorted(store.read_arrow(name, day, day).to_pylist(), key=repr)
        for name in ("polls", "checks", "entities", "numbers")
    }


def report_tables(store: ParquetStore, day) -> dict[str, pd.DataFrame]:
    return {
        name: store.read(f"reports/{name}", day, day).sort_values(
            list(store.read(f"reports/{name}", day, day).columns[:3]), ignore_index=True
        )
        for name in REPORT_TABLES
    }


def test_two_collections_a_report_and_a_compaction_at_once(tmp_path: Path, figures) -> None:
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    root = tmp_path / "data"
    write_day(str(root), NUMBERS, yesterday, compact=False)  # a closed day, 96 files a table
    store = ParquetStore(str(root))
    before = day_rows(store, yesterday)
    listed = sorted(n.config_id for n in Fleet(NUMBERS, 4).numbers if n.profile != "deleted")
    config = SimulatorConfig(numbers=NUMBERS, seed=4, rate_per_second=None, rate_per_minute=None)
    with running_simulator(config) as simulator:
        collect = ["collect", "--base-url", simulator.base_url(), "--storage", str(root)]
        commands = [
            [*collect, "--run-id", "run-a", "--chunk-size", "10", "--rate-per-second", "0"],
            [*collect, "--run-id", "run-b", "--chunk-size", "7", "--rate-per-second", "0"],
            ["report", "--day", yesterday.isoformat(), "--storage", str(root)],
            ["compact", "--storage", str(root)],
        ]
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "kapso_health.flows.cli", *args],
                env=child_env(KAPSO_API_KEY="sk-concurrent"),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for args in commands
        ]
        outputs = [child.communicate(timeout=240)[0] for child in children]
    for child, output in zip(children, outputs, strict=True):
        assert child.returncode == 0, output
    polls = store.read("polls", today, today)
    for run in ("run-a", "run-b"):
        assert sorted(polls.loc[polls["run_id"] == run, "config_id"]) == listed
    assert not polls.duplicated(["run_id", "config_id"]).any()
    assert day_rows(store, yesterday) == before  # compacted meanwhile: same rows, once each
    assert len(store.files("polls", yesterday, yesterday)) == 1
    concurrent = report_tables(store, yesterday)
    write_reports(str(root), [yesterday], Policy())  # the same report, built in quiet
    quiet = report_tables(store, yesterday)
    for name in REPORT_TABLES:
        pd.testing.assert_frame_equal(concurrent[name], quiet[name])
    figures(
        "Concurrent runs: two collections, a report and a compaction at once",
        collections=2,
        numbers_per_collection=len(listed),
        closed_day_rows_compacted_meanwhile=sum(len(rows) for rows in before.values()),
        rows_lost=0,
        rows_doubled=0,
        report_tables_equal_to_a_quiet_rebuild=len(REPORT_TABLES),
    )
