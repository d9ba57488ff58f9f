"""SIGKILL the collector and the compaction at random moments while they write: the history
stays readable, holds no partial file, and a re-run leaves nothing doubled."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from kapso_health.flows.collect import collect_health
from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.history import write_day
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import SimulatorConfig
from kapso_health.tasks.compaction import compact, finish_compactions
from kapso_health.tasks.schemas import TABLES
from kapso_health.tasks.storage import ParquetStore, fetch_whole, file_name
from tests.reliability.children import child_env

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
TRIALS = {"local": 20, "s3": 10}  # S3 trials cost more (a server between); 10 prove it
WHERE = {"local": "local disk", "s3": "S3"}
NUMBERS = 150
KEY = "sk-crash-test"


@pytest.fixture(params=["local", "s3"])
def kind(request: pytest.FixtureRequest) -> str:
    if request.param == "s3":
        request.getfixturevalue("s3_server")
    return request.param


def trial_roots(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh history root per trial: a folder, or a prefix of one bucket."""
    base = str(tmp_path) if kind == "local" else request.getfixturevalue("s3_root")
    for trial in range(TRIALS[kind]):
        yield f"{base}/trial-{trial}"


def listing(store: ParquetStore) -> set[str]:
    try:
        return set(store.fs.find(store.root))
    except FileNotFoundError:
        return set()


def written_since(store: ParquetStore, before: set[str]) -> bool:
    """Whether the history has changed since `before`, the write probe (the root's check
    before a run starts: written and deleted at once) aside."""
    return any(not file_name(path).startswith(".write-probe-") for path in listing(store) ^ before)


def kill_while_writing(args: list[str], store: ParquetStore, rng: random.Random) -> str:
    """Start `args`, wait until it has written something under the store's root, then SIGKILL
    it after a random extra moment. Returns when it died ('killed' or 'finished first')."""
    before = listing(store)
    process = subprocess.Popen(
        args, env=child_env(KAPSO_API_KEY=KEY), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while process.poll() is None and not written_since(store, before):
        assert time.monotonic() < deadline, "the child wrote nothing in 60 s"
        time.sleep(0.005 if store.local else 0.05)  # a listing is a request to the server
    time.sleep(rng.uniform(0, 0.4))
    if process.poll() is not None:
        return "finished first"
    process.send_signal(signal.SIGKILL)
    process.wait()
    return "killed"


def visible_files_read_whole(store: ParquetStore) -> int:
    """Every data file a reader can see opens and reads: no partial file is visible. The
    files' bytes are fetched together (concurrently on S3), then each is read as Parquet."""
    files = [p for p in listing(store) if p.endswith(".parquet") and "/." not in p]
    for data in fetch_whole(store.fs, files):
        pq.read_table(pa.BufferReader(data))
    return len(files)


def temporary_files(store: ParquetStore) -> int:
    return sum(1 for p in listing(store) if file_name(p).startswith(".") and p.endswith(".tmp"))


def snapshot(store: ParquetStore) -> dict[str, list]:
    return {
        name: sorted(store.read_arrow(name).to_pylist(), key=repr)
        for name in TABLES
        if store.days(name)
    }


def test_collector_killed_at_random_moments_then_rerun(
    tmp_path: Path, figures, kind: str, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(7)
    config = SimulatorConfig(numbers=NUMBERS, seed=9, rate_per_second=None, rate_per_minute=None)
    listed = sorted(n.config_id for n in Fleet(NUMBERS, 9).numbers if n.profile != "deleted")
    results = {"killed": 0, "finished first": 0}
    leftovers = 0
    with running_simulator(config) as simulator:
        for trial, root in enumerate(trial_roots(kind, tmp_path, request)):
            store = ParquetStore(root)
            args = [
                sys.executable,
                "-m",
                "kapso_health.flows.cli",
                "collect",
                "--base-url",
                simulator.base_url(),
                "--storage",
                root,
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
            results[kill_while_writing(args, store, rng)] += 1
            leftovers += temporary_files(store)
            visible_files_read_whole(store)
            for name in TABLES:
                store.read_arrow(name)  # reads without error after the crash
            os.environ["KAPSO_API_KEY"] = KEY
            try:
                asyncio.run(
                    collect_health(
                        base_url=simulator.base_url(),
                        storage=root,
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
            assert temporary_files(store) == 0  # the re-run cleared the dead attempt's
            visible_files_read_whole(store)
    assert results["killed"] >= TRIALS[kind] // 2
    figures(
        "Crash safety: the collector SIGKILLed while writing, then re-run",
        **{
            key: {WHERE[kind]: value}
            for key, value in dict(
                trials=TRIALS[kind],
                killed_while_writing=results["killed"],
                finished_before_the_kill=results["finished first"],
                numbers_per_run=len(listed),
                rows_lost=0,
                rows_doubled=0,
                hidden_temporary_files_left_by_kills=leftovers,
                hidden_temporary_files_left_after_rerunning=0,
            ).items()
        },
    )


def test_compaction_killed_at_random_moments_then_rerun(
    tmp_path: Path, figures, kind: str, request: pytest.FixtureRequest
) -> None:
    rng = random.Random(8)
    roots = list(trial_roots(kind, tmp_path, request))
    template = ParquetStore(roots[0].rsplit("/", 1)[0] + "/template")
    days = [date(2026, 5, 1) + timedelta(days=n) for n in range(2 if kind == "local" else 1)]
    for day in days:
        write_day(template.url, 10, day, compact=False)
    expected = snapshot(template)
    results = {"killed": 0, "finished first": 0}
    for trial, root in enumerate(roots):
        store = ParquetStore(root)
        template.fs.copy(template.root, store.root, recursive=True)
        args = [sys.executable, "-m", "kapso_health.flows.cli", "compact", "--storage", root]
        results[kill_while_writing(args, store, rng)] += 1
        visible_files_read_whole(store)
        assert snapshot(store) == expected, f"trial {trial}: after the kill"
        finish_compactions(store)  # what the next run of any flow does first
        for name in TABLES:
            for day in days:
                compact(store, name, day)
        assert snapshot(store) == expected, f"trial {trial}: after the re-run"
        assert all(len(store.files("polls", day, day)) == 1 for day in days)
        assert visible_files_read_whole(store) == 4 * len(days)  # 4 tables (no raw), one each
    assert results["killed"] >= TRIALS[kind] // 2
    figures(
        "Crash safety: compaction SIGKILLed while writing, then re-run",
        **{
            key: {WHERE[kind]: value}
            for key, value in dict(
                trials=TRIALS[kind],
                killed_while_writing=results["killed"],
                finished_before_the_kill=results["finished first"],
                files_per_table_and_day_before=96,
                rows_lost=0,
                rows_doubled=0,
            ).items()
        },
    )
