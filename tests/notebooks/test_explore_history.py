"""The analyst notebook runs top to bottom on a generated history, so it cannot rot."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from kapso_health import History
from kapso_health.flows.report import write_reports
from kapso_health.reports.timeline import Policy
from kapso_health.simulator.history import write_day

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore_history.ipynb"
FIRST = date(2026, 2, 1)


def outputs_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_notebook_loads_history_and_reports_and_plots_one_number(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, any_root: str
) -> None:
    """On a local disk and in an S3 bucket (DuckDB through the registered filesystem)."""
    root = any_root
    days = [FIRST, FIRST + timedelta(days=1)]
    for day in days:
        write_day(root, 12, day, seed=3)
    write_reports(root, days, Policy())
    polls = History(root).read("polls")
    monkeypatch.setenv("KAPSO_HEALTH_STORAGE", root)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert f"polls from {days[0]} to {days[-1]}" in outputs_text(code[0])
    assert f"{len(polls)} polls rows, {polls['config_id'].nunique()} numbers" in outputs_text(
        code[1]
    )
    duckdb_days = outputs_text(code[3])
    assert all(day.isoformat() in duckdb_days for day in days)
    images = [o for o in code[-1].outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1
