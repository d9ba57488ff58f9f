"""The compact-history flow and command on a history written by many appends."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from kapso_health.flows.compact import compact_history
from kapso_health.simulator.history import write_day
from kapso_health.tasks.schemas import TABLES
from kapso_health.tasks.storage import ParquetStore

pytestmark = pytest.mark.integration
FIRST = date(2026, 4, 1)
DAYS = [FIRST + timedelta(days=n) for n in range(3)]


def history(root: Path) -> ParquetStore:
    for day in DAYS:
        write_day(str(root), 6, day, compact=False)
    return ParquetStore(str(root))


def snapshot(store: ParquetStore) -> dict[str, list]:
    return {
        name: sorted(store.read_arrow(name).to_pylist(), key=repr)
        for name in TABLES
        if store.days(name)
    }


@pytest.mark.usefixtures("prefect_server")
def test_flow_compacts_days_before_the_cutoff_and_readers_see_the_same_rows(
    tmp_path: Path,
) -> None:
    store = history(tmp_path)
    before = snapshot(store)
    summary = compact_history(storage=str(tmp_path), before=DAYS[-1])
    assert summary["files_merged"]["polls"] == 2 * 96
    assert summary["files_merged"]["numbers"] == 0  # one file a day already
    for day in DAYS[:-1]:
        assert [Path(f).name for f in store.files("polls", day, day)] == [
            "compacted-000001.parquet"
        ]
    assert len(store.files("polls", DAYS[-1], DAYS[-1])) == 96  # not closed: left alone
    assert snapshot(store) == before


def test_command_compacts_every_closed_day(tmp_path: Path, run_cli) -> None:
    store = history(tmp_path / "data")
    before = snapshot(store)
    done = run_cli(["compact"], tmp_path, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Compacted {3 * 3} table-days" in done.stdout  # polls, checks, entities
    assert all(len(store.files("polls", day, day)) == 1 for day in DAYS)
    assert snapshot(store) == before
