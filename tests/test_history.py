"""The public reader: `from kapso_health import History`."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from kapso_health import History
from kapso_health.flows.report import write_reports
from kapso_health.reports.timeline import Policy
from kapso_health.simulator.history import write_day

DAYS = [date(2026, 2, 1), date(2026, 2, 2)]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = str(tmp_path_factory.mktemp("history"))
    for day in DAYS:
        write_day(root, 6, day, seed=5)
    write_reports(root, DAYS, Policy())
    return root


def test_reads_only_the_days_asked_for_and_every_table(root: str) -> None:
    history = History(root)
    assert history.days("polls") == DAYS
    one_day = history.read("polls", DAYS[0], DAYS[0])
    both = history.read("polls", "2026-02-01", "2026-02-02")
    assert set(one_day["polled_at"].dt.date) == {DAYS[0]}
    assert len(both) == len(one_day) + len(history.read("polls", DAYS[1], DAYS[1]))
    assert len(both) == history.read_arrow("polls").num_rows
    assert all(history.read(name, DAYS[0], DAYS[0]) is not None for name in History.TABLES)


def test_report_tables_and_live_files(root: str) -> None:
    history = History(root)
    availability = history.report("availability_daily", DAYS[0], DAYS[1])
    assert sorted(availability["day"].unique()) == DAYS
    files = history.files("polls", DAYS[0], DAYS[1])
    assert len(files) == 2 and all(Path(f).name.startswith("compacted-") for f in files)


def test_unknown_tables_are_named_in_the_error(root: str) -> None:
    with pytest.raises(ValueError, match="unknown table 'pols'"):
        History(root).read("pols")
    with pytest.raises(ValueError, match="unknown report table"):
        History(root).report("polls")


def test_root_defaults_to_kapso_health_storage(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAPSO_HEALTH_STORAGE", root)
    assert History().root == root
    assert not History().simulated
