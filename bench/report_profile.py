"""Where a report's time goes: `write_reports` once, with the wall time of each engine piece
and each pandas edge, slowest first (the pieces' own times; the report's two connections run at
once, so the times sum to more than the whole, and a piece's time includes its waits for the
cores the other one holds).

    .venv/bin/python bench/report_profile.py ROOT FIRST_DAY [LAST_DAY]

ROOT is a history (`bench/run.py --only report` builds two into bench/.cache). Run it on a
quiet machine: the figures are one run's, to compare pieces with each other, not a benchmark.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import date
from functools import wraps

from kapso_health.flows import report
from kapso_health.reports import build, engine
from kapso_health.reports.policy import Policy
from kapso_health.tasks.storage import ParquetStore

SPENT: dict[str, float] = defaultdict(float)


def _timed(module: object, name: str, piece: Callable[..., str] | None = None) -> None:
    """Add each call's wall time of `module.name` to SPENT (per piece, when `piece` names it)."""
    original = getattr(module, name)

    @wraps(original)
    def timed(*args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            label = f"{name} {piece(*args, **kwargs)}" if piece else name
            SPENT[label] += time.perf_counter() - started

    setattr(module, name, timed)


def _piece(con: object, piece: str, *args: object, **kwargs: object) -> str:
    return piece


def _table(con: object, history: object, table: str, *args: object, **kwargs: object) -> str:
    return table


def main() -> int:
    root, first, *last = sys.argv[1:]
    days = report.report_days(date.fromisoformat(first), date.fromisoformat((last or [first])[0]))
    _timed(engine, "connect")
    _timed(engine, "read_history", _table)
    _timed(engine, "materialize", _piece)
    _timed(engine, "fetch", _piece)
    for edge in ("fleet_tables", "attention_details", "number_names", "changes_since"):
        _timed(build, edge)
    for edge in ("_write_page", "to_arrow"):
        _timed(report, edge)
    _timed(ParquetStore, "replace_day")
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        report.write_reports(root, days, Policy(), out)
        total = time.perf_counter() - started
    for label, seconds in sorted(SPENT.items(), key=lambda item: -item[1]):
        print(f"{seconds:7.3f} s  {label}")
    print(f"{total:7.3f} s  write_reports, in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
