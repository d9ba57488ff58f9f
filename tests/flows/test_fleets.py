"""Fleets beyond one window and several projects: the collect-health flow against the simulator."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

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


async def test_rolling_runs_stay_in_their_budget_and_reach_everyone_before_anyone_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAPSO_API_KEY", "k")
    config = SimulatorConfig(numbers=60, rate_per_second=None, rate_per_minute=600)
    window = 0.05  # minutes: at 600/min, a budget of 30 polls for a fleet of ~60
    with running_simulator(config) as simulator:
        runs = [
            await collect_health(
                base_url=simulator.base_url(),
                storage=str(tmp_path),
                rate_per_second=0,
                rate_per_minute=600,
                window_minutes=window,
                interval_minutes=window,
                run_id=run_id,
            )
            for run_id in ("first", "second")
        ]
        health_requests = simulator.stats()["counts"]["health_requests"]
    polls = ParquetStore(str(tmp_path)).read("polls")
    per_run = polls.groupby("run_id")["config_id"].apply(list)
    assert [run["capacity"] for run in runs] == [
        [runs[0]["projects"]["default"]["capacity"]["line"]]
    ] * 2
    allowed = runs[0]["projects"]["default"]["capacity"]["allowed"]
    assert allowed == 30 and len(listed(60)) > allowed  # the window cannot cover the fleet
    assert [len(per_run[run]) for run in ("first", "second")] == [
        allowed,
        len(listed(60)) - allowed,
    ]
    assert Counter([*per_run["first"], *per_run["second"]]) == Counter(listed(60))  # once each
    assert health_requests == len(polls)  # nothing past the window's budget
    assert all(run["not_reached"] == 0 for run in runs)


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
