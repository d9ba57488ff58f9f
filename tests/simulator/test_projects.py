"""The simulator serving several Kapso projects: keys pick the project, budgets and ids apart."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

import httpx
import pytest

from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.main import add_arguments, config_from_args
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import Project, SimulatorConfig

A = Project("acme", ("a-1", "a-2"), numbers=4, seed=1, rate_per_second=3, rate_per_minute=60)
B = Project("bravo", ("b-1",), numbers=6, seed=2, rate_per_second=3, rate_per_minute=60)
CONFIG = SimulatorConfig(latency_ms=(0, 0), projects=[A, B])


def _parse(argv: list[str]) -> SimulatorConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(argv))


def test_each_project_has_its_own_health_budget_shared_by_its_keys() -> None:
    with running_simulator(CONFIG) as sim, httpx.Client() as client:

        def health(key: str, number: str) -> int:
            url = f"{sim.base_url()}/whatsapp_configs/{number}/health"
            return client.get(url, headers={"X-API-Key": key}).status_code

        a_id, b_id = Fleet(4, 1).numbers[0].config_id, Fleet(6, 2).numbers[0].config_id
        a_codes = [health(key, a_id) for key in ("a-1", "a-2") * 3]  # both keys, one budget
        b_codes = [health("b-1", b_id) for _ in range(3)]
        stats = sim.stats()
    assert a_codes[:3] == [200, 200, 200] and 429 in a_codes[3:]
    assert b_codes == [200, 200, 200]
    acme, bravo = stats["projects"]["acme"], stats["projects"]["bravo"]
    assert acme["health_requests"] == 6 and acme["status_429"] == a_codes.count(429)
    assert bravo["health_requests"] == 3 and "status_429" not in bravo
    assert stats["counts"]["health_requests"] == 9  # the totals stay as they were
    assert stats["counts"]["status_429"] == a_codes.count(429)
    assert "keys" not in stats["config"]["projects"][0]


def test_key_picks_the_project_unknown_key_is_401_other_projects_id_is_404() -> None:
    with running_simulator(CONFIG) as sim, httpx.Client() as client:

        def get(path: str, key: str, flavour: str = "legacy") -> httpx.Response:
            return client.get(sim.base_url(flavour) + path, headers={"X-API-Key": key})

        listed = {
            key: [n["id"] for n in get("/whatsapp_configs?per_page=100", key).json()["data"]]
            for key in ("a-1", "a-2", "b-1")
        }
        platform = get("/whatsapp/phone_numbers?per_page=100", "b-1", "platform").json()["data"]
        unknown = get("/whatsapp_configs", "nobody")
        unknown_health = get(f"/whatsapp_configs/{listed['a-1'][0]}/health", "nobody")
        crossed = get(f"/whatsapp_configs/{listed['a-1'][0]}/health", "b-1")
        crossed_platform = get(
            f"/whatsapp/phone_numbers/{platform[0]['id']}/health", "a-1", "platform"
        )
        stats = sim.stats()
    for key, project in (("a-1", A), ("a-2", A), ("b-1", B)):
        fleet = Fleet(project.numbers, project.seed).numbers
        assert listed[key] == [n.config_id for n in fleet if n.profile != "deleted"]
    assert not set(listed["a-1"]) & set(listed["b-1"])
    assert unknown.status_code == unknown_health.status_code == 401
    assert unknown.json() == {"error": "Invalid or missing API key"}
    assert crossed.status_code == crossed_platform.status_code == 404
    assert stats["projects"]["acme"]["list_requests"] == 2
    assert stats["projects"]["bravo"]["status_404"] == 1  # 401s belong to no project
    assert stats["counts"]["status_401"] == 2


def test_projects_round_trip_through_the_command_line_json() -> None:
    assert _parse(["--config-json", json.dumps(asdict(CONFIG))]) == CONFIG
    assert _parse(["--config-json", json.dumps(asdict(SimulatorConfig()))]) == SimulatorConfig()


def test_project_flag_declares_projects_with_distinct_seeds() -> None:
    config = _parse(
        [
            "--seed",
            "7",
            "--rate-per-second",
            "0",
            "--project",
            "acme:a-1,a-2:40",
            "--project",
            "bravo:b:0",
        ]
    )
    assert config.projects == [
        Project("acme", ("a-1", "a-2"), 40, 7, None, 60.0),
        Project("bravo", ("b",), 0, 8, None, 60.0),
    ]
    with pytest.raises(SystemExit):
        _parse(["--project", "acme:40"])


@pytest.mark.parametrize(
    "projects",
    [
        [A, Project("again", ("a-1",), seed=3)],  # a key in two projects
        [A, Project("twin", ("t",), seed=1)],  # same seed: same ids
        [A, Project("acme", ("x",), seed=3)],
        [Project("keyless", ())],
    ],
)
def test_ambiguous_projects_are_refused(projects: list[Project]) -> None:
    with pytest.raises(ValueError):
        SimulatorConfig(projects=projects).all_projects()
