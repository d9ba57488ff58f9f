"""Bad configuration and use: each a clear error in seconds, or an empty, correct result."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import SimulatorConfig
from kapso_health.tasks.storage import ParquetStore
from tests.reliability.children import child_env

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
KEY = "sk-badconfig-51ae"


def cli(args: list[str], cwd: Path, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "kapso_health.flows.cli", *args],
        cwd=cwd,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done, time.monotonic() - started


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the socket goes


def test_bad_configuration_gives_clear_errors_or_empty_results(tmp_path: Path, figures) -> None:
    found: dict[str, str] = {}

    def record(case: str, done: subprocess.CompletedProcess, seconds: float) -> str:
        lines = done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or [""]
        message = lines[-1]
        shown = message.replace(str(tmp_path), "<tmp>")[:160]
        found[case] = f"exit {done.returncode} in {seconds:.1f} s: `{shown}`"
        assert KEY not in done.stdout + done.stderr
        return message

    unreachable = f"http://127.0.0.1:{closed_port()}/api/v1"
    with running_simulator(SimulatorConfig(numbers=100, api_key="the-right-key")) as simulator:
        done, seconds = cli(["collect", "--base-url", simulator.base_url()], tmp_path)
        message = record("missing API key", done, seconds)
        assert done.returncode == 1 and "no Kapso API key: set KAPSO_API_KEY" in message

        done, seconds = cli(
            ["collect", "--base-url", simulator.base_url(), "--storage", str(tmp_path / "w")],
            tmp_path,
            KAPSO_API_KEY=KEY,
        )
        message = record("wrong API key", done, seconds)
        counts = simulator.stats()["counts"]
        requests = counts.get("health_requests", 0) + counts.get("list_requests", 0)
        assert done.returncode == 3 and "Kapso refused the API key (HTTP 401" in message
        assert seconds < 5 and requests <= 16  # stops at once: no retry storm
        found["wrong API key"] += f" ({requests} request(s) in all, for 100 numbers)"

        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        done, seconds = cli(
            ["collect", "--base-url", simulator.base_url(), "--storage", str(blocker / "data")],
            tmp_path,
            KAPSO_API_KEY="the-right-key",
        )
        message = record("storage root not writable", done, seconds)
        assert done.returncode == 1 and "cannot write to the storage root" in message
        counts = simulator.stats()["counts"]
        sent = counts.get("health_requests", 0) + counts.get("list_requests", 0)
        assert sent == requests  # failed before sending anything

        done, seconds = cli(
            ["collect", "--ids", "ok-id", "bad\x01id", "--base-url", simulator.base_url()],
            tmp_path,
            KAPSO_API_KEY="the-right-key",
        )
        message = record("malformed ids", done, seconds)
        assert done.returncode == 1 and "malformed number ids" in message and "bad" in message

    done, seconds = cli(["collect", "--base-url", unreachable], tmp_path, KAPSO_API_KEY=KEY)
    message = record("unreachable base URL, numbers from the list", done, seconds)
    assert done.returncode == 1 and "list" in message.lower()

    storage = tmp_path / "unreachable"
    done, seconds = cli(
        ["collect", "--base-url", unreachable, "--ids", "n1", "n2", "--storage", str(storage)],
        tmp_path,
        KAPSO_API_KEY=KEY,
    )
    record("unreachable base URL, explicit ids", done, seconds)
    polls = ParquetStore(str(storage)).read("polls")
    assert done.returncode == 0
    assert sorted(polls["config_id"]) == ["n1", "n2"]
    assert set(polls["outcome"]) == {"connection_error"} and set(polls["attempts"]) == {4}
    found["unreachable base URL, explicit ids"] += (
        "; each id has its row: outcome connection_error after 4 attempts"
    )

    with running_simulator(SimulatorConfig(numbers=0)) as empty:
        storage = tmp_path / "empty"
        done, seconds = cli(
            ["collect", "--base-url", empty.base_url(), "--storage", str(storage)],
            tmp_path,
            KAPSO_API_KEY=KEY,
        )
        record("empty list of numbers", done, seconds)
        assert done.returncode == 0 and "0 numbers" in done.stdout
        assert len(ParquetStore(str(storage)).read("polls")) == 0

    done, seconds = cli(
        ["report", "--day", "2020-01-01", "--storage", str(tmp_path / "nothing")], tmp_path
    )
    record("report for a day with no data", done, seconds)
    assert done.returncode == 0 and "Report page" in done.stdout
    availability = ParquetStore(str(tmp_path / "nothing")).read(
        "reports/availability_daily", "2020-01-01", "2020-01-01"
    )
    assert len(availability) == 0

    figures("Bad configuration and use: clear errors, or empty and correct results", **found)
