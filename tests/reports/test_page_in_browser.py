"""The report page in a real headless Chromium: it renders, the charts drew, no console errors;
what needs attention reads right and the filter box works with scripts on (the page is whole
with them off)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from kapso_health.reports.html import render_report
from kapso_health.reports.html_table import SCREEN_ROWS
from tests.reports.conftest import (
    PAYMENT,
    TROUBLE_DAY,
    observation,
    report_tables,
    trouble_history,
)

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


def dump(chromium: str, tmp_path: Path, url: str, *flags: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    done = subprocess.run(
        [chromium, *FLAGS, *flags, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert [line for line in done.stderr.splitlines() if "CONSOLE" in line] == []
    return done.stdout


def attention_rows(dom: str) -> list[str]:
    table = dom.split('<table id="attention">', 1)[1].split("</table>", 1)[0]
    return table.split("<tbody>", 1)[1].split("<tr")[1:]


def test_needs_attention_reads_in_chromium_and_its_filter_works(
    chromium: str, tmp_path: Path
) -> None:
    history = trouble_history()
    extra = [  # enough numbers in trouble for the table to get its filter box
        observation(f"n{i:02d}", "2026-03-02 11:00", "unhealthy") for i in range(SCREEN_ROWS)
    ]
    history["polls"] = history["polls"] + extra
    page = tmp_path / "report.html"
    page.write_text(render_report("Report", report_tables(days=TROUBLE_DAY, **history)))

    dom = dump(chromium, tmp_path, page.as_uri())
    section = dom.split('id="needs-attention"', 1)[1].split('id="changes"', 1)[0]
    assert "Acme Corp · +1 555-123-4567 · customer cus-42 (acme)" in section
    assert "Invalid OAuth access token" in section and PAYMENT in section
    rows = attention_rows(dom)
    assert len(rows) == SCREEN_ROWS + 3 and not any("hidden" in row.split(">")[0] for row in rows)

    filtered = attention_rows(dump(chromium, tmp_path, page.as_uri() + "#q=acme%20corp"))
    shown = [row for row in filtered if "hidden" not in row.split(">", 1)[0]]
    assert len(shown) == 1 and "(acme)" in shown[0]  # the script filtered the other rows

    # Without scripts (--dump-dom itself needs them) the page is its HTML: every row shown,
    # the box hidden.
    static = page.read_text()
    assert len(attention_rows(static)) == SCREEN_ROWS + 3
    assert not [row for row in attention_rows(static) if "hidden" in row.split(">", 1)[0]]
    assert re.search(r"<input[^>]*class=filter[^>]*hidden", static)
