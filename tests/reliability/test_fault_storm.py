"""A fault storm: every number still gets exactly one row, and the figures add up."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from kapso_health.flows.collect import collect_health
from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import Faults, SimulatorConfig
from kapso_health.tasks.storage import ParquetStore

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]
NUMBERS = 1000
STORM = Faults(
    server_error=0.20,
    timeout=0.10,
    malformed=0.03,
    truncated=0.02,
    reset=0.03,
    burst_429=0.002,
    burst_seconds=1.0,
    hang_seconds=3.0,
)


async def test_a_thousand_numbers_through_a_fault_storm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, figures
) -> None:
    monkeypatch.setenv("KAPSO_API_KEY", "sk-storm-test")
    config = SimulatorConfig(
        numbers=NUMBERS,
        seed=21,
        rate_per_second=400,
        rate_per_minute=24_000,
        latency_ms=(2, 20),
        faults=STORM,
    )
    with running_simulator(config) as simulator:
        state = await collect_health(
            base_url=simulator.base_url(),
            storage=str(tmp_path),
            rate_per_second=400,
            rate_per_minute=24_000,
            max_in_flight=64,
            chunk_size=100,
            timeout_seconds=1.0,
            max_attempts=4,
            return_state=True,
        )
        served = simulator.stats()["counts"]
    summary = await state.result()
    store = ParquetStore(str(tmp_path))
    polls = store.read("polls")
    listed = sorted(n.config_id for n in Fleet(NUMBERS, 21).numbers if n.profile != "deleted")

    assert sorted(polls["config_id"]) == listed  # every number once: nothing lost or doubled
    assert not polls.duplicated(["run_id", "config_id"]).any()
    outcomes = Counter(polls["outcome"])
    assert summary["outcomes"] == dict(sorted(outcomes.items()))
    # every request the simulator answered is one attempt, classified as what was injected
    attempts = summary["attempts_by_outcome"]
    fives = sum(v for k, v in served.items() if k.startswith("status_5"))
    assert sum(attempts.values()) == int(polls["attempts"].sum()) == served["health_requests"]
    assert attempts.get("server_error", 0) == fives == served["fault_server_error"]
    assert attempts.get("timeout", 0) == served["fault_timeout"]
    assert attempts.get("connection_error", 0) == served["fault_reset"]
    assert attempts.get("invalid_body", 0) == served["fault_malformed"] + served["fault_truncated"]
    assert attempts.get("rate_limited", 0) == served.get("status_429", 0)
    assert attempts["ok"] == outcomes["ok"]
    assert (
        attempts.get("not_found", 0) == outcomes.get("not_found", 0) == served.get("status_404", 0)
    )
    failed = polls[~polls["outcome"].isin(["ok", "not_found"])]
    assert (failed["attempts"] == 4).all()  # given up only after every retry
    assert sorted(store.read("numbers")["config_id"]) == listed
    assert len(store.read("raw")) == len(polls)
    checks = store.read("checks")
    ok = polls[polls["outcome"] == "ok"].set_index("config_id")
    per_number = checks.groupby("config_id").size().reindex(ok.index, fill_value=0)
    assert (per_number == ok["checks_total"]).all() and set(checks["config_id"]) <= set(ok.index)
    async with get_client() as client:
        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    by_key = {a.key: a for a in artifacts}
    assert by_key["collect-health-progress"].data == 100.0
    assert f'"numbers": {outcomes["ok"]}' in by_key["collect-health-summary"].data

    figures(
        "Fault storm: 1,000 numbers, every one gets exactly one row",
        fleet=f"{NUMBERS:,} numbers, {len(listed):,} listed (the rest deleted)",
        fault_probabilities_per_request="5xx 20%, timeout 10%, malformed 3%, truncated 2%, "
        "connection reset 3%, 429 burst with Retry-After 0.2%",
        requests_answered=served["health_requests"],
        faults_injected={
            kind: served.get(f"fault_{kind}", 0)
            for kind in ("server_error", "timeout", "malformed", "truncated", "reset", "burst_429")
        },
        answered_429=served.get("status_429", 0),
        attempts_by_outcome=attempts,
        final_outcomes=dict(sorted(outcomes.items())),
        rows_lost=len(set(listed) - set(polls["config_id"])),
        rows_doubled=int(polls.duplicated(["run_id", "config_id"]).sum()),
        seconds=summary["seconds"],
    )
