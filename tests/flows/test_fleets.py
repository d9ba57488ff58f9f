"""Fleets beyond one window and several projects: the collect-health flow against the simulator."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from kapso_health.flows.collect import collect_health
from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import Project as SimulatedProject
from kapso_health.simulator.server import SimulatorConfig
from kapso_health.tasks.projects import ProjectsFailedError
from kapso_health.tasks.storage import ParquetStore

pytestmark = [pytest.mark.anyio, pytest.mark.integration, pytest.mark.usefixtures("prefect_server")]


def listed(size: int, seed: int = 7) -> set[str]:
    return {n.config_id for n in Fleet(size, seed).numbers if n.profile != "deleted"}


async def test_rolling_runs_end_in_their_window_and_reach_everyone_before_anyone_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAPSO_API_KEY", "k")
    config = SimulatorConfig(numbers=60, rate_per_second=None, rate_per_minute=300)
    window = 0.1  # minutes: at 300/min a budget of 30 polls for a fleet of ~60
    fleet = listed(60)
    runs, seen = [], Counter()
    with running_simulator(config) as simulator:
        while len(seen) < len(fleet) and len(runs) < 5:
            run_id = f"run{len(runs)}"
            runs.append(
                await collect_health(
                    base_url=simulator.base_url(),
                    storage=str(tmp_path),
                    rate_per_second=0,
                    rate_per_minute=300,
                    timeout_seconds=1.0,
                    window_minutes=window,
                    interval_minutes=window,
                    run_id=run_id,
                )
            )
            polls = ParquetStore(str(tmp_path)).read("polls")
            mine = polls[polls["run_id"] == run_id]
            seen.update(mine["config_id"])
            part = runs[-1]["projects"]["default"]
            assert 0 < len(mine) <= part["capacity"]["allowed"] < len(fleet)
            assert len(mine) + part["not_reached"] == part["planned"]
            # no request started after the window's last start (its end less a timeout)
            assert mine["polled_at"].max() < pd.Timestamp(part["stop_at"])
        health_requests = simulator.stats()["counts"]["health_requests"]
    assert len(runs) >= 2  # one window could not cover the fleet
    assert seen == Counter(fleet)  # every number once before any number twice
    assert health_requests == seen.total()  # nothing sent that has no row


async def test_projects_file_polls_each_project_on_its_own_budget_and_names_a_refused_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAPSO_API_KEY", raising=False)
    monkeypatch.setenv("KEY_ACME", "acme-key")
    monkeypatch.setenv("KEY_BETA", "beta-key")
    monkeypatch.setenv("KEY_GAMMA", "wrong-key")
    served = [
        SimulatedProject("acme", ("acme-key",), numbers=12, seed=1),
        SimulatedProject("beta", ("beta-key",), numbers=9, seed=2),
        SimulatedProject("gamma", ("gamma-key",), numbers=4, seed=3),
    ]
    with running_simulator(SimulatorConfig(projects=served)) as simulator:
        projects = tmp_path / "projects.toml"
        projects.write_text(
            "".join(
                f'[[project]]\nname = "{name}"\napi_key_env = "KEY_{name.upper()}"\n'
                f'base_url = "{simulator.base_url()}"\n\n'
                for name in ("acme", "beta", "gamma")
            )
        )
        with pytest.raises(ProjectsFailedError, match="gamma: Kapso refused the API key"):
            await collect_health(projects=str(projects), storage=str(tmp_path / "data"))
        stats = simulator.stats()["projects"]
    polls = ParquetStore(str(tmp_path / "data")).read("polls")
    by_project = polls.groupby("project")["config_id"].apply(set).to_dict()
    assert by_project == {"acme": listed(12, 1), "beta": listed(9, 2)}
    assert set(polls["run_id"].str.rsplit(".", n=1).str[1]) == {"acme", "beta"}
    numbers = ParquetStore(str(tmp_path / "data")).read("numbers")
    assert set(numbers["project"]) == {"acme", "beta"}
    # Each project at its own 5/s and 60/min at once, and none answered 429.
    assert stats["acme"]["health_requests"] == len(listed(12, 1))
    assert stats["beta"]["health_requests"] == len(listed(9, 2))
    assert not any(counts.get("status_429") for counts in stats.values())
