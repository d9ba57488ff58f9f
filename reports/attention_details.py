"""The why of each number needing attention: the failing checks of its newest observation with
Kapso's error text (and Meta's code), and its messaging entities' errors with Meta's
`error_code` and `possible_solution` (Arrow in, small pandas out: a day of checks of a large
fleet is millions of rows, of which a few are wanted)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kapso_health.tasks.schemas import to_pandas
from kapso_health.tasks.vocabulary import AVAILABLE

KEYS = ["config_id", "polled_at"]
CHECK_COLUMNS = [*KEYS, "check_name", "passed", "error", "meta_error_code"]
FAILING_COLUMNS = ["config_id", "check_name", "error", "meta_error_code"]
ENTITY_COLUMNS = [
    *KEYS,
    "entity_type",
    "entity_id",
    "can_send_message",
    "additional_info",
    "errors",
]


def _newest(table: pa.Table, keys: pd.DataFrame) -> pa.Table:
    """The rows of `table` (filtered already) that belong to `keys` (config_id, polled_at), in
    the table's order: those of the keys' numbers and times (vectorised), then of the pairs."""
    if table.num_rows == 0 or keys.empty:
        return table.slice(0, 0)
    ids = keys["config_id"].astype("string")
    micros = pd.to_datetime(keys["polled_at"], utc=True).astype("datetime64[us, UTC]")
    micros = micros.astype("int64")
    config, polled = _keys_of(table)
    near = pc.and_(
        pc.is_in(config, pa.array(ids.unique(), pa.string())),
        pc.is_in(polled, pa.array(micros.unique(), pa.int64())),
    )
    table = table.filter(pc.fill_null(near, False))
    wanted = set(zip(ids, micros, strict=True))
    pairs = zip(*(column.to_pylist() for column in _keys_of(table)), strict=True)
    return table.filter(pa.array([pair in wanted for pair in pairs], pa.bool_()))


def _keys_of(table: pa.Table) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """`config_id` as text and `polled_at` as microseconds since 1970."""
    polled = pc.cast(table["polled_at"], pa.timestamp("us", tz="UTC"))
    return pc.cast(table["config_id"], pa.string()), pc.cast(polled, pa.int64())


def failing_checks(checks: pa.Table, keys: pd.DataFrame) -> pd.DataFrame:
    """config_id, check_name, error, meta_error_code: checks that did not pass (false) or that
    carry an error text, at each number's observation in `keys`."""
    bad = pc.or_kleene(pc.equal(checks["passed"], False), pc.is_valid(checks["error"]))
    found = to_pandas(_newest(checks.filter(pc.fill_null(bad, False)), keys))
    return found.reindex(columns=FAILING_COLUMNS).sort_values(
        ["config_id", "check_name"], kind="stable"
    )


def entity_errors(entities: pa.Table, keys: pd.DataFrame) -> pd.DataFrame:
    """One row per entity error (or per entity not AVAILABLE without one): config_id,
    entity_type, entity_id, can_send_message, error_code, error_description,
    possible_solution, additional_info (text); by number and entity, each entity's errors in
    their order (the rows come in no fixed order)."""
    trouble = pc.or_kleene(
        pc.greater(pc.list_value_length(entities["errors"]), 0),
        pc.not_equal(entities["can_send_message"], AVAILABLE),
    )
    found = _newest(entities.filter(pc.fill_null(trouble, False)), keys).to_pylist()
    rows = []
    for row in found:
        info = "; ".join(row["additional_info"] or [])
        base = {k: row[k] for k in ("config_id", "entity_type", "entity_id", "can_send_message")}
        for error in row["errors"] or [{}]:
            rows.append({**base, **_error_fields(error), "additional_info": info or None})
    errors = pd.DataFrame(rows, columns=ERROR_COLUMNS)
    return errors.sort_values(["config_id", "entity_type", "entity_id"], kind="stable")


ERROR_FIELDS = ("error_code", "error_description", "possible_solution")
ERROR_COLUMNS = [
    "config_id",
    "entity_type",
    "entity_id",
    "can_send_message",
    *ERROR_FIELDS,
    "additional_info",
]


def _error_fields(error: dict) -> dict:
    return {name: error.get(name) for name in ERROR_FIELDS}
