"""The report page in a real headless Chromium: it renders, the charts drew, no console errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from kapso_health.reports.html import render_report

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


@pytest.fixture
def chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: bin/setup installs Debian's chromium")
        pytest.skip("chromium is not installed (bin/setup installs it when run as root)")
    return found


def test_page_renders_with_every_chart_and_no_console_error(
    chromium: str, tmp_path: Path, tables: dict[str, pd.DataFrame]
) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_report("Report", tables))
    done = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert len(re.findall(r"<svg class=\"chart\"", dom)) == 3  # trend and two heatmaps
    assert len(re.findall(r"<rect class=\"cell\"", dom)) == 8
    assert len(re.findall(r"<circle ", dom)) == 2
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert console == []
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            chromium,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile2'}",
            "--window-size=1200,1600",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
