"""The report, composed: every report table for a range of days, from a history reader.

The engine (`engine.py`: DuckDB running the SQL pieces of `sql/`) reads the history's live
files in place, on two connections to one database at once (`_build`). On a thread, the
second computes the aggregates per number over every poll at once (what needs attention and
the rows that say why, state moves, projects and names) and each number's newest listing.
The first computes the tables over time (availability, quality, incidents, transitions) for a
batch of whole numbers at a time (one batch unless the range holds more than
REPORT_ROWS_PER_BATCH polls rows), then the check pass rates. The engine spills to disk beyond
its memory limit, so its memory is capped however long the range (the finished tables,
numbers x days rows, come on top). pandas takes the results: the projects beside the daily
tables, the roll-ups, the names. The history comes in through `HistoryReader` (the store
satisfies it): this package imports neither Prefect nor the storage layer.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from functools import partial
from math import ceil
from typing import Protocol, TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

from kapso_health.reports import engine
from kapso_health.reports.attention import changes_since, worst_first
from kapso_health.reports.attention_details import (
    CHECK_COLUMNS as ATTENTION_CHECK_COLUMNS,
)
from kapso_health.reports.attention_details import (
    ENTITY_COLUMNS,
    ERROR_COLUMNS,
    FAILING_COLUMNS,
    entity_errors,
    failing_checks,
)
from kapso_health.reports.policy import Policy
from kapso_health.reports.rollup import (
    ATTRIBUTE_COLUMNS,
    latest_attributes,
    number_days,
    rollup_of,
)
from kapso_health.tasks.names import LISTED_COLUMNS, number_names
from kapso_health.tasks.settings import REPORT_ROWS_PER_BATCH


class HistoryReader(Protocol):
    """What the report needs of the history: a table's rows for a range of UTC days. A reader
    that also lists a table's live files (`files(name, start, end)`, as the store does) is read
    in place by the engine, through its fsspec filesystem `fs` when it is not `local`."""

    def read_arrow(
        self,
        name: str,
        start: date | None = None,
        end: date | None = None,
        columns: list[str] | None = None,
        dictionary: bool = False,
    ) -> pa.Table: ...


CHECK_COLUMNS = ["config_id", "polled_at", "checked_at", "check_name", "passed"]
# of the `numbers` table (every listing up to the last day; `newest_listings` keeps each number's
# newest): the roll-ups' and the names' columns
NUMBER_COLUMNS = list(dict.fromkeys(["listed_at", *ATTRIBUTE_COLUMNS, *LISTED_COLUMNS]))
T = TypeVar("T")
READ_ATTEMPTS = 3  # a compaction may replace a file between its listing and its reading


def report_days(day: date | None, to: date | None) -> list[date]:
    """[day, to] inclusive; by default yesterday (UTC)."""
    first = day or (datetime.now(UTC) - timedelta(days=1)).date()
    last = to or first
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def build_reports(
    history: HistoryReader, days: list[date], policy: Policy
) -> dict[str, pd.DataFrame]:
    """Every report table for `days`. A file replaced by a compaction while the report reads
    makes it start again from a fresh listing (each row is read once, never twice)."""
    return _listing_again_if_gone(lambda: _build(history, days, policy))


def _listing_again_if_gone(read: Callable[[], T]) -> T:
    """`read()`, again (it lists the files afresh) when a file it listed was gone."""
    for attempt in range(READ_ATTEMPTS):
        try:
            return read()
        except duckdb.IOException as error:
            if attempt == READ_ATTEMPTS - 1 or not _file_gone(error):
                raise
    raise AssertionError("unreachable")


def _file_gone(error: duckdb.IOException) -> bool:
    """Whether DuckDB failed because a listed file is gone (not a full disk, say)."""
    text = str(error).lower()
    return any(sign in text for sign in ("no files found", "no such file", "not found"))


def _build(history: HistoryReader, days: list[date], policy: Policy) -> dict[str, pd.DataFrame]:
    con = engine.connect()
    try:
        engine.set_parameters(con, policy, days)
        # The aggregates per number on a second connection to the same database (its memory
        # limit shared), meanwhile: a query of a small range keeps neither core busy alone.
        # Then the check pass rates, which need every batch, as pandas takes the rest.
        with ThreadPoolExecutor(1) as pool:
            per_number = pool.submit(
                _per_number, engine.second_connection(con, policy, days), history, days
            )
            tables = _over_time(con, history, days)
            pass_rates = pool.submit(fetch_check_pass_rates, con, history, days)
            tables = _edges(tables | per_number.result())
            tables["check_pass_rates"] = pass_rates.result()
    finally:
        con.close()
    return tables


def _edges(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The engine's tables with what pandas adds: each number's project beside availability
    and quality, the roll-ups, the names."""
    project = tables["observed_names"].set_index("config_id")["project"]
    for name in ("availability_daily", "quality_daily"):
        tables[name].insert(2, "project", tables[name]["config_id"].map(project).astype("string"))
    numbers = tables.pop("newest_listings")
    tables.update(fleet_tables(tables["availability_daily"], tables["quality_daily"], numbers))
    ids = pd.concat([tables[name]["config_id"] for name in NAMED], ignore_index=True)
    observed = tables.pop("observed_names").drop(columns="project").set_index("config_id")
    tables["number_names"] = number_names(ids.astype("string"), observed, numbers)
    return tables


def read_polls(con: duckdb.DuckDBPyConnection, history: HistoryReader, days: list[date]) -> None:
    """`all_polls`: every poll of the days, and of a day either side (observations just before
    or after the range hold into it)."""
    margin = timedelta(days=1)
    first, last = days[0] - margin, days[-1] + margin
    engine.read_history(con, history, "polls", first, last, engine.POLL_COLUMNS, "all_polls")


def _over_time(
    con: duckdb.DuckDBPyConnection, history: HistoryReader, days: list[date]
) -> dict[str, pd.DataFrame]:
    """The tables over time (availability, quality, incidents, transitions), in batches of
    whole numbers; each batch's bodies polled twice go to `repeated`."""
    read_polls(con, history, days)
    enumerate_values(con)
    batches = batch_count(con)
    con.execute("CREATE TEMP TABLE repeated (config_id VARCHAR, checked_us BIGINT)")
    parts = [number_tables(con, batch, batches) for batch in range(batches)]
    return {name: pd.concat([part[name] for part in parts], ignore_index=True) for name in parts[0]}


def fetch_check_pass_rates(
    con: duckdb.DuckDBPyConnection, history: HistoryReader, days: list[date]
) -> pd.DataFrame:
    """The checks of every number at once (one pass over the largest table), told apart by
    the repeated bodies all the batches found (`repeated`)."""
    engine.read_history(con, history, "checks", days[0], days[-1], CHECK_COLUMNS)
    con.execute("CREATE OR REPLACE TEMP VIEW repeated_bodies AS SELECT * FROM repeated")
    return engine.fetch(con, "check_pass_rates", "config_id, day_us, check_name")


def _per_number(
    con: duckdb.DuckDBPyConnection, history: HistoryReader, days: list[date]
) -> dict[str, pd.DataFrame]:
    """On `con` (closed after): what needs attention and why, the changes since the day
    before, each number's project and observed names (`fleet_pieces`), and its newest
    listing."""
    try:
        read_polls(con, history, days)
        read_listings(con, history, days[-1])
        tables = fleet_pieces(con)
        tables["needs_attention"] = worst_first(tables["needs_attention"])
        tables["changes_since_day_before"] = changes_since(tables.pop("state_moves"))
        tables.update(attention_details(con, history, tables["needs_attention"]))
        tables["newest_listings"] = engine.fetch(con, "newest_listings")
        return tables
    finally:
        con.close()


def read_listings(con: duckdb.DuckDBPyConnection, history: HistoryReader, last: date) -> None:
    """`numbers`: every listing of the history up to `last`, one small file a day. Off object
    storage they are fetched whole, concurrently (DuckDB through fsspec sends several requests
    per file, one file at a time); off a local disk the engine reads them in place."""
    if getattr(history, "local", True):
        engine.read_history(con, history, "numbers", None, last, NUMBER_COLUMNS)
    else:
        listings = history.read_arrow("numbers", None, last, NUMBER_COLUMNS, dictionary=True)
        con.register("numbers", listings)


SHARED = (  # read by several tables: computed once per batch, in this order
    "ordered",
    "cadence",  # every piece over `observations` reads it (empty with a fixed max gap)
    "held_daily",  # the pieces, summed per number and day (the pieces are not kept)
    "reported_numbers",
    "transitions",
    "incident_days",
    "repeated_bodies",
)


def fleet_pieces(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """The tables that are aggregates per number, over every poll at once (their memory is
    the numbers', not the polls'): what needs attention, state moves since the day before,
    and each number's project and the names it was last observed with."""
    # `polls`: every poll of the range, as stored (aggregates per number take texts faster
    # than they would cast them to the batches' ENUMS)
    con.execute("CREATE OR REPLACE TEMP VIEW polls AS SELECT * FROM all_polls")
    engine.materialize(con, "newest_known")
    tables = {
        "needs_attention": engine.fetch(con, "needs_attention"),
        "state_moves": engine.fetch(con, "state_moves"),
        "observed_names": engine.fetch(con, "seen_numbers"),
    }
    engine.drop(con, "newest_known")
    return tables


def batch_count(con: duckdb.DuckDBPyConnection) -> int:
    """How many batches of whole numbers the polls of the range (`all_polls`) take, each of
    at most about REPORT_ROWS_PER_BATCH rows."""
    rows = con.execute("SELECT count(*) FROM all_polls").fetchone()[0]
    return max(1, ceil(rows / REPORT_ROWS_PER_BATCH))


# the polls' columns the batches read as ENUM types of the values present: the engine sorts,
# groups, joins and compares them as small integers (texts take a third longer); `fetch` gives
# text back
ENUMS = {
    "config_id": "number_id",
    "quality_rating": "rating_value",
    "can_send_message": "messaging_value",
    "phone_status": "phone_status_value",
}


def enumerate_values(con: duckdb.DuckDBPyConnection) -> None:
    """The ENUMS types, of the values in `all_polls` (in order)."""
    for column, kind in ENUMS.items():
        con.execute(
            f"CREATE TYPE {kind} AS ENUM (SELECT DISTINCT {column} FROM all_polls"
            f" WHERE {column} IS NOT NULL ORDER BY {column})"
        )


def use_batch(con: duckdb.DuckDBPyConnection, batch: int, batches: int) -> None:
    """`polls`: the polls of the numbers of `batch` of `batches` (by a hash of the id), the
    ENUMS columns in their types (see `enumerate_values`)."""
    only = "" if batches == 1 else f" WHERE hash(config_id) % {batches} = {batch}"
    typed = ", ".join(f"CAST({column} AS {kind}) AS {column}" for column, kind in ENUMS.items())
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW polls AS SELECT * REPLACE ({typed}) FROM all_polls{only}"
    )


def number_tables(
    con: duckdb.DuckDBPyConnection, batch: int, batches: int
) -> dict[str, pd.DataFrame]:
    """The per-number tables over time of one batch of whole numbers (`batch` of `batches`, by
    a hash of the id): availability and quality, incidents and transitions on the report's
    days. Its bodies polled twice go to `repeated`."""
    use_batch(con, batch, batches)
    for shared in SHARED:
        engine.materialize(con, shared)
    in_range = "day_us IN (SELECT day_us FROM report_days)"
    tables = {
        "availability_daily": engine.fetch(con, "availability_daily", "config_id, day_us"),
        "quality_daily": engine.fetch(con, "quality_daily", "config_id, day_us"),
        "incidents": engine.fetch(
            con, "incident_days", "config_id, start_us, kind, day_us", in_range
        ),
        "quality_transitions": engine.fetch(
            con, "transitions", "field DESC, config_id, at_us", in_range
        ),
    }
    con.execute("INSERT INTO repeated SELECT * FROM repeated_bodies")
    engine.drop(con, *reversed(SHARED))
    return tables


def fleet_tables(
    availability: pd.DataFrame, quality: pd.DataFrame, numbers: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """Roll-ups per day: the fleet, per Kapso project (from the polls, in `availability`), and
    per customer and per WABA from the `numbers` table."""
    attributes = latest_attributes(numbers)
    merged = number_days(availability, quality)
    return {
        "fleet_daily": rollup_of(merged),
        "project_daily": rollup_of(merged, by="project"),
        "customer_daily": rollup_of(merged, attributes, "customer_id"),
        "waba_daily": rollup_of(merged, attributes, "business_account_id"),
    }


NAMED = ("needs_attention", "changes_since_day_before", "availability_daily", "incidents")


def attention_details(
    con: duckdb.DuckDBPyConnection, history: HistoryReader, attention: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """The failing checks and entity errors of each number needing attention, read from the
    days of those observations only, and of those days only the rows of those observations
    (`attention_rows`; `failing_checks` and `entity_errors` put them in order)."""
    if attention.empty:
        return {
            "attention_checks": pd.DataFrame(columns=FAILING_COLUMNS),
            "attention_entity_errors": pd.DataFrame(columns=ERROR_COLUMNS),
        }
    keys = attention[["config_id", "polled_at"]]
    days = sorted({stamp.date() for stamp in pd.to_datetime(keys["polled_at"], utc=True)})
    con.register("attention_keys", pa.Table.from_pandas(keys, preserve_index=False))
    spans = consecutive_runs(days)
    checks = _attention_rows(con, history, "checks", spans, ATTENTION_CHECK_COLUMNS)
    entities = _attention_rows(con, history, "entities", spans, ENTITY_COLUMNS)
    return {
        "attention_checks": failing_checks(checks, keys),
        "attention_entity_errors": entity_errors(entities, keys),
    }


def _attention_rows(
    con: duckdb.DuckDBPyConnection,
    history: HistoryReader,
    table: str,
    spans: list[tuple[date, date]],
    columns: list[str],
) -> pa.Table:
    """`columns` of the rows of the history's `table` in `spans` (first and last day of each
    run of consecutive days) that `attention_keys` names (listed again when a compaction
    replaced a file meanwhile). Each span is one query: its files are scanned at once, in
    parallel (a day of a small fleet is one row group, which one thread decodes)."""

    def read(first: date, last: date) -> pa.Table:
        engine.read_history(con, history, table, first, last, columns, "day_rows")
        return con.sql(engine.sql("attention_rows")).to_arrow_table()

    found = [_listing_again_if_gone(partial(read, *run)) for run in spans]
    return pa.concat_tables(found)


def consecutive_runs(days: list[date]) -> list[tuple[date, date]]:
    """The sorted `days` as (first, last) of each run of consecutive days."""
    runs: list[tuple[date, date]] = []
    for day in days:
        if runs and day - runs[-1][1] == timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs
