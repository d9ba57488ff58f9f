"""The kapso-health command as a user runs it: real processes, real simulator, real files."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import SimulatorConfig
from kapso_health.tasks.storage import ParquetStore

pytestmark = pytest.mark.integration


def listed_ids(size: int) -> list[str]:
    """What the simulator's list endpoint returns for a default fleet of `size`."""
    return sorted(n.config_id for n in Fleet(size).numbers if n.profile != "deleted")


@pytest.mark.parametrize("command", ["collect", "audit"])
def test_without_a_key_nothing_is_polled_not_even_the_simulator(
    tmp_path: Path, command: str, run_cli
) -> None:
    with running_simulator(SimulatorConfig(numbers=5)) as simulator:
        done = run_cli([command, "--base-url", simulator.base_url()], tmp_path, timeout=120)
        stats = simulator.stats()["counts"]
    assert done.returncode == 1
    assert "no Kapso API key: set KAPSO_API_KEY" in done.stderr
    assert stats.get("list_requests", 0) + stats.get("health_requests", 0) == 0
    assert not (tmp_path / "data").exists()


def test_collect_against_the_simulator_writes_where_kapso_health_storage_says(
    tmp_path: Path, run_cli
) -> None:
    with running_simulator(SimulatorConfig(numbers=25)) as simulator:
        done = run_cli(
            ["collect", "--base-url", simulator.base_url()],
            tmp_path,
            env={"KAPSO_API_KEY": "k", "KAPSO_HEALTH_STORAGE": str(tmp_path / "history")},
        )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "ERROR" not in output and "Traceback" not in output
    assert not (tmp_path / "data").exists()
    polls = ParquetStore(str(tmp_path / "history")).read("polls")
    assert sorted(polls["config_id"]) == listed_ids(25)
    assert set(polls["outcome"]) == {"ok"}
    assert f"{len(polls)} numbers in" in done.stdout


def test_demo_builds_days_of_history_and_ends_with_the_report_page(tmp_path: Path, run_cli) -> None:
    done = run_cli(
        ["demo", "--days", "2", "--every-minutes", "120", "--numbers", "6"], tmp_path, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "ERROR" not in output and "Traceback" not in output
    assert "SIMULATED" in done.stderr
    page = Path(done.stdout.strip().splitlines()[-1].split(": ", 1)[1])
    assert page.is_file() and page.parent == tmp_path / "demo-data" / "reports" / "html"
    assert not (tmp_path / "data").exists()  # never mixed into a real history
    store = ParquetStore(str(tmp_path / "demo-data"))
    polls = store.read("polls")
    days = sorted(polls["polled_at"].dt.date.unique())
    assert len(days) == 2 and (days[1] - days[0]).days == 1
    assert days[1] < date.today()
    rounds = polls.groupby("run_id")["config_id"].apply(sorted)
    assert len(rounds) == 2 * 24 // 2
    assert all(ids == listed_ids(6) for ids in rounds)
    hours = polls.groupby("run_id")["polled_at"].min().dt.floor("h").sort_values()
    assert (hours.diff().dropna() == pd.Timedelta(hours=2)).all()
    availability = store.read("reports/availability_daily", schema=None)
    assert sorted(availability["day"].unique()) == days
    assert set(availability["config_id"]) == set(listed_ids(6))
    text = page.read_text()
    assert all(day.isoformat() in text for day in days)
    title = text.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "SIMULATED" in title


def test_audit_prints_a_table_of_every_listed_number(tmp_path: Path, run_cli) -> None:
    with running_simulator(SimulatorConfig(numbers=12)) as simulator:
        done = run_cli(
            ["audit", "--base-url", simulator.base_url()],
            tmp_path,
            env={"COLUMNS": "250", "KAPSO_API_KEY": "k"},
            timeout=120,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Kapso health audit: {len(listed_ids(12))} numbers" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("│")]
    assert max(len(line) for line in rows) == 250  # the terminal's width
    numbers = [line.split("│")[1].strip() for line in rows]
    ids = [number.rsplit("(", 1)[-1].rstrip(")") for number in numbers]
    assert sorted(ids) == listed_ids(12)
    assert any(number.startswith("Acme ") for number in numbers)  # named, the id beside


def test_wrong_key_fails_fast_with_a_clear_message_and_no_key(tmp_path: Path, run_cli) -> None:
    key = "sk-wrong-key-7d1e0b"
    with running_simulator(SimulatorConfig(numbers=100, api_key="right")) as simulator:
        done = run_cli(
            ["audit", "--base-url", simulator.base_url()],
            tmp_path,
            env={"KAPSO_API_KEY": key},
            timeout=60,
        )
        stats = simulator.stats()["counts"]
    assert done.returncode == 3
    assert "Kapso refused the API key (HTTP 401" in done.stderr
    assert key not in done.stdout + done.stderr
    assert (
        stats.get("list_requests", 0) + stats.get("health_requests", 0) == 1
    )  # the first refusal ends it: no retries, no health requests


def test_malformed_ids_file_entries_are_a_clear_error(tmp_path: Path, run_cli) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("good-id\n" + "x" * 300 + "\n")
    done = run_cli(
        ["collect", "--ids-file", str(ids), "--base-url", "http://127.0.0.1:9/api/v1"],
        tmp_path,
        env={"KAPSO_API_KEY": "k"},
        timeout=120,
    )
    assert done.returncode == 1
    assert "malformed number ids" in done.stderr


def test_plan_prints_the_capacity_line_without_a_health_request(tmp_path: Path, run_cli) -> None:
    with running_simulator(SimulatorConfig(numbers=2_100)) as simulator:
        done = run_cli(
            ["plan", "--base-url", simulator.base_url(), "--window-minutes", "14.5"],
            tmp_path,
            env={"KAPSO_API_KEY": "k"},
            timeout=120,
        )
        counts = simulator.stats()["counts"]
    assert done.returncode == 0, done.stderr
    listed = len(listed_ids(2_100))
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"default: {listed:,} numbers at 60/min: each number every ~")
    assert "a 14.5-min window allows 870 polls per run" in lines[0]
    assert lines[1].startswith(f"default: WARNING: {listed:,} numbers cannot be covered every 15")
    assert counts.get("health_requests", 0) == 0 and counts["list_requests"] == -(-listed // 100)


@pytest.mark.parametrize(
    ("case", "code", "message"),
    [
        ("wrong key", 3, "Kapso refused the API key (HTTP 401"),
        ("unreachable", 1, "could not read page 1 of the number list: connection_error"),
    ],
)
def test_collect_checks_key_and_reach_before_prefect_starts(
    tmp_path: Path, run_cli, case: str, code: int, message: str
) -> None:
    with running_simulator(SimulatorConfig(numbers=50, api_key="right")) as simulator:
        url = simulator.base_url() if case == "wrong key" else "http://127.0.0.1:9/api/v1"
        done = run_cli(["collect", "--base-url", url], tmp_path, env={"KAPSO_API_KEY": "wrong"})
        counts = simulator.stats()["counts"]
    assert done.returncode == code, done.stderr
    assert message in done.stderr.strip().splitlines()[-1]
    expected = 1 if case == "wrong key" else 0  # one cheap request: the list's first item
    assert counts.get("list_requests", 0) == expected and counts.get("health_requests", 0) == 0
    home = tmp_path / ".prefect"  # Prefect's temporary server never started: no database
    assert not list(home.glob("*.db")), sorted(p.name for p in home.iterdir())


UNLIMITED = ["--rate-per-second", "0", "--rate-per-minute", "0"]
FLEET_40 = SimulatorConfig(numbers=40, rate_per_second=None, rate_per_minute=None)


def audit_json(tmp_path: Path, run_cli, simulator, *extra: str) -> tuple[int, list[dict], str]:
    done = run_cli(
        ["audit", "--base-url", simulator.base_url(), "--format", "json", *UNLIMITED, *extra],
        tmp_path,
        env={"KAPSO_API_KEY": "k"},
        timeout=120,
    )
    records = json.loads(done.stdout) if done.stdout.strip() else []
    return done.returncode, records, done.stderr


def test_audit_json_and_csv_feed_scripts_and_fail_on_gates_the_exit_code(
    tmp_path: Path, run_cli
) -> None:
    with running_simulator(FLEET_40) as simulator:
        code, records, err = audit_json(tmp_path, run_cli, simulator)
        gated, _, _ = audit_json(tmp_path, run_cli, simulator, "--fail-on", "unhealthy")
        csv_run = run_cli(
            ["audit", "--base-url", simulator.base_url(), "--format", "csv", *UNLIMITED],
            tmp_path,
            env={"KAPSO_API_KEY": "k"},
            timeout=120,
        )
    assert code == 0, err
    assert sorted(r["config_id"] for r in records) == listed_ids(40)
    from kapso_health.tasks.schemas import POLLS

    assert set(POLLS.names) <= set(records[0])  # every polls field
    unhealthy = [r for r in records if r["outcome"] == "ok" and r["status"] == "unhealthy"]
    assert unhealthy, "the seeded fleet has unhealthy numbers"
    assert gated == 4  # --fail-on unhealthy: at least one number is
    failing = [r for r in unhealthy if r["failing_checks"]]
    assert failing and all("check_name" in c for r in failing for c in r["failing_checks"])
    blocked = [r for r in records if r["can_send_message"] == "BLOCKED"]
    assert all(
        e["possible_solution"] for r in blocked for e in r["entity_errors"] if e["error_code"]
    )
    named = [r for r in records if r["verified_name"]]
    assert named and all(r["label"].startswith(r["verified_name"]) for r in named)
    assert all(r["label"].endswith(f"({r['config_id']})") for r in named)
    rows = list(csv.DictReader(io.StringIO(csv_run.stdout)))
    assert csv_run.returncode == 0 and sorted(r["config_id"] for r in rows) == listed_ids(40)


def test_audit_fail_on_degraded_and_never(tmp_path: Path, run_cli) -> None:
    with running_simulator(FLEET_40) as simulator:
        code, records, _ = audit_json(tmp_path, run_cli, simulator, "--fail-on", "degraded")
        never, _, _ = audit_json(tmp_path, run_cli, simulator, "--fail-on", "never")
    statuses = {r["status"] for r in records if r["outcome"] == "ok"}
    assert code == (4 if statuses & {"degraded", "unhealthy"} else 0)
    assert never == 0
