"""The Parquet history: one Hive-partitioned dataset per table under a root (local or fsspec URL).

Layout: `<root>/<table>/date=YYYY-MM-DD/<run_id>-<part>.parquet`, zstd. Each file is written
under a hidden temporary name and renamed into place, so a reader sees whole files or none;
writing the same run and part again replaces the file. Nothing else knows this layout.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.schemas import TABLES

DATE_COLUMN = {
    "polls": "polled_at",
    "checks": "polled_at",
    "entities": "polled_at",
    "raw": "polled_at",
    "numbers": "listed_at",
}
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_PANDAS_TYPES = {
    pa.string(): pd.StringDtype(),
    pa.bool_(): pd.BooleanDtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.float64(): pd.Float64Dtype(),
}


class StorageError(RuntimeError):
    """The storage root cannot be used (not writable, not reachable)."""


class ParquetStore:
    def __init__(self, root: str) -> None:
        self.url = root
        self.fs, self.root = fsspec.core.url_to_fs(root)
        self.root = self.root.rstrip("/")

    def write(self, name: str, table: pa.Table, run_id: str, part: str) -> list[str]:
        """Append `table` as one file per UTC day it touches; returns the paths written."""
        check_run_id(run_id)
        if table.num_rows == 0:
            return []
        days = pc.strftime(table.column(DATE_COLUMN[name]), format="%Y-%m-%d")
        written = []
        for day in pc.unique(days).to_pylist():
            rows = table.filter(pc.equal(days, day))
            written.append(
                self._write_file(f"{self.root}/{name}/date={day}", f"{run_id}-{part}.parquet", rows)
            )
        return written

    def _write_file(self, directory: str, filename: str, table: pa.Table) -> str:
        final = f"{directory}/{filename}"
        temporary = f"{directory}/.{filename}.{uuid.uuid4().hex}.tmp"
        try:
            self.fs.makedirs(directory, exist_ok=True)
            pq.write_table(table, temporary, filesystem=self.fs, compression="zstd")
            self.fs.mv(temporary, final)
        except OSError as exc:
            raise StorageError(f"cannot write to the storage root {self.url!r}: {exc}") from exc
        return final

    def replace_day(self, name: str, table: pa.Table, day: date) -> str:
        """Write `table` as the one file of `name` for `day`, replacing any earlier build."""
        return self._write_file(
            f"{self.root}/{name}/date={day.isoformat()}", "part-0.parquet", table
        )

    def run_files(self, run_id: str) -> list[str]:
        """Every file of a run, in any table and day."""
        check_run_id(run_id)
        return sorted(
            path
            for name in TABLES
            for path in self.fs.glob(f"{self.root}/{name}/date=*/{run_id}-*.parquet")
        )

    def remove(self, paths: Iterable[str]) -> int:
        paths = list(paths)
        for path in paths:
            self.fs.rm(path)
        return len(paths)

    def days(self, name: str) -> list[date]:
        """The days that have a partition for table `name`."""
        if not self.fs.exists(f"{self.root}/{name}"):
            return []
        found = []
        for entry in self.fs.ls(f"{self.root}/{name}", detail=False):
            leaf = entry.rstrip("/").rsplit("/", 1)[-1]
            if leaf.startswith("date="):
                try:
                    found.append(date.fromisoformat(leaf[5:]))
                except ValueError:
                    continue
        return sorted(found)

    def files(self, name: str, start: date | None = None, end: date | None = None) -> list[str]:
        """Complete data files of `name` for days in [start, end] (either bound optional)."""
        paths = []
        for day in self.days(name):
            if (start is None or day >= start) and (end is None or day <= end):
                directory = f"{self.root}/{name}/date={day.isoformat()}"
                paths.extend(
                    path
                    for path in self.fs.ls(directory, detail=False)
                    if path.endswith(".parquet") and not path.rsplit("/", 1)[-1].startswith(".")
                )
        return sorted(paths)

    def read_arrow(
        self,
        name: str,
        start: date | None = None,
        end: date | None = None,
        columns: list[str] | None = None,
        schema: pa.Schema | None = None,
    ) -> pa.Table:
        """Rows of `name` for UTC days in [start, end], in its schema.

        The schema defaults to the table's in `TABLES`; for other tables (report tables)
        it is the one their files were written with.
        """
        schema = schema or TABLES.get(name)
        files = self.files(name, start, end)
        if not files:
            if schema is None:
                raise StorageError(f"no {name!r} files under {self.root!r} for those days")
            return schema.empty_table().select(columns or schema.names)
        dataset = ds.dataset(files, schema=schema, format="parquet", filesystem=self.fs)
        return dataset.to_table(columns=columns)

    def read(
        self,
        name: str,
        start: date | str | None = None,
        end: date | str | None = None,
        columns: list[str] | None = None,
        schema: pa.Schema | None = None,
    ) -> pd.DataFrame:
        """Rows of `name` for UTC days in [start, end] as pandas, reading only those days."""
        table = self.read_arrow(name, _day(start), _day(end), columns, schema)
        return table.to_pandas(types_mapper=_PANDAS_TYPES.get)

    def last_observations(
        self, now: datetime, days: int = 2, exclude_run: str | None = None
    ) -> pa.Table:
        """Per number, the newest `ok` poll of the last `days` days: checked_at, retry_after.

        `exclude_run` leaves out a run being replaced, whose rows are about to go.
        """
        polls = self.read_arrow(
            "polls",
            (now - timedelta(days=days)).date(),
            now.date(),
            ["run_id", "config_id", "polled_at", "outcome", "checked_at", "retry_after"],
        )
        keep = pc.equal(polls.column("outcome"), "ok")
        if exclude_run is not None:
            keep = pc.and_(keep, pc.not_equal(polls.column("run_id"), exclude_run))
        polls = polls.filter(keep)
        newest = polls.group_by("config_id").aggregate([("polled_at", "max")])
        return polls.join(
            newest, ["config_id", "polled_at"], ["config_id", "polled_at_max"], join_type="inner"
        ).select(["config_id", "checked_at", "retry_after"])


@task(
    name="append-tables",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=1,
    task_run_name="append-{part}",
)
async def append_tables(
    store: ParquetStore, tables: Mapping[str, pa.Table], run_id: str, part: str
) -> list[str]:
    """Write one chunk's tables in a worker thread, so polling goes on meanwhile."""

    def write_all() -> list[str]:
        return [
            path
            for name, table in tables.items()
            for path in store.write(name, table, run_id, part)
        ]

    return await asyncio.to_thread(write_all)


def write_text(url: str, text: str) -> str:
    """Write a text file (a report page) at a local path or fsspec URL, atomically."""
    fs, path = fsspec.core.url_to_fs(url)
    directory, name = path.rsplit("/", 1)
    temporary = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp"
    try:
        fs.makedirs(directory, exist_ok=True)
        with fs.open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        fs.mv(temporary, path)
    except OSError as exc:
        raise StorageError(f"cannot write {url!r}: {exc}") from exc
    return path


def check_run_id(run_id: str) -> str:
    if not RUN_ID.match(run_id):
        raise ValueError(f"run id must be letters, digits, '.', '_' or '-': {run_id!r}")
    return run_id


def _day(value: date | str | None) -> date | None:
    if value is None or isinstance(value, date):
        return value.date() if isinstance(value, datetime) else value
    return date.fromisoformat(value)
