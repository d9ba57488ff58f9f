"""The engine reads the live files the store lists, never a glob: a compaction in progress or
left half-done never makes the report count a row twice or miss one."""

from __future__ import annotations

import shutil
import threading
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from kapso_health.reports import engine
from kapso_health.reports.build import build_reports
from kapso_health.reports.policy import Policy
from kapso_health.simulator.history import FIRST_DAY, write_day
from kapso_health.tasks.compaction import compact
from kapso_health.tasks.storage import ParquetStore

NUMBERS = 30
DAY = FIRST_DAY + timedelta(days=1)
TABLES = ("polls", "checks", "entities")


@pytest.fixture
def history(tmp_path: Path) -> ParquetStore:
    """Three days of 96 appends each, none compacted."""
    for offset in range(3):
        write_day(str(tmp_path / "history"), NUMBERS, FIRST_DAY + timedelta(days=offset), False)
    return ParquetStore(str(tmp_path / "history"))


def quiet_report(store: ParquetStore) -> dict[str, pd.DataFrame]:
    return build_reports(store, [DAY], Policy())


def test_a_compaction_left_half_done_is_read_once(history: ParquetStore, tmp_path: Path) -> None:
    """Compacted, but one replaced file is back (a compaction that died before deleting it):
    the store does not list it, so the report counts its rows once."""
    expected = quiet_report(history)
    directory = Path(history.partition("polls", DAY))
    leftover = sorted(directory.glob("*.parquet"))[0]
    shutil.copy(leftover, tmp_path / leftover.name)
    compact(history, "polls", DAY)
    shutil.copy(tmp_path / leftover.name, leftover)
    assert len(list(directory.glob("*.parquet"))) == 2  # a glob would read both
    _assert_same(build_reports(history, [DAY], Policy()), expected)


def test_a_root_whose_path_looks_like_a_pattern_is_read_as_it_is(
    history: ParquetStore, tmp_path: Path
) -> None:
    """DuckDB reads `[`, `*`, `?` in a path as a pattern: such a root is still read exactly."""
    odd = tmp_path / "fleet[1]"
    shutil.copytree(history.root, odd)
    (tmp_path / "fleet1").mkdir()  # what the pattern would match instead
    _assert_same(build_reports(ParquetStore(str(odd)), [DAY], Policy()), quiet_report(history))


class Listing(ParquetStore):
    """A store that counts its listings of each table (the report lists from two threads)."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.listings: list[str] = []
        self.lock = threading.Lock()

    def files(self, name: str, start: date | None = None, end: date | None = None) -> list[str]:
        with self.lock:
            self.listings.append(name)
        return super().files(name, start, end)


class CompactedAfterListing(Listing):
    """A store whose first listing of each table is made just before a compaction replaces
    those files: the report reads files that are gone, and must list again."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.compacted: set[str] = set()

    def files(self, name: str, start: date | None = None, end: date | None = None) -> list[str]:
        listed = super().files(name, start, end)
        with self.lock:
            first = name in TABLES and name not in self.compacted
            self.compacted.add(name)
        if first:
            compact(self, name, DAY)
        return listed


class CompactedAfterWorkerListing(CompactedAfterListing):
    """Compacts after the first listing made on the report's worker thread (the aggregates
    per number) only: the error is raised on that thread."""

    def files(self, name: str, start: date | None = None, end: date | None = None) -> list[str]:
        if threading.current_thread() is threading.main_thread():
            return Listing.files(self, name, start, end)
        return super().files(name, start, end)


def test_files_replaced_under_the_worker_thread_are_listed_again(history: ParquetStore) -> None:
    quiet = Listing(history.root)
    expected = build_reports(quiet, [DAY], Policy())
    racing = CompactedAfterWorkerListing(history.root)
    found = build_reports(racing, [DAY], Policy())
    assert racing.compacted  # the worker listed, then its files were replaced
    assert racing.listings.count("polls") > quiet.listings.count("polls")
    _assert_same(found, expected)


def test_files_replaced_while_the_report_reads_are_listed_again(history: ParquetStore) -> None:
    quiet = Listing(history.root)
    expected = build_reports(quiet, [DAY], Policy())
    racing = CompactedAfterListing(history.root)
    found = build_reports(racing, [DAY], Policy())
    # read, found a file gone, listed again
    assert racing.listings.count("polls") > quiet.listings.count("polls")
    _assert_same(found, expected)


def _assert_same(found: dict[str, pd.DataFrame], expected: dict[str, pd.DataFrame]) -> None:
    for name, table in expected.items():
        keys = list(table.columns[:3])
        pd.testing.assert_frame_equal(
            found[name].sort_values(keys, ignore_index=True),
            table.sort_values(keys, ignore_index=True),
            obj=name,
        )


def test_a_name_read_again_from_days_without_files_is_empty(history: ParquetStore) -> None:
    """A view read from files, then from days the store has no files for, under the same name:
    the second read replaces the first (it once failed, the name being taken)."""
    con = engine.connect()
    try:
        columns = ["config_id", "polled_at"]
        engine.read_history(con, history, "checks", DAY, DAY, columns, "day_rows")
        assert con.execute("SELECT count(*) FROM day_rows").fetchone()[0] > 0
        later = DAY + timedelta(days=30)
        engine.read_history(con, history, "checks", later, later, columns, "day_rows")
        assert con.execute("SELECT count(*) FROM day_rows").fetchone()[0] == 0
    finally:
        con.close()


def test_columns_no_file_has_read_as_nulls_of_their_type(tmp_path: Path) -> None:
    """Files written before a column existed (here a list and a list of structs): the column
    reads as null, in its own type, so later pieces can take it apart."""
    store = ParquetStore(str(tmp_path))
    older = pa.table({"config_id": ["a"], "entity_type": ["WABA"]})
    store.write_file(store.partition("entities", DAY), "old.parquet", older)
    con = engine.connect()
    try:
        columns = ["config_id", "additional_info", "errors"]
        engine.read_history(con, store, "entities", DAY, DAY, columns, "old_rows")
        rows = con.execute("SELECT config_id, len(additional_info), errors FROM old_rows")
        assert rows.fetchall() == [("a", None, None)]
        kinds = dict(
            con.execute("SELECT column_name, column_type FROM (DESCRIBE old_rows)").fetchall()
        )
        assert kinds["additional_info"] == "VARCHAR[]"
        assert kinds["errors"].startswith("STRUCT(error_code VARCHAR")
    finally:
        con.close()
