"""Shared test settings: async tests run on asyncio through anyio's pytest plugin; one Prefect
test harness (a real local server on SQLite) for every flow test that asks for it; the
`kapso-health` command run as a child process."""

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.s3 import MotoServer

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
CliEnv = Callable[[Path, dict[str, str]], dict[str, str]]  # (cwd, extra) -> environment
# Prefect's temporary server started in 12-15 s on these machines; a loaded CI machine (a third
# of its CPU time stolen by the host, seen 2026-12-03) needs more than Prefect's default 20 s.
SERVER_STARTUP_SECONDS = 180


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=SERVER_STARTUP_SECONDS):
        yield


@pytest.fixture
def cli_env() -> CliEnv:
    """`cli_env(cwd, extra)`: a child's environment without our Kapso and Prefect settings, with
    a Prefect home of its own under `cwd` (the child starts its own temporary server)."""

    def env(cwd: Path, extra: dict[str, str]) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KAPSO_", "PREFECT_"))}
        startup = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(SERVER_STARTUP_SECONDS)}
        return {**base, "PREFECT_HOME": str(cwd / ".prefect"), **startup, **extra}

    return env


@pytest.fixture
def run_cli(cli_env: CliEnv) -> Callable[..., subprocess.CompletedProcess]:
    """`run_cli(args, cwd, env=None, timeout=300)`: `kapso-health ARGS` in a child process, in
    `cwd`, with `cli_env` plus `env`; returns the finished process with its text output."""

    def run(
        args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "kapso_health.flows.cli", *args],
            cwd=cwd,
            env=cli_env(cwd, env or {}),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture(scope="session")
def s3_server() -> Iterator["MotoServer"]:
    """moto's S3 server on loopback for the whole session; this process (and the children
    it starts) reach it through AWS_ENDPOINT_URL and dummy credentials."""
    from tests.s3 import MotoServer

    server = MotoServer()
    saved = {name: os.environ.get(name) for name in server.environment()}
    os.environ.update(server.environment())
    try:
        yield server
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
def s3_root(s3_server: "MotoServer") -> str:
    """`s3://<fresh bucket>/kapso`: a history root of its own on the S3 server."""
    return f"{s3_server.new_bucket()}/kapso"


@pytest.fixture(params=["local", "s3"])
def any_root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh history root on a local disk, then on the S3 server: the test runs on both."""
    if request.param == "s3":
        return request.getfixturevalue("s3_root")
    return str(tmp_path / "data")
