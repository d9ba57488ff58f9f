"""The store on a real S3 server (moto over HTTP, s3fs): one PUT per file and no copy,
exclusive compaction generations, fresh listings, schemes kept, abandoned temporary files and
interrupted compactions cleaned; the same promises on a local disk where they apply."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from kapso_health import History
from kapso_health.tasks import storage
from kapso_health.tasks.compaction import (
    ABANDONED_SECONDS,
    clear_partition,
    compact,
    finish_compactions,
)
from kapso_health.tasks.schemas import POLLS
from kapso_health.tasks.storage import ParquetStore, file_name, write_text
from tests.s3 import count_s3_calls

DAY = date(2025, 3, 1)
START = datetime(2025, 3, 1, tzinfo=UTC)
WRITES = {"put_object", "copy_object", "upload_part", "create_multipart_upload"}


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return (
        str(tmp_path / "data") if request.param == "local" else request.getfixturevalue("s3_root")
    )


@pytest.fixture
def fill(polls_for) -> Callable[[ParquetStore, int], None]:
    def write(store: ParquetStore, runs: int, first: int = 0) -> None:
        for run in range(first, first + runs):
            times = [START + timedelta(minutes=15 * run, seconds=s) for s in range(3)]
            store.write("polls", polls_for(times, f"run-{run:03d}"), f"run-{run:03d}", "c00000")

    return write


def rows(store: ParquetStore) -> list[tuple[str, str]]:
    frame = store.read("polls", DAY, DAY)
    return sorted(zip(frame["run_id"], frame["config_id"], strict=True))


def glob_rows(store: ParquetStore) -> list[tuple[str, str]]:
    """What an analyst's plain DuckDB glob over `polls/*/*.parquet` sees (no file list)."""
    con = duckdb.connect()
    con.register_filesystem(store.fs)
    glob = f"{store.url_of(store.root)}/polls/*/*.parquet"
    return sorted(con.execute(f"SELECT run_id, config_id FROM read_parquet('{glob}')").fetchall())


def test_each_file_is_one_put_and_never_a_copy(s3_root: str, polls_for) -> None:
    store = ParquetStore(s3_root)
    times = [START, START + timedelta(days=1)]
    with count_s3_calls(store.fs) as calls:
        written = store.write("polls", polls_for(times), "run-1", "c00000")
    assert calls["put_object"] == 2 and not (set(calls) & WRITES) - {"put_object"}
    assert all(path.startswith(f"{s3_root}/polls/date=") for path in written)
    assert [file_name(p) for p in store.fs.find(s3_root)] == ["run-1-c00000.parquet"] * 2
    assert len(store.read("polls")) == 2


def test_two_writers_of_one_generation_cannot_both_publish(root: str, fill) -> None:
    store = ParquetStore(root)
    fill(store, 3)
    assert store.exclusive_create
    directory = store.partition("polls", DAY)
    table = store.read_arrow("polls", DAY, DAY)
    assert store.write_file(directory, "compacted-000001.parquet", table, exclusive=True)
    assert store.write_file(directory, "compacted-000001.parquet", table, exclusive=True) is None


def test_a_long_lived_reader_sees_files_written_since_its_last_listing(root: str, fill) -> None:
    reader, writer = ParquetStore(root), ParquetStore(root)
    fill(writer, 2)
    assert len(reader.files("polls")) == 2
    fill(writer, 3, first=2)
    compact(writer, "polls", DAY)
    assert [file_name(p) for p in reader.files("polls")] == ["compacted-000001.parquet"]
    assert len(rows(reader)) == 15


def test_every_path_printed_or_stored_keeps_its_scheme(s3_root: str, fill) -> None:
    store = ParquetStore(s3_root)
    fill(store, 2)
    assert all(p.startswith("s3://") for p in store.files("polls") + store.run_files("run-000"))
    assert History(s3_root).files("polls", DAY, DAY) == store.files("polls", DAY, DAY)
    page = write_text(f"{s3_root}/reports/html/page.html", "<p>hi</p>")
    assert page == f"{s3_root}/reports/html/page.html"
    assert store.fs.cat(page) == b"<p>hi</p>"


def test_abandoned_temporary_files_go_by_their_stores_modification_time(root: str, fill) -> None:
    store = ParquetStore(root)
    fill(store, 3)
    directory = store.partition("polls", DAY)
    leftover = f"{directory}/.compacted-000001.parquet.dead.tmp"
    store.fs.pipe_file(leftover, b"PAR1 half")
    modified = next(e.modified for e in store.partition_state(directory).entries if e.temporary)
    assert modified is not None
    assert clear_partition(store, directory, now=modified + 60) == 0
    assert store.fs.exists(leftover)
    assert clear_partition(store, directory, now=modified + ABANDONED_SECONDS + 1) == 1
    assert not store.fs.exists(leftover)


def test_compaction_on_s3_writes_the_merged_file_once(s3_root: str, fill) -> None:
    store = ParquetStore(s3_root)
    fill(store, 8)
    before = rows(store)
    with count_s3_calls(store.fs) as calls:
        assert compact(store, "polls", DAY) == 8
    assert calls["put_object"] == 2  # the merged file and the compaction's marker
    assert calls["delete_objects"] == 2  # the 8 merged files in one request, the marker
    assert calls["get_object"] == 8 + 1  # each merged file once; the new file's footer
    assert calls["head_object"] == 2  # pyarrow reading that footer; none per merged file
    assert not (set(calls) & WRITES) - {"put_object"}
    assert rows(store) == before == glob_rows(store)
    assert store.fs.find(f"{s3_root}/_compacting") == []


@pytest.mark.parametrize("deleted_before_crash", [0, 3])
def test_the_next_writer_finishes_a_compaction_that_died_after_publishing(
    root: str, fill, monkeypatch: pytest.MonkeyPatch, deleted_before_crash: int
) -> None:
    store = ParquetStore(root)
    fill(store, 6)
    before = rows(store)
    real_rm, removed = store.fs.rm, []

    def crashing_rm(path: str | list[str], *args: object, **kwargs: object) -> None:
        """Dies after `deleted_before_crash` files, deleted one by one or in one request."""
        for one in [path] if isinstance(path, str) else path:
            if len(removed) == deleted_before_crash:
                raise KeyboardInterrupt("killed")
            removed.append(one)
            real_rm(one, *args, **kwargs)

    monkeypatch.setattr(store.fs, "rm", crashing_rm)
    with pytest.raises(KeyboardInterrupt):
        compact(store, "polls", DAY)
    monkeypatch.setattr(store.fs, "rm", real_rm)
    assert rows(store) == before  # the reader: once each, from the merged file
    assert len(glob_rows(store)) == len(before) * 2 - 3 * deleted_before_crash  # a glob: twice
    later = ParquetStore(root)  # another process that writes, e.g. the next collection
    assert finish_compactions(later) == 6 - deleted_before_crash
    assert glob_rows(later) == before == rows(later)
    assert len(later.compaction_markers()) == 1  # in progress, for all anyone knows
    marker = later.compaction_markers()[0]
    finish_compactions(later, now=(marker.modified or 0) + ABANDONED_SECONDS + 1)
    assert later.compaction_markers() == []


@pytest.mark.parametrize(
    ("table", "schema", "columns", "dictionary"),
    [
        ("polls", POLLS, None, False),
        ("polls", POLLS, ["run_id", "project", "throughput_tier"], True),
        ("report", None, None, False),  # a report table: the first file's schema
    ],
)
def test_reads_off_disk_fetch_concurrently_and_match_the_dataset_reader(
    s3_root: str,
    tmp_path: Path,
    fill,
    polls_for,
    monkeypatch: pytest.MonkeyPatch,
    table: str,
    schema: pa.Schema | None,
    columns: list[str] | None,
    dictionary: bool,
) -> None:
    """Files older and newer than the schema (columns missing, one extra), several fetch
    batches: the rows, order, types and metadata a local disk's dataset reader gives."""
    store = ParquetStore(s3_root)
    directory = store.partition(table, DAY)
    if table == "polls":
        fill(store, 4)
        old = polls_for([START], "run-old").drop_columns(["project", "throughput_tier"])
        extra = polls_for([START], "run-extra").append_column("later", pa.array(["x"]))
        for name, data in {"run-old-c0": old, "run-extra-c0": extra}.items():
            store.write_file(directory, f"{name}.parquet", data)
    else:
        first = pa.table({"a": [1, 2], "b": ["x", "y"]}, metadata={b"kind": b"report"})
        store.write_file(directory, "run-1-c0.parquet", first)
        store.write_file(directory, "run-2-c0.parquet", pa.table({"a": [3]}))
        store.write_file(directory, "run-3-c0.parquet", pa.table({"b": ["z"], "c": [1.5]}))
    store.fs.get(store.root, str(tmp_path / "copy"), recursive=True)
    local = ParquetStore(str(tmp_path / "copy"))
    files, copies = store.files(table), local.files(table)
    assert [file_name(p) for p in files] == [file_name(p) for p in copies]
    expected = local.read_files(copies, schema, columns, dictionary)
    monkeypatch.setattr(storage, "FETCH_BATCH", 2)
    with count_s3_calls(store.fs) as calls:
        got = store.read_files(files, schema, columns, dictionary)
    assert got.equals(expected, check_metadata=True)
    assert got.schema.metadata == expected.schema.metadata
    assert dict(calls) == {"get_object": len(files)}  # one GET per file, no HEAD


def test_a_file_a_compaction_removed_mid_read_makes_the_read_start_again(
    root: str, fill, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ParquetStore(root)
    fill(store, 4)
    before = rows(store)
    stale = store.files("polls", DAY, DAY)
    real_files, listings = store.files, []

    def files_then_compact(*args: object) -> list[str]:
        listings.append(args)
        if len(listings) == 1:
            compact(store, "polls", DAY)  # removes every file of the listing below
            return stale
        return real_files(*args)

    monkeypatch.setattr(store, "files", files_then_compact)
    assert rows(store) == before
    assert len(listings) == 2
