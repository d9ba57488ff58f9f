"""One report measurement in a fresh process, so peak memory is this measurement's alone.

    .venv/bin/python bench/report_once.py ours|table|reference ROOT FIRST_DAY LAST_DAY OUT

Prints one JSON line: seconds (imports excluded), peak_mb (whole process), rows (of the
availability result). `ours` is `write_reports` (read the live files needed, build every report
table, write them under ROOT/reports and the HTML page under OUT). `reference` is the DuckDB
query an analyst would write for `availability_daily` alone (`bench/availability_reference.sql`)
over the same live files; its rows are written to OUT/reference.parquet for the comparison.
`table` is the report's engine computing `availability_daily` alone (its pieces only, in the
report's batches, the sorted pass computed once per batch), rows to OUT/table.parquet: one
table against one table.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from kapso_health.flows.report import report_days, write_reports
from kapso_health.reports import build, engine
from kapso_health.reports.policy import Policy
from kapso_health.tasks.storage import ParquetStore

REFERENCE = Path(__file__).with_name("availability_reference.sql")


def ours(root: str, first: date, last: date, out: str) -> int:
    tables, _ = write_reports(root, report_days(first, last), Policy(), out)
    return len(tables["availability_daily"])


def table(root: str, first: date, last: date, out: str) -> int:
    margin = timedelta(days=1)  # as the report reads, in the report's batches
    con = engine.connect()
    engine.set_parameters(con, Policy(), report_days(first, last))
    store = ParquetStore(root)
    polls = engine.POLL_COLUMNS
    engine.read_history(con, store, "polls", first - margin, last + margin, polls, "all_polls")
    build.enumerate_values(con)
    parts = []
    for batch in range(batches := build.batch_count(con)):
        build.use_batch(con, batch, batches)
        engine.materialize(con, "ordered")
        parts.append(engine.fetch(con, "availability_daily", "config_id, day_us"))
        engine.drop(con, "ordered")
    con.close()
    rows = pa.concat_tables(pa.Table.from_pandas(part, preserve_index=False) for part in parts)
    pq.write_table(rows, f"{out}/table.parquet")
    return rows.num_rows


def reference(root: str, first: date, last: date, out: str) -> int:
    margin = timedelta(days=1)
    files = ParquetStore(root).files("polls", first - margin, last + margin)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    params = {"files": files, "first": first, "last": last}
    table = con.sql(REFERENCE.read_text(), params=params).to_arrow_table()
    pq.write_table(table, f"{out}/reference.parquet")
    return table.num_rows


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
    rows = {"ours": ours, "table": table, "reference": reference}[mode](
        root, date.fromisoformat(first), date.fromisoformat(last), out
    )
    seconds = time.perf_counter() - started
    peak_mb = _peak_mb()
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
