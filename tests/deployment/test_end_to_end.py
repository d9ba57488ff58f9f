"""The deployments as a user runs them: a real `prefect server start`, a process work pool,
`prefect deploy --all` from prefect.yaml, a worker, the simulator, real files."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from prefect.settings import PREFECT_API_URL, temporary_settings

from kapso_health.flows.report import write_reports
from kapso_health.reports.schemas import REPORT_SCHEMAS
from kapso_health.reports.timeline import Policy
from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import Project as SimulatedProject
from kapso_health.simulator.server import SimulatorConfig
from kapso_health.tasks.schemas import TABLES
from kapso_health.tasks.storage import ParquetStore
from tests.prefect_events import stored_events
from tests.s3 import MotoServer

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROJECTS = {"acme": ("sk-deployment-acme-51d0", 30, 4), "beta": ("sk-deployment-beta-7e2a", 12, 5)}
# The simulator's limits, raised, and a short rolling window: in the deployment's 14.75
# minutes a rolling run would poll these small fleets again every 3 minutes (Kapso's cache);
# in 2 minutes each number once (the window counts from when the run was due, before the
# worker picked it up). The second collection comes seconds after the first, inside Kapso's
# cache, where a rolling run polls nobody: it is a full sweep (no window).
FAST = {"rate_per_second": 50, "rate_per_minute": 3000, "window_minutes": 2.0}
SWEEP = FAST | {"window_minutes": None}


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


def start(args: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> subprocess.Popen:
    handle = log.open("w")
    return subprocess.Popen(
        args, cwd=cwd, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
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


async def run_deployment(
    client, name: str, parameters: dict | None = None, work_queue_name: str | None = None
):
    deployment = await client.read_deployment_by_name(name)
    flow_run = await client.create_flow_run_from_deployment(
        deployment.id, parameters=parameters or {}, work_queue_name=work_queue_name
    )
    return await wait_for_run(client, flow_run.id)


async def artifact_keys(client, flow_run_id) -> set[str]:
    artifacts = await client.read_artifacts(
        artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
    )
    return {artifact.key for artifact in artifacts}


def simulator_config() -> SimulatorConfig:
    return SimulatorConfig(
        projects=[
            SimulatedProject(name, (key,), numbers, seed, rate_per_second=50, rate_per_minute=3000)
            for name, (key, numbers, seed) in PROJECTS.items()
        ]
    )


def listed_numbers() -> dict[str, list[str]]:
    """Each project's numbers that its listing gives (the deleted ones it does not)."""
    return {
        name: sorted(n.config_id for n in Fleet(numbers, seed).numbers if n.profile != "deleted")
        for name, (_, numbers, seed) in PROJECTS.items()
    }


def projects_yaml(base_url: str) -> str:
    return "projects:\n" + "".join(
        f"  - name: {name}\n    api_key_secret: kapso-key-{name}\n    base_url: {base_url}\n"
        for name in PROJECTS
    )


def deploy(env: dict[str, str], storage: str, projects: str) -> None:
    """What a user does once: the work pool, the Variables, a Secret block per project, the
    shared rate limits, `prefect deploy --all` (no key in its output)."""
    prefect = str(BIN / "prefect")
    run([prefect, "work-pool", "create", "kapso-health", "--type", "process"], env)
    run([prefect, "variable", "set", "kapso_health_storage", storage], env)
    run([prefect, "variable", "set", "kapso_health_projects", projects], env)
    secrets = "; ".join(
        f"Secret(value={key!r}).save('kapso-key-{name}')" for name, (key, _, _) in PROJECTS.items()
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


def test_deploy_from_prefect_yaml_and_run_with_a_worker(
    prefect_server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    api_url, env = prefect_server
    storage = tmp_path / "history"
    listed = listed_numbers()
    with running_simulator(simulator_config()) as simulator:
        projects = tmp_path / "projects.yaml"
        projects.write_text(projects_yaml(simulator.base_url()))
        deploy(env, storage=str(storage), projects=str(projects))
        prefect = str(BIN / "prefect")
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
        second = await run_deployment(client, "collect-health/collect-health", SWEEP)
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


WORKERS = ("worker-a", "worker-b")
SOURCES = ("flows", "tasks", "reports", "simulator")


def worker_copy(directory: Path, projects: str) -> Path:
    """A worker's own copy of the project, on no disk it shares with the other worker or the
    repository: the sources, prefect.yaml and its projects file."""
    for folder in SOURCES:
        shutil.copytree(
            ROOT / folder, directory / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "prefect.yaml", directory)
    (directory / "projects.yaml").write_text(projects)
    return directory


def test_two_workers_in_their_own_directories_share_one_history_in_s3(
    s3_server: MotoServer, prefect_server: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    """Several workers, one history: two workers, each running the flows from its own copy of
    the project (KAPSO_HEALTH_PROJECT_DIR), the history in the S3 server; the collection (on
    both), compaction and report deployments run; the report equals a rebuild from the quiet
    history on a local disk."""
    api_url, env = prefect_server
    storage = f"{s3_server.new_bucket()}/history"
    prefect = str(BIN / "prefect")
    homes = {name: tmp_path / name for name in WORKERS}
    with running_simulator(simulator_config()) as simulator:
        # Relative: each worker reads the projects file in its own copy (the repository,
        # where `prefect deploy` runs, has none).
        deploy(env, storage=storage, projects="projects.yaml")
        workers: dict[str, subprocess.Popen] = {}
        try:
            for name, home in homes.items():
                worker_copy(home, projects_yaml(simulator.base_url()))
                worker_env = {
                    k: v for k, v in env.items() if k != "PREFECT_API_DATABASE_CONNECTION_URL"
                }
                worker_env |= s3_server.environment() | {
                    "PREFECT_HOME": str(home / ".prefect"),
                    "KAPSO_HEALTH_PROJECT_DIR": str(home),
                    "PREFECT_WORKER_QUERY_SECONDS": "1",
                }
                polls_own_queue = ["--pool", "kapso-health", "--work-queue", name, "--name", name]
                workers[name] = start(
                    [prefect, "worker", "start", *polls_own_queue],
                    worker_env,
                    tmp_path / f"{name}.log",
                    cwd=home,
                )
            with temporary_settings(updates={PREFECT_API_URL: api_url}):
                ran, files_before = asyncio.run(exercise_two_workers(simulator, storage))
        finally:
            for worker in workers.values():
                stop(worker)
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in WORKERS}
    for name, runs in ran.items():
        for flow_run in runs:
            assert flow_run.state.is_completed(), logs[name][-4000:]
            assert flow_run.work_queue_name == name
            assert str(flow_run.id) in logs[name]
            assert str(flow_run.id) not in logs[next(n for n in WORKERS if n != name)]
        assert f"kapso-health: running the flows from {homes[name]}" in logs[name]
        assert not any(key in logs[name] for key, _, _ in PROJECTS.values())

    store = ParquetStore(storage)
    (collect, _), (second, _) = ran["worker-a"], ran["worker-b"]
    polls = store.read("polls")
    assert not polls.duplicated(["run_id", "config_id"]).any()
    for name, ids in listed_numbers().items():
        mine = polls[polls["project"] == name]
        assert sorted(mine["config_id"].unique()) == ids
        assert mine.groupby("run_id").size().to_dict() == {
            f"{run.id}.{name}": len(ids) for run in (collect, second)
        }

    day = datetime.now(UTC).date()
    assert files_before[("polls", day)] > 1
    for (name, partition), count in files_before.items():  # one file per table-day
        (left,) = store.files(name, partition, partition)
        if count > 1:
            assert left.endswith(f"/{name}/date={partition}/compacted-000001.parquet")
    assert store.fs.find(f"{storage}/_compacting") == []

    quiet = tmp_path / "rebuild"
    for name in TABLES:
        store.fs.get(f"{storage}/{name}/", f"{quiet}/{name}/", recursive=True)
    _, page = write_reports(str(quiet), [day], Policy(max_gap=None))  # the flow's defaults
    rebuilt = ParquetStore(str(quiet))
    for name in REPORT_SCHEMAS:
        built, again = (s.read(f"reports/{name}", day, day) for s in (store, rebuilt))
        pd.testing.assert_frame_equal(in_order(built), in_order(again), obj=name)
    availability = store.read("reports/availability_daily", day, day)
    every = sorted(id_ for ids in listed_numbers().values() for id_ in ids)
    assert sorted(availability["config_id"]) == every
    assert (
        store.fs.cat(f"{storage}/reports/html/kapso-health-{day}.html") == Path(page).read_bytes()
    )


def in_order(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns), ignore_index=True)


async def exercise_two_workers(simulator, storage: str) -> tuple[dict, dict]:
    """Two collections, one on each worker (the simulator's clock moved between them), then
    the compaction of today (`before` tomorrow) and today's report. Returns each worker's
    flow runs and each table-day's file count before the compaction."""
    today = datetime.now(UTC).date()
    async with get_client() as client:
        collect = await run_deployment(client, "collect-health/collect-health", FAST, "worker-a")
        simulator.advance_clock(6 * 3600)
        second = await run_deployment(client, "collect-health/collect-health", SWEEP, "worker-b")
        store = ParquetStore(storage)
        files = {
            (name, day): len(store.files(name, day, day))
            for name in TABLES
            for day in store.days(name)
        }
        compact = await run_deployment(
            client,
            "compact-history/compact-history",
            {"before": (today + timedelta(days=1)).isoformat()},
            "worker-a",
        )
        report = await run_deployment(
            client, "daily-report/daily-report", {"day": today.isoformat()}, "worker-b"
        )
    return {"worker-a": [collect, compact], "worker-b": [second, report]}, files
