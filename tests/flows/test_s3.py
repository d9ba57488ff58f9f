"""The flows with the history in a bucket of the S3 server: a collection with faults, the
report (tables and page in the bucket), the compaction, and the reader over all of it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from kapso_health import History
from kapso_health.flows.collect import collect_health
from kapso_health.flows.compact import compact_history
from kapso_health.flows.report import daily_report
from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.history import write_day
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import Faults, SimulatorConfig
from kapso_health.tasks.storage import ParquetStore

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
NUMBERS = 40
FAULTS = Faults(server_error=0.1, malformed=0.05, timeout=0.02, hang_seconds=2.0)


def test_collect_report_and_compact_with_the_history_in_a_bucket(
    s3_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAPSO_API_KEY", "sk-s3-test")
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    write_day(s3_root, 12, yesterday, compact=False)  # a closed day of 96 runs
    history = History(s3_root)
    closed_before = history.read("polls", yesterday, yesterday)
    config = SimulatorConfig(
        numbers=NUMBERS, seed=5, rate_per_second=None, rate_per_minute=None, faults=FAULTS
    )
    listed = sorted(n.config_id for n in Fleet(NUMBERS, 5).numbers if n.profile != "deleted")
    with running_simulator(config) as simulator:
        summary = asyncio.run(
            collect_health(
                base_url=simulator.base_url(),
                storage=s3_root,
                run_id="s3-run",
                rate_per_second=0,
                rate_per_minute=0,
                timeout_seconds=1.0,
                max_attempts=1,
                chunk_size=10,
            )
        )
        stats = simulator.stats()
    assert sum(v for k, v in stats["counts"].items() if k.startswith("fault_")) > 0
    polls = history.read("polls", datetime.now(UTC).date())
    assert sorted(polls["config_id"]) == listed  # every number exactly one row, faults or not
    assert set(polls["outcome"]) - {"ok", "not_found"}  # some polls failed and say so
    assert summary["storage"] == s3_root

    report = daily_report(day=yesterday, storage=s3_root)
    assert report["page"] == f"{s3_root}/reports/html/kapso-health-{yesterday}.html"
    store = ParquetStore(s3_root)
    assert b"Kapso health report" in store.fs.cat(report["page"])
    availability = history.report("availability_daily", yesterday, yesterday)
    assert sorted(availability["config_id"]) == sorted(closed_before["config_id"].unique())

    merged = compact_history(storage=s3_root)
    assert merged["files_merged"]["polls"] == 96
    assert [f.rsplit("/", 1)[-1] for f in history.files("polls", yesterday, yesterday)] == [
        "compacted-000001.parquet"
    ]
    closed_after = history.read("polls", yesterday, yesterday)
    key = ["run_id", "config_id"]
    pd.testing.assert_frame_equal(
        closed_before.sort_values(key, ignore_index=True),
        closed_after.sort_values(key, ignore_index=True),
    )
    assert store.fs.find(f"{s3_root}/_compacting") == []
