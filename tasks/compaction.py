"""Compaction: one closed day's many small files of a table become one file.

The merged file names every file it replaces (cumulatively, across compactions); readers
(`ParquetStore.files`) read it instead of them from the moment it appears, so a reader sees
each row once and a crash at any point loses or doubles nothing. A compaction marks its day
before it publishes; whoever writes next (`finish_compactions`: every collection, report and
compaction run) deletes what a compaction that died after publishing left behind, so plain
globs over the files see each row once again within one collection interval.
"""

from __future__ import annotations

import json
import time
from datetime import date

from kapso_health.tasks.schemas import TABLES
from kapso_health.tasks.storage import DATE_COLUMN, REPLACES_KEY, ParquetStore, file_name

ABANDONED_SECONDS = 3600  # a temporary file or marker untouched this long: its writer died


def compact(store: ParquetStore, name: str, day: date, now: float | None = None) -> int:
    """Merge one day's files of `name` into one file; returns how many files it replaced.

    The replaced files are deleted once the merged file is in place. Generations are
    published exclusively on local disks and S3 (`ParquetStore.exclusive_create`), so two
    compactions of one day cannot both win; elsewhere run one compaction at a time.
    """
    directory = store.partition(name, day)
    state = store.partition_state(directory)
    if len(state.live) <= 1:
        return 0
    marker = store.begin_compaction(name, day)
    replaces = state.replaced | {file_name(path) for path in state.live}
    table = store.read_files(state.live, TABLES.get(name))
    order = [c for c in ("config_id", DATE_COLUMN.get(name, "")) if c in table.column_names]
    if order:
        table = table.sort_by([(column, "ascending") for column in order])
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), REPLACES_KEY: json.dumps(sorted(replaces))}
    )
    filename = f"compacted-{state.generation + 1:06d}.parquet"
    if store.write_file(directory, filename, table, exclusive=True) is None:
        store.end_compaction(marker)
        return 0  # another compaction published this generation first
    clear_partition(store, directory, now)
    store.end_compaction(marker)
    return len(state.live)


def clear_partition(store: ParquetStore, directory: str, now: float | None = None) -> int:
    """Delete the files the partition's newest compacted file replaces, and temporary files
    abandoned by writers that died (untouched for `ABANDONED_SECONDS`). Returns how many."""
    now = time.time() if now is None else now
    state = store.partition_state(directory)
    doomed = [
        entry.path
        for entry in state.entries
        if entry.name in state.replaced
        or (entry.temporary and _older(entry.modified, now, ABANDONED_SECONDS))
    ]
    store.delete(doomed)
    return len(doomed)


def finish_compactions(store: ParquetStore, now: float | None = None) -> int:
    """Finish what compactions that died left behind (any writer calls this when it starts):
    the replaced files of every marked day are deleted; a marker an hour old is removed.
    Safe beside a running compaction: replaced files are read by nobody. Returns files
    deleted."""
    now = time.time() if now is None else now
    deleted = 0
    for marker in store.compaction_markers():
        deleted += clear_partition(store, store.partition(marker.table, marker.day), now)
        if _older(marker.modified, now, ABANDONED_SECONDS):
            store.end_compaction(marker.path)
    return deleted


def _older(modified: float | None, now: float, seconds: float) -> bool:
    return modified is not None and now - modified > seconds
