"""The deployments as a user runs them: a real `prefect server start`, a process work pool,
`prefect deploy --all` from prefect.yaml, a worker, the simulator, real files."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.settings import PREFECT_API_URL, temporary_settings

from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import Project as SimulatedProject
from kapso_health.simulator.server import SimulatorConfig
from kapso_health.tasks.storage import ParquetStore
from tests.prefect_events import stored_events

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROJECTS = {"acme": ("sk-deployment-acme-51d0", 30, 4), "beta": ("sk-deployment-beta-7e2a", 12, 5)}
FAST = {"rate_per_second": 50, "rate_per_minute": 3000}  # the simulator's limits, raised


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prefect_env(home: Path, api_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KAPSO_"))}
    return env | {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api_url,
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        "PWD": str(ROOT),  # prefect.yaml's pull step runs the flows from here
    }


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    """Stop a process and everything it started (its session)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def prefect_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = prefect_env(tmp_path / "prefect-home", api_url)
    server = start(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path / "server.log",
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the Prefect server did not start in 180 s"
            time.sleep(0.5)
        yield api_url, env
    finally:
        stop(server)


async def wait_for_run(client, flow_run_id, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while True:
        flow_run = await client.read_flow_run(flow_run_id)
        if flow_run.state is not None and flow_run.state.is_final():
            return flow_run
        assert time.monotonic() < deadline, f"flow run still {flow_run.state} after {timeout} s"
        await asyncio.sleep(1)


async def run_deployment(client, name: str, parameters: dict | None = None):
    deployment = await client.read_deployment_by_name(name)
    flow_run = await client.create_flow_run_from_deployment(
        deployment.id, parameters=parameters or {}
    )
    return await wait_for_run(client, flow_run.id)


async def artifact_keys(client, flow_run_id) -> set[str]:
    artifacts = await client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    )
    return {artifact.key for artifact in artifacts}


def test_deploy_from_prefect_yaml_and_run_with_a_worker(
    prefect_server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    api_url, env = prefect_server
    storage = tmp_path / "history"
    config = SimulatorConfig(
        projects=[
            SimulatedProject(name, (key,), numbers, seed, rate_per_second=50, rate_per_minute=3000)
            for name, (key, numbers, seed) in PROJECTS.items()
        ]
    )
    listed = {
        name: sorted(n.config_id for n in Fleet(numbers, seed).numbers if n.profile != "deleted")
        for name, (_, numbers, seed) in PROJECTS.items()
    }
    with running_simulator(config) as simulator:
        projects = tmp_path / "projects.yaml"
        projects.write_text(
            "projects:\n"
            + "".join(
                f"  - name: {name}\n    api_key_secret: kapso-key-{name}\n"
                f"    base_url: {simulator.base_url()}\n"
                for name in PROJECTS
            )
        )
        prefect = str(BIN / "prefect")
        run([prefect, "work-pool", "create", "kapso-health", "--type", "process"], env)
        run([prefect, "variable", "set", "kapso_health_storage", str(storage)], env)
        run([prefect, "variable", "set", "kapso_health_projects", str(projects)], env)
        secrets = "; ".join(
            f"Secret(value={key!r}).save('kapso-key-{name}')"
            for name, (key, _, _) in PROJECTS.items()
        )
        run([sys.executable, "-c", f"from prefect.blocks.system import Secret; {secrets}"], env)
        for name in PROJECTS:
            shared = run(
                [
                    str(BIN / "kapso-health"),
                    "shared-limit",
                    "--name",
                    f"kapso-health-api-{name}",
                    "--rate-per-second",
                    "50",
                    "--rate-per-minute",
                    "3000",
                ],
                env,
            )
            assert f"Global rate limit 'kapso-health-api-{name}': 25 slots" in shared
        deployed = run([prefect, "deploy", "--all", "--no-prompt"], env)
        assert not any(key in deployed for key, _, _ in PROJECTS.values())
        worker = start(
            [prefect, "worker", "start", "--pool", "kapso-health"], env, tmp_path / "worker.log"
        )
        try:
            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                runs = asyncio.run(exercise(simulator))
        finally:
            stop(worker)
    worker_log = (tmp_path / "worker.log").read_text()
    assert not any(key in worker_log for key, _, _ in PROJECTS.values())
    assert "Sharing the rate budget through global rate limit 'kapso-health-api-beta'" in (
        worker_log
    )
    collect, second, report, events = runs
    for flow_run in (collect, second, report):
        assert flow_run.state.is_completed(), worker_log[-4000:]
    polls = ParquetStore(str(storage)).read("polls")
    for name, ids in listed.items():
        mine = polls[polls["project"] == name]
        assert sorted(mine["config_id"].unique()) == ids
        assert mine.groupby("run_id").size().to_dict() == {
            f"{run.id}.{name}": len(ids) for run in (collect, second)
        }
    day = datetime.now(UTC).date()
    availability = ParquetStore(str(storage)).read("reports/availability_daily", day, day)
    assert sorted(availability["config_id"]) == sorted(
        id_ for ids in listed.values() for id_ in ids
    )
    assert (storage / "reports" / "html" / f"kapso-health-{day}.html").is_file()
    assert events > 0


async def exercise(simulator) -> tuple:
    """Two collections (the simulator's clock moved between them), then today's report."""
    async with get_client() as client:
        collect = await run_deployment(client, "collect-health/collect-health", FAST)
        simulator.advance_clock(6 * 3600)
        second = await run_deployment(client, "collect-health/collect-health", FAST)
        today = datetime.now(UTC).date().isoformat()
        report = await run_deployment(client, "daily-report/daily-report", {"day": today})
        assert collect.state.is_completed(), collect.state
        assert {"collect-health-summary", "collect-health-progress"} <= await artifact_keys(
            client, collect.id
        )
        assert {
            "daily-report-summary",
            "daily-report-worst-numbers",
            "daily-report-page",
        } <= await artifact_keys(client, report.id)
        changes = await stored_events(client, prefix="kapso.number.")
        completed = await stored_events(client, name="prefect.flow-run.Completed", at_least=3)
        assert len(completed) >= 3
        return collect, second, report, len(changes)
