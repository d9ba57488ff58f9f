"""The API key never appears in a log line, Parquet file, artifact, page or exception."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client

from kapso_health.flows.collect import collect_health
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import Faults, SimulatorConfig
from kapso_health.tasks.client import KapsoAuthError

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
KEY = "sk-LEAKCHECK-3f9a77c1e0"


async def server_texts() -> list[str]:
    """Every artifact and every log line the Prefect server holds."""
    texts = []
    async with get_client() as client:
        offset = 0
        while batch := await client.read_artifacts(limit=200, offset=offset):
            texts += [f"{a.data} {a.description} {a.key}" for a in batch]
            offset += len(batch)
        offset = 0
        while batch := await client.read_logs(limit=200, offset=offset):
            texts += [log.message for log in batch]
            offset += len(batch)
        offset = 0
        while batch := await client.read_flow_runs(limit=200, offset=offset):
            texts += [f"{run.parameters} {run.state.message if run.state else ''}" for run in batch]
            offset += len(batch)
    return texts


def test_the_key_leaks_nowhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures, run_cli
) -> None:
    def cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
        env = {"KAPSO_API_KEY": KEY, "PREFECT_LOGGING_LEVEL": "DEBUG"}
        return run_cli(args, cwd, env, timeout=180)

    storage = tmp_path / "data"
    faults = Faults(server_error=0.1, malformed=0.05, timeout=0.02, hang_seconds=2.0)
    config = SimulatorConfig(
        numbers=40, seed=6, api_key=KEY, faults=faults, rate_per_second=None, rate_per_minute=None
    )
    outputs = []
    with running_simulator(config) as simulator:
        base = ["--base-url", simulator.base_url()]
        collect = cli(
            [
                "collect",
                *base,
                "--storage",
                str(storage),
                "--rate-per-second",
                "0",
                "--timeout",
                "1",
            ],
            tmp_path,
        )
        audit = cli(["audit", *base, "--rate-per-second", "0", "--timeout", "1"], tmp_path)
        report = cli(
            ["report", "--day", datetime.now(UTC).date().isoformat(), "--storage", str(storage)],
            tmp_path,
        )
        outputs += [collect, audit, report]
        assert [p.returncode for p in outputs] == [0, 0, 0], [p.stderr[-2000:] for p in outputs]
    with running_simulator(SimulatorConfig(numbers=10, api_key="someone-else")) as other:
        refused = cli(
            ["collect", "--base-url", other.base_url(), "--storage", str(tmp_path / "x")], tmp_path
        )
        assert refused.returncode == 3
        outputs.append(refused)
        monkeypatch.setenv("KAPSO_API_KEY", KEY)
        with pytest.raises(KapsoAuthError) as raised:
            asyncio.run(collect_health(base_url=other.base_url(), storage=str(tmp_path / "y")))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    texts = [p.stdout + p.stderr for p in outputs] + [str(raised.value), repr(raised.value)]
    texts += asyncio.run(server_texts())
    assert any(p.suffix == ".parquet" for p in files) and any(p.suffix == ".html" for p in files)
    assert all(KEY.encode() not in p.read_bytes() for p in files)
    assert all(KEY not in text for text in texts)
    figures(
        "Secrets: the API key appears in no log, Parquet file, artifact, page or exception",
        commands_run="collect (with faults), audit, report, collect with a refused key, "
        "the flow raising on a refused key",
        files_scanned=len(files),
        log_lines_artifacts_and_messages_scanned=len(texts),
        occurrences_of_the_key=0,
    )
