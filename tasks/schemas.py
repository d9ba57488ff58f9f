"""The explicit Arrow schema of every stored table (readers and writers both conform to these),
and the one way a table becomes pandas."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

KNOWN_CHECKS = (
    "phone_number_access",
    "phone_number_connection",
    "messaging_health",
    "webhook_subscription",
    "webhook_verified",
    "token_validity",
)

ENTITY_ERROR = pa.struct(
    [
        ("error_code", pa.string()),
        ("error_description", pa.string()),
        ("possible_solution", pa.string()),
    ]
)

# Every row a poll gives starts with these: its run, project, number (both ids) and time.
POLL_KEY = [
    ("run_id", pa.string()),
    ("project", pa.string()),
    ("config_id", pa.string()),
    ("phone_number_id", pa.string()),
    ("polled_at", TIMESTAMP),
]

POLLS = pa.schema(
    [
        *POLL_KEY,
        ("checked_at", TIMESTAMP),
        ("outcome", pa.string()),
        ("http_status", pa.int16()),
        ("attempts", pa.int16()),
        ("latency_ms", pa.float64()),
        ("is_repeat", pa.bool_()),
        ("status", pa.string()),
        ("error", pa.string()),
        ("retry_after", TIMESTAMP),
        ("quality_rating", pa.string()),
        ("verified_name", pa.string()),
        ("display_phone_number", pa.string()),
        ("phone_status", pa.string()),
        ("throughput_tier", pa.string()),
        ("connection_status", pa.string()),
        ("messaging_status", pa.string()),
        ("can_send_message", pa.string()),
        ("webhook_subscribed", pa.bool_()),
        ("webhook_app_id", pa.string()),
        ("webhook_subscribed_fields", pa.list_(pa.string())),
        ("webhook_verified_at", TIMESTAMP),
        ("checks_total", pa.int16()),
        ("checks_failed", pa.int16()),
        *[(f"passed_{name}", pa.bool_()) for name in KNOWN_CHECKS],
    ]
)

CHECKS = pa.schema(
    [
        *POLL_KEY,
        ("checked_at", TIMESTAMP),
        ("check_name", pa.string()),
        ("passed", pa.bool_()),
        ("error", pa.string()),
        ("meta_error_code", pa.int64()),
        ("overall_status", pa.string()),
        ("details", pa.string()),
    ]
)

ENTITIES = pa.schema(
    [
        *POLL_KEY,
        ("checked_at", TIMESTAMP),
        ("entity_type", pa.string()),
        ("entity_id", pa.string()),
        ("can_send_message", pa.string()),
        ("can_receive_call_sip", pa.string()),
        ("additional_info", pa.list_(pa.string())),
        ("errors", pa.list_(ENTITY_ERROR)),
    ]
)

RAW = pa.schema(
    [
        *POLL_KEY,
        ("http_status", pa.int16()),
        ("body", pa.binary()),
    ]
)

NUMBERS = pa.schema(
    [
        ("run_id", pa.string()),
        ("project", pa.string()),
        ("listed_at", TIMESTAMP),
        ("flavour", pa.string()),
        ("config_id", pa.string()),
        ("internal_id", pa.string()),
        ("phone_number_id", pa.string()),
        ("name", pa.string()),
        ("display_name", pa.string()),
        ("display_phone_number", pa.string()),
        ("verified_name", pa.string()),
        ("business_account_id", pa.string()),
        ("customer_id", pa.string()),
        ("is_coexistence", pa.bool_()),
        ("quality_rating", pa.string()),
        ("status", pa.string()),
    ]
)

DEFAULT_PROJECT = "default"  # the project of a single-project run, and of rows from before
# Columns added after files were already written: rows of older files read with this value.
COLUMN_DEFAULTS: dict[str, str] = {"project": DEFAULT_PROJECT}

TABLES: dict[str, pa.Schema] = {
    "polls": POLLS,
    "checks": CHECKS,
    "entities": ENTITIES,
    "raw": RAW,
    "numbers": NUMBERS,
}

_PANDAS_TYPES = {
    pa.string(): pd.StringDtype(),
    pa.bool_(): pd.BooleanDtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.float64(): pd.Float64Dtype(),
}


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow → pandas with nullable dtypes (strings, booleans, integers keep their nulls);
    dictionary-encoded columns (see `read_arrow(dictionary=True)`) come back as their values."""
    decoded = pa.schema(
        [
            field.with_type(field.type.value_type) if pa.types.is_dictionary(field.type) else field
            for field in table.schema
        ]
    )
    return table.cast(decoded).to_pandas(types_mapper=_PANDAS_TYPES.get)
