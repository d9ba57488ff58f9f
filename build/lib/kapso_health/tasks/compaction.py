"""Compaction: one closed day's many small files of a table become one file.

The merged file names every file it replaces (cumulatively, across compactions); readers
(`ParquetStore.files`) read it instead of them from the moment it appears, so a reader sees
each row once and a crash at any point loses or doubles nothing.
"""

from __future__ import annotations

import contextlib
import json
import time
from datetime import date

import fsspec

from kapso_health.tasks.schemas import TABLES
from kapso_health.tasks.storage import DATE_COLUMN, REPLACES_KEY, ParquetStore, file_name

ABANDONED_SECONDS = 3600


def compact(store: ParquetStore, name: str, day: date) -> int:
    """Merge one day's files of `name` into one file; returns how many files it replaced.

    The replaced files are deleted once the merged file is in place. Generations are
    published exclusively on local disks, so two
    compactions of one day cannot both win; elsewhere run one compaction at a time.
    """
    directory = store.partition(name, day)
    if not store.fs.exists(directory):
        return 0
    live, replaced, generation = store.partition_state(directory)
    if len(live) <= 1:
        return 0
    replaces = replaced | {file_name(path) for path in live}
    table = store.read_files(live, TABLES.get(name))
    order = [c for c in ("config_id", DATE_COLUMN.get(name, "")) if c in table.column_names]
    if order:
        table = table.sort_by([(column, "ascending") for column in order])
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), REPLACES_KEY: json.dumps(sorted(replaces))}
    )
    filename = f"compacted-{generation + 1:06d}.parquet"
    if store.write_file(directory, filename, table, exclusive=True) is None:
        return 0  # another compaction published this generation first
    for path in store.fs.ls(directory, detail=False):
        if file_name(path) in replaces or _abandoned_compaction(store.fs, path):
            with contextlib.suppress(FileNotFoundError):
                store.fs.rm(path)
    return len(live)


def _abandoned_compaction(fs: fsspec.AbstractFileSystem, path: str) -> bool:
    """A compaction's hidden temporary file, untouched for an hour: its writer died."""
    if not (file_name(path).startswith(".compacted-") and path.endswith(".tmp")):
        return False
    modified = fs.info(path).get("mtime")  # local disks; elsewhere they stay (and stay hidden)
    return modified is not None and time.time() - float(modified) > ABANDONED_SECONDS
