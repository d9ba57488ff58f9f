"""prefect.yaml's pull step: each worker runs the flows from its own copy of the project."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kapso_health.flows.pull import project_directory

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"


def test_the_workers_own_directory_comes_before_the_deploy_time_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deployed, own = tmp_path / "deployed", tmp_path / "own"
    deployed.mkdir()
    own.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAPSO_HEALTH_PROJECT_DIR", raising=False)
    assert project_directory(str(deployed)) == {"directory": str(deployed)}
    assert Path.cwd() == deployed
    monkeypatch.setenv("KAPSO_HEALTH_PROJECT_DIR", str(own))
    assert project_directory(str(deployed)) == {"directory": str(own)}
    assert Path.cwd() == own


def test_prefect_yaml_pulls_with_this_step() -> None:
    (step,) = yaml.safe_load(PREFECT_YAML.read_text())["pull"]
    assert step == {"kapso_health.flows.pull.project_directory": {"directory": "{{ $PWD }}"}}
