"""Compaction: one file per closed day, each row seen exactly once before, during and after."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from kapso_health.tasks.compaction import compact
from kapso_health.tasks.storage import ParquetStore

DAY = date(2025, 3, 1)
START = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def fill_day(polls_for) -> Callable[..., None]:
    """`fill_day(store, runs, first=0, per_run=3)`: runs `first`.. of DAY, each its own file."""

    def fill(store: ParquetStore, runs: int, first: int = 0, per_run: int = 3) -> None:
        for run in range(first, first + runs):
            times = [START + timedelta(minutes=15 * run, seconds=s) for s in range(per_run)]
            store.write("polls", polls_for(times, f"run-{run:03d}"), f"run-{run:03d}", "c00000")

    return fill


def rows(store: ParquetStore) -> list[tuple[str, str]]:
    frame = store.read("polls", DAY, DAY)
    return sorted(zip(frame["run_id"], frame["config_id"], strict=True))


def test_compaction_leaves_one_file_and_the_same_rows(tmp_path: Path, fill_day) -> None:
    store = ParquetStore(str(tmp_path))
    fill_day(store, 12)
    before = rows(store)
    assert compact(store, "polls", DAY) == 12
    assert [Path(p).name for p in store.files("polls", DAY, DAY)] == ["compacted-000001.parquet"]
    assert list((tmp_path / "polls" / f"date={DAY}").iterdir()) == [
        tmp_path / "polls" / f"date={DAY}" / "compacted-000001.parquet"
    ]
    assert rows(store) == before and len(before) == 36
    assert compact(store, "polls", DAY) == 0  # nothing left to merge


def test_files_appended_after_a_compaction_are_read_and_merged_next_time(
    tmp_path: Path, fill_day
) -> None:
    store = ParquetStore(str(tmp_path))
    fill_day(store, 4)
    compact(store, "polls", DAY)
    fill_day(store, 3, first=4)
    assert len(store.files("polls", DAY, DAY)) == 4
    before = rows(store)
    assert len(before) == 21
    assert compact(store, "polls", DAY) == 4
    assert [Path(p).name for p in store.files("polls", DAY, DAY)] == ["compacted-000002.parquet"]
    assert rows(store) == before


@pytest.mark.parametrize("deleted_before_crash", [0, 1, 2])
def test_a_crash_while_deleting_sources_loses_and_doubles_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, deleted_before_crash: int, fill_day
) -> None:
    store = ParquetStore(str(tmp_path))
    fill_day(store, 8)
    compact(store, "polls", DAY)  # generation 1 replaces run-000..007
    fill_day(store, 2, first=8)
    before = rows(store)
    real_rm = store.fs.rm
    calls = []

    def crashing_rm(path: str, *args: object, **kwargs: object) -> None:
        if len(calls) == deleted_before_crash:
            raise KeyboardInterrupt("killed")
        calls.append(path)
        real_rm(path, *args, **kwargs)

    monkeypatch.setattr(store.fs, "rm", crashing_rm)
    with pytest.raises(KeyboardInterrupt):
        compact(store, "polls", DAY)
    assert rows(store) == before  # generation 2 is live, leftovers are ignored
    monkeypatch.setattr(store.fs, "rm", real_rm)
    fill_day(store, 1, first=10)
    expected = rows(store)
    assert len(expected) == len(before) + 3
    compact(store, "polls", DAY)
    assert rows(store) == expected
    assert len(list((tmp_path / "polls" / f"date={DAY}").iterdir())) == 1


def test_a_crash_before_publishing_leaves_the_sources_live(tmp_path: Path, fill_day) -> None:
    store = ParquetStore(str(tmp_path))
    fill_day(store, 5)
    before = rows(store)
    day = tmp_path / "polls" / f"date={DAY}"
    (day / ".compacted-000001.parquet.dead.tmp").write_bytes(b"PAR1 half")
    assert rows(store) == before
    compact(store, "polls", DAY)
    assert rows(store) == before


def test_a_generation_already_published_by_another_compaction_is_not_overwritten(
    tmp_path: Path, fill_day
) -> None:
    store = ParquetStore(str(tmp_path))
    fill_day(store, 3)
    directory = str(tmp_path / "polls" / f"date={DAY}")
    table = store.read_arrow("polls", DAY, DAY)
    assert store.write_file(directory, "compacted-000001.parquet", table, exclusive=True)
    assert store.write_file(directory, "compacted-000001.parquet", table, exclusive=True) is None


def test_compacted_day_reads_like_the_appended_one_column_for_column(
    tmp_path: Path, fill_day
) -> None:
    store = ParquetStore(str(tmp_path))
    fill_day(store, 6)
    before = store.read("polls", DAY, DAY).sort_values(["run_id", "config_id"], ignore_index=True)
    compact(store, "polls", DAY)
    after = store.read("polls", DAY, DAY).sort_values(["run_id", "config_id"], ignore_index=True)
    pd.testing.assert_frame_equal(before, after)


def test_plain_parquet_readers_see_the_compacted_rows_too(tmp_path: Path, fill_day) -> None:
    store = ParquetStore(str(tmp_path))
    fill_day(store, 5)
    compact(store, "polls", DAY)
    frame = pd.read_parquet(tmp_path / "polls")  # pyarrow skips `_`- and `.`-prefixed files
    assert sorted(zip(frame["run_id"], frame["config_id"], strict=True)) == rows(store)


def test_no_run_can_take_a_compacted_file_name(tmp_path: Path, polls_for) -> None:
    store = ParquetStore(str(tmp_path))
    with pytest.raises(ValueError, match="compacted-"):
        store.write("polls", polls_for([START]), "compacted-000001", "c0")


def test_a_dead_compactions_temporary_file_is_cleared_once_an_hour_old(
    tmp_path: Path, fill_day
) -> None:
    store = ParquetStore(str(tmp_path))
    fill_day(store, 3)
    day = tmp_path / "polls" / f"date={DAY}"
    old, fresh = (
        day / ".compacted-000001.parquet.dead.tmp",
        day / ".compacted-000001.parquet.live.tmp",
    )
    for leftover in (old, fresh):
        leftover.write_bytes(b"PAR1 half")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    compact(store, "polls", DAY)
    assert not old.exists() and fresh.exists()
