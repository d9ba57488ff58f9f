"""The Parquet history: one Hive-partitioned dataset per table under a root (local or fsspec URL).

Layout: `<root>/<table>/date=YYYY-MM-DD/<run_id>-<part>.parquet`, zstd; compactions in
progress leave a marker under `<root>/_compacting/`. A file appears whole under its final name
or not at all: on a local disk it is written under a hidden temporary name and renamed into
place (an atomic rename); on an object store it is one PUT of the whole file (atomic there,
where a rename is a copy plus a delete). Writing the same run and part again replaces the file.
Nothing else knows this layout.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

import fsspec
import fsspec.asyn
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from kapso_health.tasks.schemas import COLUMN_DEFAULTS, TABLES, to_pandas

DATE_COLUMN = {
    "polls": "polled_at",
    "checks": "polled_at",
    "entities": "polled_at",
    "raw": "polled_at",
    "numbers": "listed_at",
}
RUN_ID = re.compile(r"^(?!compacted-)[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
# Compacted files are named so no run's file can be, and so that readers that skip
# `_`- and `.`-prefixed files (pyarrow, pandas, DuckDB globs) still read them.
COMPACTED = re.compile(r"^compacted-(\d{6})\.parquet$")
REPLACES_KEY = b"kapso_health.replaces"
SIMULATED_MARK = "_SIMULATED"  # at the root: the history came from the simulator (the demo)
COMPACTING = "_compacting"  # at the root: `<table>/date=YYYY-MM-DD/<id>`, one per compaction
READ_ATTEMPTS = 3
# Stores where an exclusive create is atomic besides local disks (os.link): S3's conditional
# PUT (`If-None-Match: *`). Elsewhere fsspec checks, then writes.
EXCLUSIVE_CREATE = frozenset({"s3", "s3a"})
BULK_DELETE = frozenset({"s3", "s3a"})  # one request deletes up to 1,000 keys, gone ones too
FETCH_BATCH = 64  # files read from an object store together: concurrent GETs, bounded memory


class StorageError(RuntimeError):
    """The storage root cannot be used (not writable, not reachable)."""


@dataclass(frozen=True)
class Entry:
    """A file of a partition as one listing saw it."""

    path: str
    modified: float | None  # Unix seconds: local mtime, an object store's LastModified

    @property
    def name(self) -> str:
        return file_name(self.path)

    @property
    def temporary(self) -> bool:
        return self.name.startswith(".") and self.name.endswith(".tmp")


@dataclass(frozen=True)
class PartitionState:
    live: list[str]  # the newest compacted file and every data file it does not replace
    replaced: set[str]  # the names the newest compacted file replaces
    generation: int  # of the newest compacted file, 0 without one
    entries: list[Entry]  # everything the listing saw, temporary files included


@dataclass(frozen=True)
class CompactionMarker:
    path: str
    table: str
    day: date
    modified: float | None


class ParquetStore:
    def __init__(self, root: str) -> None:
        self.url = root
        # Listings are never cached: a long-lived process (a worker, a notebook) must see the
        # files other processes wrote since it last looked (fsspec also shares instances).
        self.fs, self.root = fsspec.core.url_to_fs(root, use_listings_cache=False)
        self.root = self.root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)  # renames are atomic; dirs are real
        self.protocol = "file" if self.local else _protocol(self.fs)
        self._replaces: dict[str, set[str]] = {}  # compacted files are never rewritten

    @property
    def exclusive_create(self) -> bool:
        """Whether two writers of one new name cannot both succeed (compaction generations)."""
        return self.local or self.protocol in EXCLUSIVE_CREATE

    def url_of(self, path: str) -> str:
        """A path as the program prints or stores it: with its scheme (`s3://...`) off disk."""
        return path if self.local or "://" in path else self.fs.unstrip_protocol(path)

    def check_writable(self) -> None:
        """Fail now, not after a whole run of polling, when the root cannot be written."""
        probe = f"{self.root}/.write-probe-{uuid.uuid4().hex}"
        try:
            if self.local:
                self.fs.makedirs(self.root, exist_ok=True)
            self.fs.pipe_file(probe, b"")
            self.fs.rm(probe)
        except OSError as exc:
            raise StorageError(f"cannot write to the storage root {self.url!r}: {exc}") from exc

    def mark_simulated(self) -> None:
        """Mark the whole history as simulated data (the demo's): reports say so."""
        if self.local:
            self.fs.makedirs(self.root, exist_ok=True)
        self.fs.pipe_file(
            f"{self.root}/{SIMULATED_MARK}",
            b"Every number in this history is made up: it was collected from kapso-health's "
            b"built-in simulator.\n",
        )

    @property
    def simulated(self) -> bool:
        return self.fs.exists(f"{self.root}/{SIMULATED_MARK}")

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
                self.write_file(f"{self.root}/{name}/date={day}", f"{run_id}-{part}.parquet", rows)
            )
        return written

    def write_file(
        self, directory: str, filename: str, table: pa.Table, exclusive: bool = False
    ) -> str | None:
        """Write `table` as `directory/filename`, whole or not at all; returns its URL.
        `exclusive`: only if no file of that name exists yet (None when one does); atomic on
        local disks and S3 (`exclusive_create`), a check and then a write elsewhere."""
        final = f"{directory}/{filename}"
        try:
            if not self.local:
                buffer = pa.BufferOutputStream()
                pq.write_table(table, buffer, compression="zstd")
                written = put_bytes(self.fs, final, buffer.getvalue().to_pybytes(), exclusive)
                return self.url_of(final) if written else None
            temporary = f"{directory}/.{filename}.{uuid.uuid4().hex}.tmp"
            self.fs.makedirs(directory, exist_ok=True)
            pq.write_table(table, temporary, filesystem=self.fs, compression="zstd")
            if not exclusive:
                self.fs.mv(temporary, final)
                return final
            try:
                os.link(temporary, final)
            except FileExistsError:
                return None
            finally:
                os.remove(temporary)
        except OSError as exc:
            raise StorageError(f"cannot write to the storage root {self.url!r}: {exc}") from exc
        return final

    def replace_day(self, name: str, table: pa.Table, day: date) -> str:
        """Write `table` as the one file of `name` for `day`, replacing any earlier build."""
        return self.write_file(
            f"{self.root}/{name}/date={day.isoformat()}", "part-0.parquet", table
        )

    def run_files(self, run_id: str, temporary: bool = False) -> list[str]:
        """Every file of a run, in any table and day; with `temporary`, the hidden temporary
        files an attempt of the run that died while writing left behind instead."""
        check_run_id(run_id)
        pattern = f".{run_id}-*.parquet.*.tmp" if temporary else f"{run_id}-*.parquet"
        return sorted(
            self.url_of(path)
            for name in TABLES
            for path in self.fs.glob(f"{self.root}/{name}/date=*/{pattern}")
            if _run_of(path) == run_id  # not run "a-b"'s files when asked for run "a"
        )

    def remove(self, paths: Iterable[str]) -> int:
        paths = list(paths)
        for path in paths:
            self.fs.rm(path)
        return len(paths)

    def delete(self, paths: list[str]) -> None:
        """Delete `paths`, any already gone too: on S3 one request per 1,000 keys."""
        if paths and self.protocol in BULK_DELETE:
            self.fs.rm(paths)
            return
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(path)

    def days(self, name: str) -> list[date]:
        """The days that have a partition for table `name`."""
        try:
            entries = self.fs.ls(f"{self.root}/{name}", detail=False)
        except FileNotFoundError:
            return []
        found = []
        for entry in entries:
            leaf = entry.rstrip("/").rsplit("/", 1)[-1]
            if leaf.startswith("date="):
                try:
                    found.append(date.fromisoformat(leaf[5:]))
                except ValueError:
                    continue
        return sorted(found)

    def files(self, name: str, start: date | None = None, end: date | None = None) -> list[str]:
        """The live data files of `name` for days in [start, end] (either bound optional),
        as URLs (with their scheme off disk)."""
        paths = []
        for day in self.days(name):
            if (start is None or day >= start) and (end is None or day <= end):
                paths.extend(self.partition_state(self.partition(name, day)).live)
        return sorted(self.url_of(path) for path in paths)

    def partition(self, name: str, day: date) -> str:
        return f"{self.root}/{name}/date={day.isoformat()}"

    def partition_state(self, directory: str) -> PartitionState:
        """What one fresh listing of a partition holds: live files, the newest compacted
        file's generation and what it replaces, and every entry with its modification time."""
        try:
            listing = self.fs.ls(directory, detail=True)
        except FileNotFoundError:
            listing = []
        entries = [Entry(info["name"], modified_seconds(info)) for info in listing]
        data = [e.path for e in entries if e.name.endswith(".parquet") and e.name[0] != "."]
        compacted = sorted(path for path in data if COMPACTED.match(file_name(path)))
        if not compacted:
            return PartitionState(data, set(), 0, entries)
        newest = compacted[-1]
        replaced = self._replaced_by(newest)
        live = [newest] + [
            path
            for path in data
            if not COMPACTED.match(file_name(path)) and file_name(path) not in replaced
        ]
        generation = int(COMPACTED.match(file_name(newest)).group(1))
        return PartitionState(live, replaced, generation, entries)

    def _replaced_by(self, compacted: str) -> set[str]:
        if compacted not in self._replaces:
            metadata = pq.read_metadata(compacted, filesystem=self.fs).metadata or {}
            self._replaces[compacted] = set(json.loads(metadata.get(REPLACES_KEY, b"[]")))
        return self._replaces[compacted]

    def begin_compaction(self, name: str, day: date) -> str:
        """Mark a compaction of `name` on `day` in progress (before it publishes anything)."""
        marker = f"{self.root}/{COMPACTING}/{name}/date={day.isoformat()}/{uuid.uuid4().hex}"
        if self.local:
            self.fs.makedirs(marker.rsplit("/", 1)[0], exist_ok=True)
        self.fs.pipe_file(marker, b"")
        return marker

    def end_compaction(self, marker: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(marker)
        if self.local:  # no empty folders left behind (object stores have none)
            for folder in (marker.rsplit("/", 1)[0], marker.rsplit("/", 2)[0]):
                with contextlib.suppress(OSError):
                    os.rmdir(folder)

    def compaction_markers(self) -> list[CompactionMarker]:
        """Compactions begun and not ended: in progress, or died (one listing)."""
        try:
            found = self.fs.find(f"{self.root}/{COMPACTING}", detail=True)
        except FileNotFoundError:
            return []
        markers = []
        for path, info in found.items():
            parts = path.rsplit("/", 3)
            if len(parts) == 4 and parts[2].startswith("date="):
                with contextlib.suppress(ValueError):
                    day = date.fromisoformat(parts[2][5:])
                    markers.append(CompactionMarker(path, parts[1], day, modified_seconds(info)))
        return markers

    def read_arrow(
        self,
        name: str,
        start: date | None = None,
        end: date | None = None,
        columns: list[str] | None = None,
        schema: pa.Schema | None = None,
        dictionary: bool = False,
    ) -> pa.Table:
        """Rows of `name` for UTC days in [start, end], in its schema.

        The schema defaults to the table's in `TABLES`; for other tables (report tables)
        it is the one their files were written with. `dictionary` reads text columns
        dictionary-encoded, as Parquet stores them: far less memory for long ranges. A file
        that a compaction removes while it is being read makes the read start again from a
        fresh listing.
        """
        schema = schema or TABLES.get(name)
        for attempt in range(READ_ATTEMPTS):
            files = self.files(name, start, end)
            if not files:
                if schema is None:
                    raise StorageError(f"no {name!r} files under {self.url!r} for those days")
                empty = (_dictionary_schema(schema) if dictionary else schema).empty_table()
                return empty.select(columns or schema.names)
            try:
                return self.read_files(files, schema, columns, dictionary)
            except FileNotFoundError:
                if attempt == READ_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def read_files(
        self,
        files: list[str],
        schema: pa.Schema | None,
        columns: list[str] | None = None,
        dictionary: bool = False,
    ) -> pa.Table:
        """The rows of `files` in `schema` (without one, the first file's): a column a file
        lacks reads as null. Off a local disk the files' bytes are fetched concurrently, a batch
        at a time, and read from memory: pyarrow reading through fsspec sends its requests one
        file after another (two HEADs and a GET each). A file gone raises FileNotFoundError."""
        file_format = ds.ParquetFileFormat()
        if dictionary and schema is not None:
            text = [field.name for field in schema if field.type == pa.string()]
            file_format = ds.ParquetFileFormat(
                read_options=ds.ParquetReadOptions(dictionary_columns=text)
            )
            schema = _dictionary_schema(schema)
        if self.local or not files:
            dataset = ds.dataset(files, schema=schema, format=file_format, filesystem=self.fs)
            return _with_defaults(dataset.to_table(columns=columns))
        tables = []
        for start in range(0, len(files), FETCH_BATCH):
            fetched = fetch_whole(self.fs, files[start : start + FETCH_BATCH])
            fragments = [file_format.make_fragment(pa.BufferReader(data)) for data in fetched]
            schema = schema or fragments[0].physical_schema  # as a dataset infers it
            dataset = ds.FileSystemDataset(fragments, schema, file_format)
            tables.append(dataset.to_table(columns=columns))
        return _with_defaults(pa.concat_tables(tables))

    def read(
        self,
        name: str,
        start: date | str | None = None,
        end: date | str | None = None,
        columns: list[str] | None = None,
        schema: pa.Schema | None = None,
    ) -> pd.DataFrame:
        """Rows of `name` for UTC days in [start, end] as pandas, reading only those days."""
        table = self.read_arrow(name, as_day(start), as_day(end), columns, schema)
        return to_pandas(table)


def write_text(url: str, text: str) -> str:
    """Write a text file (a report page) at a local path or fsspec URL, whole or not at all;
    returns where, with its scheme off disk."""
    fs, path = fsspec.core.url_to_fs(url)
    local = isinstance(fs, LocalFileSystem)
    try:
        if not local:
            put_bytes(fs, path, text.encode("utf-8"))
            return fs.unstrip_protocol(path)
        directory, name = path.rsplit("/", 1)
        temporary = f"{directory}/.{name}.{uuid.uuid4().hex}.tmp"
        fs.makedirs(directory, exist_ok=True)
        with fs.open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        fs.mv(temporary, path)
    except OSError as exc:
        raise StorageError(f"cannot write {url!r}: {exc}") from exc
    return path


def put_bytes(
    fs: fsspec.AbstractFileSystem, path: str, data: bytes, exclusive: bool = False
) -> bool:
    """One PUT of a whole object (no temporary name: a rename is a copy there). `exclusive`:
    `If-None-Match: *` on S3; False when the object exists."""
    try:
        fs.pipe_file(path, data, mode="create" if exclusive else "overwrite")
    except FileExistsError:
        return False
    return True


def fetch_whole(fs: fsspec.AbstractFileSystem, paths: list[str]) -> list[bytes]:
    """The bytes of each of `paths`, in order: fetched concurrently by an asynchronous
    filesystem (s3fs, gcsfs), one after another by others. Raises the first error met
    (FileNotFoundError for a file gone)."""
    if not getattr(fs, "async_impl", False):
        return [fs.cat_file(path) for path in paths]
    # s3fs asks for an object's size (a HEAD) before a GET unless told not to split it into
    # ranges; these files are small, and one GET each is all they need.
    options = {"max_concurrency": 1} if _accepts(fs._cat_file, "max_concurrency") else {}

    async def fetch() -> list[bytes | BaseException]:
        coroutines = (fs._cat_file(path, **options) for path in paths)
        return await asyncio.gather(*coroutines, return_exceptions=True)

    fetched = fsspec.asyn.sync(fs.loop, fetch)
    for result in fetched:
        if isinstance(result, BaseException):
            raise result
    return fetched


def _accepts(function: Callable, parameter: str) -> bool:
    return parameter in inspect.signature(function).parameters


def modified_seconds(info: dict) -> float | None:
    """A listing entry's modification time as Unix seconds (local `mtime`, S3 `LastModified`,
    GCS `updated`), None when the store gives none."""
    for key in ("mtime", "LastModified", "last_modified", "updated"):
        value = info.get(key)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None


def _protocol(fs: fsspec.AbstractFileSystem) -> str:
    protocol = fs.protocol
    return protocol if isinstance(protocol, str) else protocol[0]


def _run_of(path: str) -> str:
    """The run id in a data file's name (`<run>-<part>.parquet`, parts have no '-'), or in
    its temporary file's (`.<run>-<part>.parquet.<hex>.tmp`)."""
    name = file_name(path)
    if name.startswith(".") and name.endswith(".tmp"):
        name = name[1:].rsplit(".", 2)[0]
    return name.removesuffix(".parquet").rsplit("-", 1)[0]


def _with_defaults(table: pa.Table) -> pa.Table:
    """Nulls of a column older files lack (`COLUMN_DEFAULTS`) read as its default."""
    for name, default in COLUMN_DEFAULTS.items():
        if name not in table.column_names or table.column(name).null_count == 0:
            continue
        column = table.column(name)
        encoded = pa.types.is_dictionary(column.type)
        plain = column.cast(column.type.value_type) if encoded else column
        filled = pc.fill_null(plain, default)
        filled = pc.dictionary_encode(filled).cast(column.type) if encoded else filled
        table = table.set_column(table.column_names.index(name), name, filled)
    return table


def _dictionary_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with its text columns dictionary-encoded."""
    text = pa.dictionary(pa.int32(), pa.string())
    return pa.schema(
        [field.with_type(text) if field.type == pa.string() else field for field in schema]
    )


def file_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def check_run_id(run_id: str) -> str:
    if not RUN_ID.match(run_id):
        raise ValueError(
            f"run id must be letters, digits, '.', '_' or '-', and not start with 'compacted-': "
            f"{run_id!r}"
        )
    return run_id


def as_day(value: date | str | None) -> date | None:
    """A day given as a date, a datetime or YYYY-MM-DD text."""
    if value is None or isinstance(value, date):
        return value.date() if isinstance(value, datetime) else value
    return date.fromisoformat(value)
