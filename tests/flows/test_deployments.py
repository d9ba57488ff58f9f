"""prefect.yaml names real flows and parameters, and restates none of their defaults."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"
DEPLOYMENTS = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_parameters_exist_and_differ_from_the_flows_defaults(deployment: dict) -> None:
    path, name = deployment["entrypoint"].split(":")
    module = importlib.import_module("kapso_health." + path.removesuffix(".py").replace("/", "."))
    signature = inspect.signature(getattr(module, name).fn)
    for parameter, value in (deployment.get("parameters") or {}).items():
        assert parameter in signature.parameters, f"{parameter} is not a parameter of {name}"
        assert value != signature.parameters[parameter].default, f"{parameter} restates a default"


def test_the_collection_window_fits_its_schedule_as_settings_state() -> None:
    from kapso_health.tasks.settings import SCHEDULE_MINUTES, WINDOW_MINUTES

    (collect,) = [d for d in DEPLOYMENTS if d["name"] == "collect-health"]
    (schedule,) = collect["schedules"]
    assert schedule["cron"] == f"*/{SCHEDULE_MINUTES:g} * * * *"
    assert collect["parameters"]["interval_minutes"] == SCHEDULE_MINUTES
    assert collect["parameters"]["window_minutes"] == WINDOW_MINUTES < SCHEDULE_MINUTES
    assert collect["concurrency_limit"]["collision_strategy"] == "CANCEL_NEW"
