"""The report's engine: DuckDB runs the SQL pieces of `reports/sql/`, one per step or table.

Each piece is one SELECT over the relations named in `PIECES` (the history's tables, the
parameters below, or earlier pieces). `define` makes a piece and what it reads into views on a
connection; a report reads the history's files in place, and `run` runs a piece on pandas
frames instead (the pure functions of `timeline`, `availability` and `quality` do, so each
piece is testable on its own). Times inside the engine are microseconds since 1970 (UTC) in
columns named `*_us`; `from_engine` turns them back into timestamps at the edge.

Parameters, as tables: `report_policy` (one row: `max_gap_us`, null for the cadence rule;
`cadence_factor`, `low_us`, `high_us`, `degraded_counts_as_up`), `report_days` (`day_us`),
`report_period` (`end_us`: the end of the last day), `report_states` (`status` → `state`) and
`value_ranks` (`field`, `value`, `rank`: the vocabulary's ranks of the values present); and the
type `report_state`, an ENUM of the states observations take (compared and carried as a small
integer).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from functools import cache
from importlib.resources import files
from weakref import WeakKeyDictionary

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from kapso_health.reports.policy import DAY, Policy
from kapso_health.tasks.schemas import DEFAULT_PROJECT, TABLES
from kapso_health.tasks.settings import REPORT_MEMORY_LIMIT
from kapso_health.tasks.vocabulary import (
    ASPECT_OF_COLUMN,
    AVAILABLE,
    BLOCKED,
    DEGRADED,
    DOWN,
    KNOWN_STATES,
    LIMITED,
    MESSAGING,
    RATINGS,
    STATUS_ORDER,
    UNKNOWN,
    UP,
    Outcome,
    rank,
)

DAY_US = int(DAY.total_seconds() * 1_000_000)
RANKED_COLUMNS = ("quality_rating", "phone_status")  # the columns `value_ranks` ranks

# piece -> the relations it reads (parameters and history tables are not pieces)
PIECES: dict[str, tuple[str, ...]] = {
    "observed": ("polls", "report_states"),
    "ordered": ("observed",),
    "cadence": ("ordered", "report_policy"),
    "observations": ("ordered", "cadence", "report_policy"),
    "pieces": ("observations", "report_days"),
    "held_daily": ("pieces", "report_days"),
    "reported_numbers": ("observations", "held_daily", "report_days"),
    "incidents": ("observations",),
    "incident_days": ("incidents",),
    "transitions": ("observations", "value_ranks"),
    "value_ranks": ("ordered",),  # computed in Python from the vocabulary (`rank_values`)
    "availability_daily": (
        "reported_numbers",
        "observations",
        "held_daily",
        "incident_days",
        "report_days",
        "report_policy",
    ),
    "quality_daily": (
        "reported_numbers",
        "observations",
        "held_daily",
        "transitions",
        "value_ranks",
        "report_days",
    ),
    "repeated_bodies": ("observations",),
    "check_pass_rates": ("checks", "repeated_bodies", "report_days"),
    "seen_numbers": ("polls",),
    "newest_listings": ("numbers",),
    "known_observations": ("polls", "report_period"),
    "newest_known": ("known_observations", "report_period"),
    "needs_attention": ("newest_known", "known_observations", "report_period"),
    "state_moves": ("newest_known",),
    "attention_rows": ("day_rows", "attention_keys"),  # some days' checks or entities, by build
}


def sql_literal(value: object) -> str:
    """`value` written in SQL: a quoted text, a number, or a parenthesised list of them."""
    if isinstance(value, tuple | list | frozenset):
        return "(" + ", ".join(sql_literal(item) for item in value) + ")"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def _each_rating(template: str) -> str:
    return ",\n        ".join(
        template.format(value=sql_literal(rating), name=rating.lower()) for rating in RATINGS
    )


@cache
def vocabulary() -> dict[str, str]:
    """The words the SQL uses, as SQL literals, from the one vocabulary."""
    from kapso_health.reports.attention import problems_sql, severity_sql

    words = {
        "OK": Outcome.OK.value,
        "UP": UP,
        "DEGRADED": DEGRADED,
        "DOWN": DOWN,
        "UNKNOWN": UNKNOWN,
        "AVAILABLE": AVAILABLE,
        "LIMITED": LIMITED,
        "BLOCKED": BLOCKED,
        "KNOWN_STATES": KNOWN_STATES,
        "MESSAGING": MESSAGING,
        "STATUS_ORDER": STATUS_ORDER,
        "DEFAULT_PROJECT": DEFAULT_PROJECT,
        "DAY": DAY_US,
    }
    return {name: sql_literal(value) for name, value in words.items()} | {
        "SECONDS_BY_RATING": _each_rating(
            "sum(end_us - start_us) FILTER (WHERE quality_rating = {value}) AS {name}_us"
        ),
        "SHARE_OF_EACH_RATING": _each_rating(
            "coalesce({name}_us, 0) / nullif(rated_us, 0) AS share_{name}"
        ),
        "SEVERITY": severity_sql(),
        "PROBLEMS": problems_sql(),
    }


@cache
def sql(piece: str) -> str:
    """The SELECT of `piece`, its vocabulary filled in."""
    text = files("kapso_health.reports").joinpath("sql", f"{piece}.sql").read_text()
    return text.format_map(vocabulary())


IN_UTC = "SET TimeZone = 'UTC'"  # each connection's own setting


def connect(memory_limit: str = REPORT_MEMORY_LIMIT) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that works in UTC and spills to a temporary directory beyond
    `memory_limit`."""
    con = duckdb.connect()
    con.execute(IN_UTC)
    con.execute(f"SET memory_limit = '{memory_limit}'")
    con.execute(f"SET temp_directory = '{tempfile.gettempdir()}/kapso-health-duckdb'")
    con.execute("SET preserve_insertion_order = false")
    return con


def parameter_tables(policy: Policy, days: Iterable[date | pd.Timestamp]) -> dict[str, pa.Table]:
    """The policy, the days, the period and the states as the parameter tables, by name."""
    low, high = (_micros(bound) for bound in policy.cadence_range)
    fixed = None if policy.max_gap is None else _micros(policy.max_gap)
    stamps = sorted({_midnight_us(day) for day in days})
    end = (stamps[-1] + DAY_US) if stamps else 0
    states = list(policy.states.items())
    return {
        "report_policy": pa.table(
            {
                "max_gap_us": pa.array([fixed], pa.int64()),
                "cadence_factor": [float(policy.cadence_factor)],
                "low_us": [low],
                "high_us": [high],
                "degraded_counts_as_up": [policy.degraded_counts_as_up],
            }
        ),
        "report_days": pa.table({"day_us": pa.array(stamps, pa.int64())}),
        "report_period": pa.table({"end_us": pa.array([end], pa.int64())}),
        "report_states": pa.table(
            {
                "status": pa.array([s for s, _ in states], pa.string()),
                "state": pa.array([t for _, t in states], pa.string()),
            }
        ),
    }


def set_parameters(
    con: duckdb.DuckDBPyConnection, policy: Policy, days: Iterable[date | pd.Timestamp]
) -> None:
    """The parameter tables on `con`, and the type `report_state` in its database."""
    for name, table in parameter_tables(policy, days).items():
        con.register(name, table)
    kinds = dict.fromkeys([*policy.states.values(), UNKNOWN])
    con.execute(f"CREATE TYPE report_state AS ENUM {sql_literal(list(kinds))}")


def second_connection(
    con: duckdb.DuckDBPyConnection, policy: Policy, days: Iterable[date | pd.Timestamp]
) -> duckdb.DuckDBPyConnection:
    """Another connection to `con`'s database, for another thread: the database's types,
    memory limit and filesystems are shared; its own are the time zone (UTC) and the
    relations, so the parameter tables are registered on it too."""
    other = con.cursor()
    other.execute(IN_UTC)
    for name, table in parameter_tables(policy, days).items():
        other.register(name, table)
    return other


def rank_values(con: duckdb.DuckDBPyConnection) -> None:
    """`value_ranks` for the ratings and phone statuses in `ordered`, from the vocabulary's
    `rank` (open sets: only the values present are ranked)."""
    present = con.execute(
        " UNION ".join(
            f"SELECT DISTINCT '{column}', {column} FROM ordered WHERE {column} IS NOT NULL"
            for column in RANKED_COLUMNS
        )
    ).fetchall()
    ranked = [(column, value, rank(ASPECT_OF_COLUMN[column], value)) for column, value in present]
    ranked = [row for row in ranked if row[2] is not None]
    con.register(
        "value_ranks",
        pa.table(
            {
                "field": pa.array([row[0] for row in ranked], pa.string()),
                "value": pa.array([row[1] for row in ranked], pa.string()),
                "rank": pa.array([row[2] for row in ranked], pa.int64()),
            }
        ),
    )


def define(con: duckdb.DuckDBPyConnection, *pieces: str) -> None:
    """`pieces`, and the pieces they read that the connection lacks, as views (a piece's table
    counts only when `materialize` made it)."""
    known = _relations(con)
    for name in _needed(pieces, known):
        if name == "value_ranks":
            rank_values(con)
        elif name in PIECES:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql(name)}")


def materialize(con: duckdb.DuckDBPyConnection, piece: str) -> None:
    """`piece` computed once, into a temporary table of its name (for a piece that several
    others read; views read it by name)."""
    define(con, *PIECES[piece])
    con.execute(f"CREATE TEMP TABLE {piece} AS {sql(piece)}")
    _MATERIALIZED.setdefault(con, set()).add(piece)
    if piece == "ordered":  # this batch's values
        rank_values(con)


def drop(con: duckdb.DuckDBPyConnection, *pieces: str) -> None:
    """Drop the tables `materialize` made of `pieces`."""
    for piece in pieces:
        con.execute(f"DROP TABLE {piece}")
        _MATERIALIZED.get(con, set()).discard(piece)


# the tables `materialize` made, per connection (with a batch's tables present, DuckDB's
# catalog of tables takes ~2 ms to ask, its views a quarter of that)
_MATERIALIZED: WeakKeyDictionary[duckdb.DuckDBPyConnection, set[str]] = WeakKeyDictionary()


def read_history(
    con: duckdb.DuckDBPyConnection,
    history: object,
    table: str,
    start: date,
    end: date,
    columns: list[str],
    name: str | None = None,
) -> None:
    """The view `name` (default `table`): `columns` of the history's `table` for the UTC days
    [start, end]. The live files the history lists are read in place (never a glob: a file a
    compaction has replaced is not listed); a column no file has reads as null. A history that
    lists no files (an in-memory one) gives its Arrow table."""
    name = name or table
    schema = pa.schema([TABLES[table].field(column) for column in columns])
    con.execute(f"DROP VIEW IF EXISTS {name}")  # an earlier read's view would block a register
    lister = getattr(history, "files", None)
    if lister is None:
        con.register(name, history.read_arrow(table, start, end, columns))
        return
    paths = lister(table, start, end)
    if not paths:
        con.register(name, schema.empty_table())
        return
    if any(char in path for path in paths for char in GLOB_CHARACTERS):
        # DuckDB would read such a path as a pattern: hand it these files through Arrow
        exact = [history.fs._strip_protocol(path) for path in paths]
        dataset = ds.dataset(exact, schema=schema, format="parquet", filesystem=history.fs)
        con.register(name, dataset)
        return
    if not getattr(history, "local", True):
        _register(con, history.fs)
    source = (
        f"read_parquet([{', '.join(map(sql_literal, paths))}], union_by_name = true, "
        "hive_partitioning = false)"
    )
    present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
    chosen = ", ".join(
        column
        if column in present
        else f"CAST(NULL AS {_sql_type(con, schema.field(column))}) AS {column}"
        for column in columns
    )
    con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {chosen} FROM {source}")


GLOB_CHARACTERS = "*?[{"


def _register(con: duckdb.DuckDBPyConnection, fs: object) -> None:
    """Let DuckDB read through `fs` (an fsspec filesystem), once per database (its filesystems
    are every connection's: two threads' reads must not both register it)."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    with _REGISTERING:
        if protocol not in con.list_filesystems():
            con.register_filesystem(fs)


_REGISTERING = threading.Lock()


def _sql_type(con: duckdb.DuckDBPyConnection, field: pa.Field) -> str:
    """The engine's type of an Arrow `field`, as SQL (`VARCHAR[]` for a list of texts)."""
    return str(con.from_arrow(pa.schema([field]).empty_table()).types[0])


def _relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The names of the connection's views (registered relations are views) and of the tables
    `materialize` made."""
    rows = con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    return {row[0] for row in rows} | _MATERIALIZED.get(con, set())


def _needed(pieces: Iterable[str], known: set[str]) -> list[str]:
    """The pieces to define for `pieces`, in dependency order (those in `known` skipped)."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name in known or name in order:
            return
        for upstream in PIECES.get(name, ()):
            visit(upstream)
        order.append(name)

    for piece in pieces:
        visit(piece)
    return order


def fetch(
    con: duckdb.DuckDBPyConnection, piece: str, order: str = "", where: str = ""
) -> pd.DataFrame:
    """The rows of `piece` as pandas (times as timestamps, see `from_engine`)."""
    define(con, piece)
    query = f"SELECT * FROM {piece}" + (f" WHERE {where}" if where else "")
    query += f" ORDER BY {order}" if order else ""
    return from_engine(con.sql(query).to_arrow_table())


DURATIONS = {"max_gap_us": "max_gap"}


TEXT_AS_STRING = {pa.string(): pd.StringDtype(), pa.large_string(): pd.StringDtype()}


def from_engine(table: pa.Table) -> pd.DataFrame:
    """Engine rows as pandas: each `x_us` column becomes `x`, a UTC timestamp (a duration for
    `max_gap_us`); text (an ENUM's too) keeps pandas' string dtype, counts stay int64."""
    enums = [i for i, field in enumerate(table.schema) if pa.types.is_dictionary(field.type)]
    for i in enums:
        table = table.set_column(i, table.field(i).name, table.column(i).cast(pa.string()))
    frame = table.to_pandas(types_mapper=TEXT_AS_STRING.get)
    renamed = {}
    for column in frame.columns:
        if column in DURATIONS:
            frame[column] = pd.to_timedelta(frame[column], unit="us")
            renamed[column] = DURATIONS[column]
        elif column.endswith("_us"):
            frame[column] = pd.to_datetime(frame[column], unit="us", utc=True).astype(
                "datetime64[us, UTC]"
            )
            renamed[column] = column.removesuffix("_us")
    return frame.rename(columns=renamed)


def to_engine(frame: pd.DataFrame, times: Iterable[str]) -> pd.DataFrame:
    """The reverse of `from_engine` for the columns `times` (timestamps and durations)."""
    frame = frame.copy()
    reverse = {name: column for column, name in DURATIONS.items()}
    for name in times:
        if name not in frame:
            continue
        if name in reverse:
            micros = pd.to_timedelta(frame[name]).astype("timedelta64[us]").astype("int64")
            frame[reverse[name]] = micros
        else:
            stamps = pd.to_datetime(frame[name], utc=True).astype("datetime64[us, UTC]")
            frame[f"{name}_us"] = stamps.astype("int64")
        frame = frame.drop(columns=name)
    return frame


def run(
    piece: str,
    policy: Policy | None = None,
    days: Iterable[date | pd.Timestamp] = (),
    order: str = "",
    **frames: pa.Table,
) -> pd.DataFrame:
    """`piece` over in-memory relations (`frames`, by the names the SQL reads)."""
    con = connect()
    try:
        set_parameters(con, policy or Policy(), days)
        for name, table in frames.items():
            con.register(name, table)
        return fetch(con, piece, order)
    finally:
        con.close()


POLL_COLUMNS = [
    "config_id",
    "project",
    "polled_at",
    "checked_at",
    "outcome",
    "status",
    "quality_rating",
    "can_send_message",
    "phone_status",
    "passed_webhook_verified",  # the rest for what needs attention, and names
    "verified_name",
    "display_phone_number",
]
TEXT, MICROS = pa.string(), pa.int64()
OBSERVED = pa.schema(
    [
        ("config_id", TEXT),
        ("at_us", MICROS),
        ("day_us", MICROS),
        ("state", TEXT),
        ("ok", pa.bool_()),
        ("quality_rating", TEXT),
        ("can_send_message", TEXT),
        ("phone_status", TEXT),
        ("polled_us", MICROS),
    ]
)
CADENCE = pa.schema([("config_id", TEXT), ("day_us", MICROS), ("max_gap_us", MICROS)])
PIECE = pa.schema(
    [
        ("config_id", TEXT),
        ("at_us", MICROS),
        ("day_us", MICROS),
        ("state", TEXT),
        ("can_send_message", TEXT),
        ("quality_rating", TEXT),
        ("phone_status", TEXT),
        ("start_us", MICROS),
        ("end_us", MICROS),
        ("seconds", pa.float64()),
    ]
)
INCIDENT = pa.schema(
    [
        ("incident_id", TEXT),
        ("kind", TEXT),
        ("config_id", TEXT),
        ("start_us", MICROS),
        ("end_us", MICROS),
        ("ongoing", pa.bool_()),
        ("duration_seconds", pa.float64()),
    ]
)
INCIDENT_DAY = pa.schema([*INCIDENT, ("day_us", MICROS), ("seconds_in_day", pa.float64())])
TRANSITION = pa.schema(
    [
        ("config_id", TEXT),
        ("at_us", MICROS),
        ("day_us", MICROS),
        ("field", TEXT),
        ("from_value", TEXT),
        ("to_value", TEXT),
        ("worse", pa.bool_()),
    ]
)
TIMES = ("at", "day", "start", "end", "polled", "max_gap")


def table_of(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """A pandas frame as an Arrow table in `schema` (timestamps as `*_us`, missing columns
    null)."""
    return _in_schema(to_engine(frame, TIMES), schema)


def polls_table(polls: pd.DataFrame) -> pa.Table:
    """The report's columns of a polls frame, in the stored schema (missing ones null)."""
    return _in_schema(polls, pa.schema([TABLES["polls"].field(name) for name in POLL_COLUMNS]))


def _in_schema(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """`frame` in `schema`; a column it lacks reads as null (None: any type takes it)."""
    missing = {name: None for name in schema.names if name not in frame}
    present = frame.assign(**missing)[schema.names]
    return pa.Table.from_pandas(present, schema=schema, preserve_index=False)


def run_on(
    piece: str,
    obs: pd.DataFrame,
    policy: Policy | None = None,
    days: Iterable[date | pd.Timestamp] = (),
    order: str = "",
    **frames: pa.Table,
) -> pd.DataFrame:
    """`piece` over an observations frame (as `observations` gives, or any with some of its
    columns, in time order per number). Its `max_gap`, when it has one, is how long each
    observation holds; else the policy says."""
    policy = policy or Policy()
    given = {"observed": table_of(obs, OBSERVED)}
    if "max_gap" in obs:  # each number-day's gap, as the cadence piece would give it
        gaps = to_engine(obs[["config_id", "day", "max_gap"]], TIMES)
        gaps = gaps.drop_duplicates(["config_id", "day_us"])
        given["cadence"] = pa.Table.from_pandas(gaps, schema=CADENCE, preserve_index=False)
        policy = replace(policy, max_gap=None)
    return run(piece, policy, days, order, **given, **frames)


def _micros(span: object) -> int:
    return int(pd.Timedelta(span) / pd.Timedelta(microseconds=1))


def _midnight_us(day: date | pd.Timestamp) -> int:
    stamp = pd.Timestamp(day)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.floor("D").value // 1000)
