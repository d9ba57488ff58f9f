"""The report's two connections to one database: what each has of its own, what they share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date

import fsspec

from kapso_health.reports import engine
from kapso_health.reports.policy import Policy

SECOND = """
import json
from datetime import date
from kapso_health.reports import engine
from kapso_health.reports.policy import Policy
con = engine.connect()
engine.set_parameters(con, Policy(), [date(2026, 3, 1)])
other = engine.second_connection(con, Policy(), [date(2026, 3, 1)])
zone = "SELECT current_setting('TimeZone')"
late = "SELECT TIMESTAMPTZ '2026-03-02 02:30:00+00'::DATE::VARCHAR"
print(json.dumps({
    "zones": [con.execute(zone).fetchone()[0], other.execute(zone).fetchone()[0]],
    "days": [c.execute("SELECT day_us FROM report_days").fetchall() for c in (con, other)],
    "day": other.execute(late).fetchone()[0],
}))
"""


def test_the_second_connection_works_in_utc_with_the_first_ones_parameters() -> None:
    """On a machine whose local time is not UTC (the time zone is each connection's own)."""
    environment = os.environ | {"TZ": "America/New_York"}
    done = subprocess.run(
        [sys.executable, "-c", SECOND], env=environment, capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout)
    assert found["zones"] == ["UTC", "UTC"]
    assert found["days"][0] == found["days"][1] != []
    assert found["day"] == "2026-03-02"  # in New York it is still 1 March


def test_a_filesystem_is_registered_once_for_both_connections() -> None:
    """DuckDB's filesystems are the database's: the second connection's read must not register
    the one the first registered (that raises)."""
    con = engine.connect()
    try:
        engine.set_parameters(con, Policy(), [date(2026, 3, 1)])
        other = engine.second_connection(con, Policy(), [date(2026, 3, 1)])
        memory = fsspec.filesystem("memory")
        engine._register(con, memory)
        engine._register(other, memory)
        assert other.list_filesystems().count("memory") == 1
    finally:
        con.close()
