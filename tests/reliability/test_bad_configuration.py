"""Bad configuration and use: each a clear error at once, or an empty, correct result.

One test per case, so each fails on its own; every case adds its row to one section of the
figures page. Run times are reported there, never asserted: "at once" is counted in requests.
"""

from __future__ import annotations

import re
import socket
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from kapso_health.simulator.process import RunningSimulator, running_simulator
from kapso_health.simulator.server import SimulatorConfig
from kapso_health.tasks.settings import MAX_ATTEMPTS
from kapso_health.tasks.storage import ParquetStore

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
CLAIM = "Bad configuration and use: clear errors, or empty and correct results"
KEY = "sk-badconfig-51ae"  # refused by the simulators below, and never printed
RIGHT_KEY = "the-right-key"
NUMBERS = 100
# Prefect's log prefix: `12:00:00.000 | WARNING | Flow run 'name' - ` (the level is kept)
PREFECT_LOG = re.compile(
    r"^\d\d:\d\d:\d\d\.\d+ \| (\w+) *\| (?:(?:Flow|Task) run '[^']*'|[\w.]+) - "
)


@dataclass
class Ran:
    """One `kapso-health` run: its exit, last line, and the requests the simulator answered."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float  # for the figures page only
    requests: int  # health and list requests (0 without a simulator)

    @property
    def message(self) -> str:
        lines = self.stderr.strip().splitlines() or self.stdout.strip().splitlines() or [""]
        return PREFECT_LOG.sub(r"\1: ", lines[-1])  # no clock time or random flow-run name


@dataclass
class Bench:
    """Where a case runs: its directory and the `kapso-health` command."""

    tmp_path: Path
    run_cli: Callable

    def cli(self, args: list[str], simulator: RunningSimulator | None = None, **env: str) -> Ran:
        before = requests(simulator)
        started = time.monotonic()
        done = self.run_cli(args, self.tmp_path, env, timeout=120)
        seconds = time.monotonic() - started
        return Ran(done.returncode, done.stdout, done.stderr, seconds, requests(simulator) - before)


def requests(simulator: RunningSimulator | None) -> int:
    if simulator is None:
        return 0
    counts = simulator.stats()["counts"]
    return counts.get("health_requests", 0) + counts.get("list_requests", 0)


@contextmanager
def fleet(numbers: int = NUMBERS) -> Iterator[RunningSimulator]:
    """A simulator that accepts only RIGHT_KEY."""
    with running_simulator(SimulatorConfig(numbers=numbers, api_key=RIGHT_KEY)) as simulator:
        yield simulator


def unreachable() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the socket goes
    return f"http://127.0.0.1:{port}/api/v1"


def missing_api_key(bench: Bench) -> tuple[Ran, str]:
    with fleet() as simulator:
        ran = bench.cli(["collect", "--base-url", simulator.base_url()], simulator)
    assert ran.returncode == 1 and "no Kapso API key: set KAPSO_API_KEY" in ran.message
    assert ran.requests == 0
    return ran, ""


def wrong_api_key(bench: Bench) -> tuple[Ran, str]:
    storage = str(bench.tmp_path / "w")
    with fleet() as simulator:
        args = ["collect", "--base-url", simulator.base_url(), "--storage", storage]
        ran = bench.cli(args, simulator, KAPSO_API_KEY=KEY)
    assert ran.returncode == 3 and "Kapso refused the API key (HTTP 401" in ran.message
    assert ran.requests == 1  # the refused list page, and nothing after it: no retry storm
    return ran, f" ({ran.requests} request(s) in all, for {NUMBERS} numbers)"


def storage_root_not_writable(bench: Bench) -> tuple[Ran, str]:
    blocker = bench.tmp_path / "a-file"
    blocker.write_text("not a directory")
    with fleet() as simulator:
        args = ["collect", "--base-url", simulator.base_url(), "--storage", str(blocker / "data")]
        ran = bench.cli(args, simulator, KAPSO_API_KEY=RIGHT_KEY)
    assert ran.returncode == 1 and "cannot write to the storage root" in ran.message
    assert ran.requests == 0  # failed before sending anything
    return ran, ""


def malformed_ids(bench: Bench) -> tuple[Ran, str]:
    with fleet() as simulator:
        args = ["collect", "--ids", "ok-id", "bad\x01id", "--base-url", simulator.base_url()]
        ran = bench.cli(args, simulator, KAPSO_API_KEY=RIGHT_KEY)
    assert ran.returncode == 1 and "malformed number ids" in ran.message and "bad" in ran.message
    assert ran.requests == 0
    return ran, ""


def unreachable_base_url_numbers_from_the_list(bench: Bench) -> tuple[Ran, str]:
    ran = bench.cli(["collect", "--base-url", unreachable()], KAPSO_API_KEY=KEY)
    assert ran.returncode == 1 and "list" in ran.message.lower()
    return ran, ""


def unreachable_base_url_explicit_ids(bench: Bench) -> tuple[Ran, str]:
    storage = bench.tmp_path / "unreachable"
    args = ["collect", "--base-url", unreachable(), "--ids", "n1", "n2", "--storage", str(storage)]
    ran = bench.cli(args, KAPSO_API_KEY=KEY)
    polls = ParquetStore(str(storage)).read("polls")
    assert ran.returncode == 0
    assert sorted(polls["config_id"]) == ["n1", "n2"]
    assert set(polls["outcome"]) == {"connection_error"}
    assert set(polls["attempts"]) == {MAX_ATTEMPTS}
    return ran, f"; each id has its row: outcome connection_error after {MAX_ATTEMPTS} attempts"


def empty_list_of_numbers(bench: Bench) -> tuple[Ran, str]:
    storage = bench.tmp_path / "empty"
    with running_simulator(SimulatorConfig(numbers=0)) as simulator:
        args = ["collect", "--base-url", simulator.base_url(), "--storage", str(storage)]
        ran = bench.cli(args, simulator, KAPSO_API_KEY=KEY)
    assert ran.returncode == 0 and "0 numbers" in ran.stdout
    assert len(ParquetStore(str(storage)).read("polls")) == 0
    return ran, ""


def report_for_a_day_with_no_data(bench: Bench) -> tuple[Ran, str]:
    storage = bench.tmp_path / "nothing"
    ran = bench.cli(["report", "--day", "2020-01-01", "--storage", str(storage)])
    assert ran.returncode == 0 and "Report page" in ran.stdout
    availability = ParquetStore(str(storage)).read(
        "reports/availability_daily", "2020-01-01", "2020-01-01"
    )
    assert len(availability) == 0
    return ran, ""


CASES = {
    "missing API key": missing_api_key,
    "wrong API key": wrong_api_key,
    "storage root not writable": storage_root_not_writable,
    "malformed ids": malformed_ids,
    "unreachable base URL, numbers from the list": unreachable_base_url_numbers_from_the_list,
    "unreachable base URL, explicit ids": unreachable_base_url_explicit_ids,
    "empty list of numbers": empty_list_of_numbers,
    "report for a day with no data": report_for_a_day_with_no_data,
}


@pytest.mark.parametrize("label", list(CASES), ids=[case.__name__ for case in CASES.values()])
def test_bad_configuration_gives_clear_errors_or_empty_results(
    label: str, tmp_path: Path, run_cli, figures
) -> None:
    ran, note = CASES[label](Bench(tmp_path, run_cli))
    assert KEY not in ran.stdout + ran.stderr
    shown = textwrap.shorten(ran.message.replace(str(tmp_path), "<tmp>"), 240, placeholder=" ...")
    row = f"exit {ran.returncode} in {ran.seconds:.1f} s: `{shown}`{note}"
    figures(CLAIM, **{label: row})
