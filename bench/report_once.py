"""One report measurement in a fresh process, so peak memory is this measurement's alone.

    .venv/bin/python bench/report_once.py ours|baseline ROOT FIRST_DAY LAST_DAY OUT

Prints one JSON line: seconds (imports excluded), peak_mb (whole process), rows (of the
availability result).
`ours` is `write_reports` (read the partitions needed, build every report table, write them
and the HTML page). `baseline` is what one writes without the project: read the whole `polls`
dataset into pandas and group it into per-number, per-day sample availability.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import date
from pathlib import Path

import pandas as pd

from kapso_health.flows.report import report_days, write_reports
from kapso_health.reports.timeline import Policy


def ours(root: str, first: date, last: date, out: str) -> int:
    tables, _ = write_reports(root, report_days(first, last), Policy(), out)
    return len(tables["availability_daily"])


def baseline(root: str, first: date, last: date, out: str) -> int:
    polls = pd.read_parquet(f"{root}/polls")
    ok = polls[polls["outcome"] == "ok"].drop_duplicates(["config_id", "checked_at"])
    ok = ok.assign(day=ok["checked_at"].dt.floor("D"))
    in_range = ok["day"].between(pd.Timestamp(first, tz="UTC"), pd.Timestamp(last, tz="UTC"))
    counts = (
        ok[in_range].groupby(["config_id", "day", "status"]).size().unstack("status", fill_value=0)
    )
    up = counts.get("healthy", 0) + counts.get("degraded", 0)
    availability = up / (up + counts.get("unhealthy", 0))
    return len(availability)


def _peak_mb() -> float:
    """This process's peak resident memory. Not `ru_maxrss`: Linux carries that over from the
    parent across exec, so a child of a big process would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    mode, root, first, last, out = sys.argv[1:6]
    started = time.perf_counter()
    rows = {"ours": ours, "baseline": baseline}[mode](
        root, date.fromisoformat(first), date.fromisoformat(last), out
    )
    seconds = time.perf_counter() - started
    peak_mb = _peak_mb()
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
