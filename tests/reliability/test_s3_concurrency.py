"""Several processes on one history in the S3 server: two compactions of one day at once
(exactly one publishes), and a long-lived reader across another process's collection and
compaction (every row exactly once at every moment)."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from kapso_health import History
from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.history import write_day
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import SimulatorConfig
from kapso_health.tasks.compaction import compact
from kapso_health.tasks.storage import ParquetStore, file_name
from tests.reliability.children import child_env

pytestmark = [pytest.mark.integration]
SPAWN = multiprocessing.get_context("spawn")
DAY = date(2026, 4, 1)


def keys(history: History) -> list[tuple[str, str]]:
    frame = history.read("polls", DAY, DAY, columns=["run_id", "config_id"])
    return sorted(zip(frame["run_id"], frame["config_id"], strict=True))


def compact_in_step(root: str, barrier: Any, results: Any) -> None:
    """A compaction that waits, merged file built, until the other one has built its own:
    both then publish generation 1 at the same moment."""
    store = ParquetStore(root)
    publish = store.write_file

    def write_file(*args: Any, **kwargs: Any) -> str | None:
        barrier.wait(timeout=60)
        return publish(*args, **kwargs)

    store.write_file = write_file  # type: ignore[method-assign]
    results.put(compact(store, "polls", DAY))


def test_two_compactions_of_one_day_at_once_exactly_one_publishes(s3_root: str, figures) -> None:
    write_day(s3_root, 10, DAY, compact=False)
    history = History(s3_root)
    before = keys(history)
    barrier, results = SPAWN.Barrier(2), SPAWN.Queue()
    children = [
        SPAWN.Process(target=compact_in_step, args=(s3_root, barrier, results)) for _ in range(2)
    ]
    for child in children:
        child.start()
    merged = sorted(results.get(timeout=120) for _ in children)
    for child in children:
        child.join(timeout=30)
    assert merged == [0, 96]  # one published generation 1 (If-None-Match: *), one got 412
    assert [file_name(p) for p in history.files("polls", DAY, DAY)] == ["compacted-000001.parquet"]
    assert keys(history) == before
    figures(
        "Two compactions of one day at once on S3: exactly one publishes",
        compactions=2,
        published=1,
        refused_by_the_conditional_put=1,
        rows_lost=0,
        rows_doubled=0,
    )


def read_until_stopped(root: str, days: list[date], stop: Any, results: Any) -> None:
    """One History for the whole life of the process, reading the days again and again."""
    history = History(root)
    reads = []
    while not stop.is_set():
        frame = history.read("polls", days[0], days[-1], columns=["run_id", "config_id"])
        keys = list(zip(frame["run_id"], frame["config_id"], strict=True))
        reads.append((len(keys), len(set(keys)), len(history.files("polls", days[0], days[0]))))
    frame = history.read("polls", days[0], days[-1], columns=["run_id", "config_id"])
    results.put((reads, sorted(zip(frame["run_id"], frame["config_id"], strict=True))))


@pytest.mark.usefixtures("prefect_server")
def test_a_long_lived_reader_sees_each_row_once_across_a_collection_and_a_compaction(
    s3_root: str, figures
) -> None:
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    write_day(s3_root, 12, yesterday, compact=False)
    closed = len(History(s3_root).read("polls", yesterday, yesterday))
    stop, results = SPAWN.Event(), SPAWN.Queue()
    reader = SPAWN.Process(
        target=read_until_stopped, args=(s3_root, [yesterday, today], stop, results)
    )
    reader.start()
    listed = sorted(n.config_id for n in Fleet(30, 4).numbers if n.profile != "deleted")
    config = SimulatorConfig(numbers=30, seed=4, rate_per_second=None, rate_per_minute=None)
    with running_simulator(config) as simulator:
        cli = [sys.executable, "-m", "kapso_health.flows.cli"]
        collect = [*cli, "collect", "--base-url", simulator.base_url(), "--storage", s3_root]
        for args in (
            [*collect, "--run-id", "live", "--chunk-size", "5", "--rate-per-second", "0"],
            [*cli, "compact", "--storage", s3_root],
        ):
            done = subprocess.run(
                args, env=child_env(KAPSO_API_KEY="sk-reader"), capture_output=True, text=True
            )
            assert done.returncode == 0, done.stdout + done.stderr
    stop.set()
    reads, final = results.get(timeout=120)
    reader.join(timeout=30)
    assert len(reads) >= 5
    assert all(rows == distinct for rows, distinct, _ in reads)  # never a row twice
    assert all(rows >= closed for rows, _, _ in reads)  # never the closed day's rows missing
    counts = [rows for rows, _, _ in reads]
    assert counts == sorted(counts)  # rows arrive, never vanish
    assert {files for _, _, files in reads} >= {1, 96}  # it read across the compaction
    assert len(final) == closed + len(listed)  # the long-lived reader sees the new rows too
    figures(
        "A long-lived reader on S3 across a collection and a compaction",
        reads=len(reads),
        rows_read_twice=0,
        closed_day_rows=closed,
        rows_collected_meanwhile=len(listed),
    )
