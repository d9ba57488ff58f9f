"""The Parquet store: layout, atomic replacement, partition pruning, drift, bad roots."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kapso_health.tasks.flatten import flatten_polls
from kapso_health.tasks.last_observations import last_observations
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.schemas import DEFAULT_PROJECT, POLLS
from kapso_health.tasks.storage import ParquetStore, StorageError
from kapso_health.tasks.vocabulary import Outcome

NOON = datetime(2025, 3, 1, 12, tzinfo=UTC)


def test_layout_is_hive_by_utc_day_and_round_trips(tmp_path: Path, polls_for) -> None:
    store = ParquetStore(str(tmp_path))
    late, early = NOON.replace(hour=23, minute=59), NOON + timedelta(hours=12, minutes=1)
    written = store.write("polls", polls_for([late, early]), "run-1", "c00000")
    relative = sorted(str(Path(p).relative_to(tmp_path)) for p in written)
    assert relative == [
        "polls/date=2025-03-01/run-1-c00000.parquet",
        "polls/date=2025-03-02/run-1-c00000.parquet",
    ]
    frame = store.read("polls", "2025-03-01", "2025-03-02")
    assert sorted(frame["config_id"]) == ["n0", "n1"]
    assert str(frame["polled_at"].dtype) == "datetime64[us, UTC]"
    assert str(frame["http_status"].dtype) == "Int16"
    assert pq.read_metadata(written[0]).row_group(0).column(0).compression == "ZSTD"


def test_reader_opens_only_the_days_asked_for(tmp_path: Path, polls_for) -> None:
    store = ParquetStore(str(tmp_path))
    for offset in range(5):
        store.write("polls", polls_for([NOON + timedelta(days=offset)]), "run-1", f"c{offset}")
    files = store.files("polls", date(2025, 3, 2), date(2025, 3, 3))
    assert [Path(f).parent.name for f in files] == ["date=2025-03-02", "date=2025-03-03"]
    frame = store.read("polls", date(2025, 3, 2), date(2025, 3, 3))
    assert sorted(frame["polled_at"].dt.day) == [2, 3]


def test_rewriting_a_run_part_replaces_it(tmp_path: Path, polls_for) -> None:
    store = ParquetStore(str(tmp_path))
    store.write("polls", polls_for([NOON, NOON]), "run-1", "c00000")
    store.write("polls", polls_for([NOON], status="degraded"), "run-1", "c00000")
    frame = store.read("polls")
    assert list(frame["status"]) == ["degraded"]
    assert store.run_files("run-1") == store.files("polls")


def test_temporary_and_foreign_files_are_invisible(tmp_path: Path, polls_for) -> None:
    store = ParquetStore(str(tmp_path))
    store.write("polls", polls_for([NOON]), "run-1", "c0")
    day = tmp_path / "polls" / "date=2025-03-01"
    (day / ".run-2-c0.parquet.abc.tmp").write_bytes(b"PAR1 half written")
    (day / "notes.txt").write_text("not data")
    assert len(store.read("polls")) == 1


def test_older_files_missing_new_columns_read_as_null(tmp_path: Path, polls_for) -> None:
    store = ParquetStore(str(tmp_path))
    store.write("polls", polls_for([NOON]), "run-new", "c0")
    old = polls_for([NOON]).drop_columns(["throughput_tier", "passed_token_validity"])
    old_path = tmp_path / "polls" / "date=2025-03-01" / "run-old-c0.parquet"
    pq.write_table(old, old_path)
    frame = store.read("polls")
    assert list(frame.columns) == POLLS.names
    assert frame["throughput_tier"].isna().all() and len(frame) == 2


@pytest.mark.parametrize("dictionary", [False, True])
def test_rows_from_before_projects_read_as_the_default_project(
    tmp_path: Path, dictionary: bool, polls_for
) -> None:
    store = ParquetStore(str(tmp_path))
    results = [PollResult("n1", NOON, Outcome.TIMEOUT)]
    store.write("polls", flatten_polls(results, "run-new", project="acme").polls, "run-new", "c0")
    old = polls_for([NOON]).drop_columns(["project"])
    pq.write_table(old, tmp_path / "polls" / "date=2025-03-01" / "run-old-c0.parquet")
    table = store.read_arrow("polls", columns=["run_id", "project"], dictionary=dictionary)
    projects = dict(zip(*table.to_pydict().values(), strict=True))
    assert {run: str(project) for run, project in projects.items()} == {
        "run-new": "acme",
        "run-1": DEFAULT_PROJECT,
    }


def test_any_fsspec_url_works(tmp_path: Path, polls_for) -> None:
    store = ParquetStore("memory://kapso-test-store")
    store.write("polls", polls_for([NOON]), "run-1", "c0")
    assert list(store.read("polls")["config_id"]) == ["n0"]
    assert store.days("polls") == [date(2025, 3, 1)]


def test_empty_history_reads_as_empty_typed_frame(tmp_path: Path) -> None:
    frame = ParquetStore(str(tmp_path / "nothing")).read("polls", "2025-01-01", "2025-01-02")
    assert frame.empty and list(frame.columns) == POLLS.names


def test_root_that_is_a_file_is_a_clear_error(tmp_path: Path, polls_for) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file, not a directory")
    with pytest.raises(StorageError, match="cannot write"):
        ParquetStore(str(blocker)).write("polls", polls_for([NOON]), "r", "c0")


def test_run_ids_that_could_escape_the_layout_are_refused(tmp_path: Path, polls_for) -> None:
    with pytest.raises(ValueError, match="run id"):
        ParquetStore(str(tmp_path)).write("polls", polls_for([NOON]), "../evil", "c0")


def test_last_observations_take_each_numbers_newest_ok_poll(tmp_path: Path, polls_for) -> None:
    store = ParquetStore(str(tmp_path))
    store.write("polls", polls_for([NOON, NOON]), "run-1", "c0")
    newer = flatten_polls(
        [
            PollResult(
                "n0",
                NOON + timedelta(minutes=15),
                Outcome.OK,
                200,
                1,
                1.0,
                {
                    "status": "healthy",
                    "timestamp": "2025-03-01T12:14:00Z",
                    "retry_after": "2025-03-01T12:19:00Z",
                },
            ),
            PollResult("n1", NOON + timedelta(minutes=15), Outcome.TIMEOUT),
        ],
        "run-2",
    ).polls
    store.write("polls", newer, "run-2", "c0")
    last = {
        row["config_id"]: row
        for row in last_observations(store, NOON + timedelta(minutes=20)).to_pylist()
    }
    assert last["n0"]["checked_at"] == datetime(2025, 3, 1, 12, 14, tzinfo=UTC)
    assert last["n0"]["retry_after"] == datetime(2025, 3, 1, 12, 19, tzinfo=UTC)
    assert last["n1"]["checked_at"] == NOON  # the timeout is not an observation


def test_run_files_belong_to_that_run_only_and_temporaries_are_found(
    tmp_path: Path, polls_for
) -> None:
    store = ParquetStore(str(tmp_path))
    store.write("polls", polls_for([NOON]), "daily", "c00000")
    store.write("polls", polls_for([NOON]), "daily-2", "c00000")
    day = tmp_path / "polls" / "date=2025-03-01"
    (day / ".daily-c00001.parquet.0a1b.tmp").write_bytes(b"PAR1 half")
    (day / ".daily-2-c00001.parquet.0a1c.tmp").write_bytes(b"PAR1 half")
    assert [Path(p).name for p in store.run_files("daily")] == ["daily-c00000.parquet"]
    assert [Path(p).name for p in store.run_files("daily", temporary=True)] == [
        ".daily-c00001.parquet.0a1b.tmp"
    ]
    assert [Path(p).name for p in store.run_files("daily-2", temporary=True)] == [
        ".daily-2-c00001.parquet.0a1c.tmp"
    ]


def test_sent_lately_counts_every_attempt_of_the_last_minute_and_no_skip() -> None:
    import pandas as pd

    from kapso_health.tasks.last_observations import sent_lately

    at = NOON
    polls = pd.DataFrame(
        {
            "polled_at": [at - timedelta(seconds=s) for s in (10, 20, 30, 90)],
            "outcome": ["ok", "timeout", "skipped", "ok"],
            "attempts": [1, 3, 0, 1],
        }
    )
    sent = sent_lately(polls, at)
    assert sorted(sent) == [(at - timedelta(seconds=20)).timestamp()] * 3 + [
        (at - timedelta(seconds=10)).timestamp()
    ]
    assert len(sent_lately(polls.drop(columns="attempts"), at)) == 2  # older files: one each
