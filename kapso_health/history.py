"""`History`: the Parquet history as analysts read it (the public reader of kapso-health)."""

from __future__ import annotations

import os
from datetime import date

import fsspec
import pandas as pd
import pyarrow as pa

from kapso_health.reports.schemas import REPORT_SCHEMAS
from kapso_health.tasks.schemas import TABLES
from kapso_health.tasks.settings import DEFAULT_STORAGE
from kapso_health.tasks.storage import ParquetStore, as_day, to_pandas


class History:
    """The history under `root` (a folder or an fsspec URL such as `s3://bucket/kapso`;
    default `$KAPSO_HEALTH_STORAGE`, else `./data`).

    Rows are read only for the UTC days asked for, each exactly once even while a collection
    or a compaction writes beside the reader. `TABLES` are the collected tables,
    `REPORTS` the report tables the daily report writes.
    """

    TABLES = tuple(TABLES)
    REPORTS = tuple(REPORT_SCHEMAS)

    def __init__(self, root: str | None = None) -> None:
        self._store = ParquetStore(
            root or os.environ.get("KAPSO_HEALTH_STORAGE") or DEFAULT_STORAGE
        )

    @property
    def root(self) -> str:
        return self._store.url

    @property
    def filesystem(self) -> fsspec.AbstractFileSystem:
        """The fsspec filesystem of the files (DuckDB: `con.register_filesystem(...)`)."""
        return self._store.fs

    @property
    def simulated(self) -> bool:
        """True for the demo's history: every number in it is made up."""
        return self._store.simulated

    def days(self, table: str) -> list[date]:
        """The UTC days that have rows of `table` (`reports/<name>` for a report table)."""
        return self._store.days(table)

    def read(
        self,
        table: str,
        start: date | str | None = None,
        end: date | str | None = None,
        columns: list[str] | None = None,
    ) -> pd.DataFrame:
        """Rows of a collected table (`polls`, `checks`, `entities`, `raw`, `numbers`) for the
        UTC days [start, end] (either bound may be left open)."""
        return to_pandas(self.read_arrow(table, start, end, columns))

    def read_arrow(
        self,
        table: str,
        start: date | str | None = None,
        end: date | str | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """As `read`, as an Arrow table."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}: one of {', '.join(TABLES)}")
        return self._store.read_arrow(table, as_day(start), as_day(end), columns)

    def report(
        self, name: str, start: date | str | None = None, end: date | str | None = None
    ) -> pd.DataFrame:
        """A report table (`availability_daily`, `quality_daily`, ...) for [start, end]."""
        if name not in REPORT_SCHEMAS:
            raise ValueError(f"unknown report table {name!r}: one of {', '.join(REPORT_SCHEMAS)}")
        return self._store.read(f"reports/{name}", start, end, schema=REPORT_SCHEMAS[name])

    def files(
        self, table: str, start: date | str | None = None, end: date | str | None = None
    ) -> list[str]:
        """The live data files of a table (`reports/<name>` for a report table) for [start,
        end], each row in exactly one of them: hand these to DuckDB or polars, not a glob."""
        return self._store.files(table, as_day(start), as_day(end))

    def __repr__(self) -> str:
        return f"History({self.root!r})"
