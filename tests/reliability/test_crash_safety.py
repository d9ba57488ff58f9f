"""SIGKILL the collector and the compaction at random moments while they write: the history
stays readable, holds no partial file, and a re-run leaves nothing doubled."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kapso_health.flows.collect import collect_health
from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.history import write_day
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import SimulatorConfig
from kapso_health.tasks.compaction import compact
from kapso_health.tasks.schemas import TABLES
from kapso_health.tasks.storage import ParquetStore
from tests.reliability.children import child_env

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
TRIALS = 20
NUMBERS = 150
KEY = "sk-crash-test"


def kill_while_writing(args: list[str], root: Path, rng: random.Random) -> str:
    """Start `args`, wait until it has written something under `root`, then SIGKILL it
    after a random extra moment. Returns when it died ('killed' or 'finished first')."""
    before = set(root.rglob("*"))
    process = subprocess.Popen(
        args, env=child_env(KAPSO_API_KEY=KEY), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while process.poll() is None and set(root.rglob("*")) == before:
        assert time.monotonic() < deadline, "the child wrote nothing in 60 s"
        time.sleep(0.005)
    time.sleep(rng.uniform(0, 0.4))
    if process.poll() is not None:
        return "finished first"
    process.send_signal(signal.SIGKILL)
    process.wait()
    return "killed"


def visible_files_read_whole(root: Path) -> int:
    """Every data file a reader can see opens and reads: no partial file is visible."""
    files = [p for p in root.rglob("*.parquet") if not p.name.startswith(".")]
    for path in files:
        pq.read_table(path)
    return len(files)


def snapshot(store: ParquetStore) -> dict[str, list]:
    return {
        name: sorted(store.read_arrow(name).to_pylist(), key=repr)
        for name in TABLES
        if store.days(name)
    }


def test_collector_killed_at_random_moments_then_rerun(tmp_path: Path, figures) -> None:
    rng = random.Random(7)
    config = SimulatorConfig(numbers=NUMBERS, seed=9, rate_per_second=None, rate_per_minute=None)
    listed = sorted(n.config_id for n in Fleet(NUMBERS, 9).numbers if n.profile != "deleted")
    results = {"killed": 0, "finished first": 0}
    leftovers = 0
    with running_simulator(config) as simulator:
        for trial in range(TRIALS):
            root = tmp_path / f"trial-{trial}"
            root.mkdir()
            args = [
                sys.executable,
                "-m",
                "kapso_health.flows.cli",
                "collect",
                "--base-url",
                simulator.base_url(),
                "--storage",
                str(root),
                "--run-id",
                "crashed",
                "--chunk-size",
                "10",
                "--rate-per-second",
                "0",
                "--rate-per-minute",
                "0",
                "--max-in-flight",
                "8",
            ]
            results[kill_while_writing(args, root, rng)] += 1
            leftovers += len(list(root.rglob(".*.tmp")))
            store = ParquetStore(str(root))
            visible_files_read_whole(root)
            for name in TABLES:
                store.read_arrow(name)  # reads without error after the crash
            os.environ["KAPSO_API_KEY"] = KEY
            try:
                asyncio.run(
                    collect_health(
                        base_url=simulator.base_url(),
                        storage=str(root),
                        run_id="crashed",
                        rate_per_second=0,
                        rate_per_minute=0,
                        chunk_size=10,
                    )
                )
            finally:
                os.environ.pop("KAPSO_API_KEY", None)
            polls = store.read("polls")
            assert sorted(polls["config_id"]) == listed, f"trial {trial}"
            assert sorted(store.read("numbers")["config_id"]) == listed
            assert not list(root.rglob(".*.tmp"))  # the re-run cleared the dead attempt's
            visible_files_read_whole(root)
    assert results["killed"] >= TRIALS // 2
    figures(
        "Crash safety: the collector SIGKILLed while writing, then re-run",
        trials=TRIALS,
        killed_while_writing=results["killed"],
        finished_before_the_kill=results["finished first"],
        numbers_per_run=len(listed),
        rows_lost=0,
        rows_doubled=0,
        hidden_temporary_files_left_by_kills=f"{leftovers}, all removed by the re-runs",
    )


def test_compaction_killed_at_random_moments_then_rerun(tmp_path: Path, figures) -> None:
    rng = random.Random(8)
    template = tmp_path / "template"
    days = [date(2026, 5, 1) + timedelta(days=n) for n in range(2)]
    for day in days:
        write_day(str(template), 10, day, compact=False)
    expected = snapshot(ParquetStore(str(template)))
    results = {"killed": 0, "finished first": 0}
    for trial in range(TRIALS):
        root = tmp_path / f"trial-{trial}"
        shutil.copytree(template, root)
        args = [sys.executable, "-m", "kapso_health.flows.cli", "compact", "--storage", str(root)]
        results[kill_while_writing(args, root, rng)] += 1
        store = ParquetStore(str(root))
        visible_files_read_whole(root)
        assert snapshot(store) == expected, f"trial {trial}: after the kill"
        for name in TABLES:
            for day in days:
                compact(store, name, day)
        assert snapshot(store) == expected, f"trial {trial}: after the re-run"
        assert all(len(store.files("polls", day, day)) == 1 for day in days)
    assert results["killed"] >= TRIALS // 2
    figures(
        "Crash safety: compaction SIGKILLed while writing, then re-run",
        trials=TRIALS,
        killed_while_writing=results["killed"],
        finished_before_the_kill=results["finished first"],
        files_per_table_and_day_before=96,
        rows_lost=0,
        rows_doubled=0,
    )
