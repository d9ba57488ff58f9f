"""Pure functions that turn poll results and list items into typed Arrow tables.

Every body gives rows, whatever its shape: unknown checks and enum values are kept as text,
fields of the wrong type become null, and nothing here raises on a body (the raw bytes are
stored beside). Rows are gathered as tuples and converted column by column: Arrow converts a
well-typed column in C, and only a column holding odd values falls back to per-value coercion.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from kapso_health.tasks import schemas
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.vocabulary import Outcome

META_ERROR_CODE = re.compile(r'"code"\s*(?:=>|:)\s*(\d{1,18})')
_EMPTY: dict = {}
_PARENT_COLUMNS = (*(name for name, _ in schemas.POLL_KEY), "checked_at")
_NO_IDS: tuple[None, None] = (None, None)
NumberIds = tuple[str | None, str | None]  # (Kapso's config id, Meta's phone number id)


@dataclass(frozen=True, slots=True)
class FlatPolls:
    """The four tables one batch of polls becomes."""

    polls: pa.Table
    checks: pa.Table
    entities: pa.Table
    raw: pa.Table

    def tables(self) -> dict[str, pa.Table]:
        names = ("polls", "checks", "entities", "raw")
        return {name: getattr(self, name) for name in names}


def flatten_polls(
    results: Sequence[PollResult],
    run_id: str,
    previous_checked_at: Mapping[str, datetime] | None = None,
    flavour: str = "legacy",
    known_ids: Mapping[str, NumberIds] | None = None,
    project: str = schemas.DEFAULT_PROJECT,
) -> FlatPolls:
    """Flatten poll results; a body whose (number, `timestamp`) was already seen is a repeat.

    Every row carries both ids of its number: `config_id` (Kapso's) and `phone_number_id`
    (Meta's, the column to join on across flavours). The polled id is one of them (per
    `flavour`); the other comes from the body or from `known_ids` (see `number_ids`). A
    Platform number whose config id is unknown keeps its phone number id as `config_id`.
    """
    with _gc_paused():
        return _flatten(
            results, run_id, previous_checked_at or {}, flavour, known_ids or {}, project
        )


def _flatten(
    results: Sequence[PollResult],
    run_id: str,
    previous_checked_at: Mapping[str, datetime],
    flavour: str,
    known_ids: Mapping[str, NumberIds],
    project: str,
) -> FlatPolls:
    poll_rows: list[dict] = []
    check_rows: list[tuple] = []
    entity_rows: list[tuple] = []
    for index, result in enumerate(results):
        body = result.body
        if result.outcome is Outcome.OK and type(body) is dict:
            checks = body.get("checks")
            checks = checks if type(checks) is dict else _EMPTY
            row = _ok_poll_row(result, body, checks)
            _add_check_rows(check_rows, entity_rows, index, checks)
        else:
            row = _other_poll_row(result)
        config_id, phone_number_id = known_ids.get(result.number_id, _NO_IDS)
        if flavour == "platform":
            row["config_id"] = config_id or result.number_id
            row["phone_number_id"] = result.number_id
        else:
            row["config_id"] = result.number_id
            row["phone_number_id"] = row.get("phone_number_id") or phone_number_id
        poll_rows.append(row)
    polls = _poll_table(poll_rows, run_id, project, previous_checked_at)
    return FlatPolls(
        polls=polls,
        checks=_child_table(check_rows, polls, schemas.CHECKS, _CHECK_CONVERTERS),
        entities=_child_table(entity_rows, polls, schemas.ENTITIES, _ENTITY_CONVERTERS),
        raw=_raw_table(results, polls),
    )


def flatten_numbers(
    items: Iterable[Mapping[str, Any]],
    flavour: str,
    run_id: str,
    listed_at: datetime,
    project: str = schemas.DEFAULT_PROJECT,
) -> pa.Table:
    """Flatten list-endpoint items into the `numbers` dimension table (ids kept as text):
    `config_id` is Kapso's config id and `phone_number_id` Meta's, in both flavours."""
    platform = flavour == "platform"
    rows = []
    for item in items:
        config_id = item.get("internal_id") if platform else item.get("id")
        fixed = {
            "run_id": run_id,
            "project": project,
            "listed_at": listed_at,
            "flavour": flavour,
            "config_id": config_id,
            "internal_id": config_id,
            "phone_number_id": item.get("id") if platform else item.get("phone_number_id"),
        }
        rows.append(tuple(fixed.get(name, item.get(name)) for name in schemas.NUMBERS.names))
    return _typed_table(rows, schemas.NUMBERS, {})


def polled_id_column(flavour: str) -> str:
    """The `numbers` column holding the id a flavour's health endpoint takes."""
    return "phone_number_id" if flavour == "platform" else "config_id"


def number_ids(numbers: pa.Table, flavour: str) -> dict[str, NumberIds]:
    """Polled id → (config id, phone number id), from `numbers` rows (newest last wins)."""
    polled = numbers.column(polled_id_column(flavour)).to_pylist()
    pairs = zip(
        numbers.column("config_id").to_pylist(),
        numbers.column("phone_number_id").to_pylist(),
        strict=True,
    )
    return {number: ids for number, ids in zip(polled, pairs, strict=True) if number}


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC: the row tuples hold no cycles, yet their numbers set off full scans."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def meta_error_code(text: str | None) -> int | None:
    """Meta's error code embedded in a check's error text (JSON or Ruby-hash style), if any."""
    if not text:
        return None
    match = META_ERROR_CODE.search(text)
    return int(match.group(1)) if match else None


def body_error(body: Any) -> str | None:
    """The `error` of a body, whether a string or an object with a `message`."""
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    if isinstance(error, dict) and error.get("message") is not None:
        return _text(error["message"])
    return _text(error)


def _ok_poll_row(result: PollResult, body: dict, checks: dict) -> dict[str, Any]:
    """A `polls` row (by column name) of a poll that brought a health body."""
    access = _details(checks.get("phone_number_access"))
    messaging = checks.get("messaging_health")
    messaging = messaging if type(messaging) is dict else _EMPTY
    messaging_details = _details(messaging)
    webhook = _details(checks.get("webhook_subscription"))
    passed = [_passed(check) for check in checks.values()]
    return {
        "polled_at": result.polled_at,
        "checked_at": body.get("timestamp"),
        "outcome": Outcome.OK.value,
        "http_status": result.http_status,
        "attempts": result.attempts,
        "latency_ms": result.latency_ms,
        "status": body.get("status"),
        "error": body_error(body),
        "retry_after": body.get("retry_after"),
        "quality_rating": access.get("quality_rating"),
        "verified_name": access.get("verified_name"),
        "display_phone_number": access.get("display_phone_number"),
        "phone_number_id": access.get("id"),
        "phone_status": access.get("status"),
        "throughput_tier": access.get("throughput_tier"),
        "connection_status": _details(checks.get("phone_number_connection")).get("status"),
        "messaging_status": messaging.get("overall_status")
        or messaging_details.get("overall_status"),
        "can_send_message": messaging_details.get("can_send_message"),
        "webhook_subscribed": webhook.get("subscribed"),
        "webhook_app_id": webhook.get("app_id"),
        "webhook_subscribed_fields": webhook.get("subscribed_fields"),
        "webhook_verified_at": _details(checks.get("webhook_verified")).get("verified_at"),
        "checks_total": len(checks),
        "checks_failed": sum(1 for value in passed if value is False),
        **{
            f"passed_{name}": _passed(checks[name])
            for name in schemas.KNOWN_CHECKS
            if name in checks
        },
    }


def _other_poll_row(result: PollResult) -> dict[str, Any]:
    """A poll with no health body: failed, skipped, or an `ok` whose body is not an object."""
    ok = result.outcome is Outcome.OK
    return {
        "polled_at": result.polled_at,
        "outcome": result.outcome.value,
        "http_status": result.http_status,
        "attempts": result.attempts,
        "latency_ms": result.latency_ms,
        "error": result.error,
        "retry_after": result.retry_after,
        "checks_total": 0 if ok else None,
        "checks_failed": 0 if ok else None,
    }


def _add_check_rows(check_rows: list, entity_rows: list, parent: int, checks: dict) -> None:
    for name, check in checks.items():
        if type(check) is not dict:
            check_rows.append((parent, name, None, None, None, None, check))
            continue
        details = check.get("details")
        error = check.get("error")
        code = meta_error_code(error) if type(error) is str else None
        check_rows.append(
            (parent, name, check.get("passed"), error, code, check.get("overall_status"), details)
        )
        if name == "messaging_health" and type(details) is dict:
            entities = details.get("entities")
            if type(entities) is list:
                for entity in entities:
                    entity_rows.append(_entity_row(parent, entity))


def _entity_row(parent: int, entity: Any) -> tuple:
    if type(entity) is not dict:
        return (parent, None, None, None, None, entity, None)
    return (
        parent,
        entity.get("entity_type"),
        entity.get("id"),
        entity.get("can_send_message"),
        entity.get("can_receive_call_sip"),
        entity.get("additional_info"),
        entity.get("errors"),
    )


def _poll_table(
    rows: list[dict], run_id: str, project: str, previous: Mapping[str, datetime]
) -> pa.Table:
    columns = {name: [row.get(name) for row in rows] for name in _POLL_ROW_FIELDS}
    arrays = {
        name: _convert(values, schemas.POLLS.field(name).type, _POLL_CONVERTERS.get(name))
        for name, values in columns.items()
    }
    arrays["run_id"] = pa.repeat(pa.scalar(run_id, pa.string()), len(rows))
    arrays["project"] = pa.repeat(pa.scalar(project, pa.string()), len(rows))
    arrays["is_repeat"] = _repeats(columns["config_id"], arrays["checked_at"], previous)
    return pa.Table.from_arrays(
        [arrays[name] for name in schemas.POLLS.names], schema=schemas.POLLS
    )


def _child_table(
    rows: list[tuple], polls: pa.Table, schema: pa.Schema, converters: dict[str, Callable]
) -> pa.Table:
    own = [name for name in schema.names if name not in _PARENT_COLUMNS]
    parent, *columns = _transpose(rows, 1 + len(own))
    parent_index = pa.array(parent, pa.int64())
    arrays = {name: polls.column(name).take(parent_index) for name in _PARENT_COLUMNS}
    for name, values in zip(own, columns, strict=True):
        arrays[name] = _convert(values, schema.field(name).type, converters.get(name))
    return pa.Table.from_arrays([arrays[name] for name in schema.names], schema=schema)


def _raw_table(results: Sequence[PollResult], polls: pa.Table) -> pa.Table:
    arrays = {name: polls.column(name) for name in _PARENT_COLUMNS if name != "checked_at"}
    arrays["http_status"] = polls.column("http_status")
    arrays["body"] = pa.array([r.raw for r in results], pa.binary())
    return pa.table([arrays[name] for name in schemas.RAW.names], schema=schemas.RAW)


def _typed_table(rows: list[tuple], schema: pa.Schema, converters: dict[str, Callable]) -> pa.Table:
    columns = _transpose(rows, len(schema))
    arrays = [
        _convert(values, field.type, converters.get(field.name))
        for field, values in zip(schema, columns, strict=True)
    ]
    return pa.Table.from_arrays(arrays, schema=schema)


def _transpose(rows: list[tuple], width: int) -> list[list]:
    return [[row[i] for row in rows] for i in range(width)]


def _convert(values: Sequence, type_: pa.DataType, converter: Callable | None = None) -> pa.Array:
    """Values to an Arrow array: in C when they already fit, else coerced one by one."""
    if converter is not None:
        values = [converter(value) for value in values]
    if type_ == schemas.TIMESTAMP:
        return _timestamps(values)
    try:
        return pa.array(values, type_)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        coerce = _COERCE[type_]
        return pa.array([coerce(value) for value in values], type_)


def _repeats(config_ids: Sequence[str], checked_at: pa.Array, previous: Mapping) -> pa.Array:
    """True where a number's `checked_at` equals the one last seen for it (Kapso's cache)."""
    if not previous:
        return pa.repeat(pa.scalar(False), len(config_ids))
    before = pa.array([previous.get(config_id) for config_id in config_ids], schemas.TIMESTAMP)
    return pc.fill_null(pc.equal(checked_at, before), False)


def _details(check: Any) -> dict:
    if type(check) is not dict:
        return _EMPTY
    details = check.get("details")
    return details if type(details) is dict else _EMPTY


def _passed(check: Any) -> Any:
    return check.get("passed") if type(check) is dict else None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return _json(value)


def _texts(value: Any) -> list[str | None] | None:
    if value is None:
        return None
    return [_text(item) for item in value] if isinstance(value, list) else [_text(value)]


def _list(value: Any) -> list | None:
    """Lists pass as they are (Arrow would read a bare string as a list of characters)."""
    return value if value is None or type(value) is list else _texts(value)


def _small_int(value: Any) -> int | None:
    return value if type(value) is int and -(2**15) <= value < 2**15 else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _timestamp(value: Any) -> datetime | None:
    """UTC from a datetime or ISO-8601 text (naive means UTC); anything else is null."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _timestamps(values: Sequence) -> pa.Array:
    """ISO-8601 text is cast in C, datetimes converted in C; anything else value by value."""
    try:
        return pa.array(values, pa.string()).cast(schemas.TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    if all(value is None or isinstance(value, datetime) for value in values):
        return pa.array(values, schemas.TIMESTAMP)
    return pa.array([_timestamp(value) for value in values], schemas.TIMESTAMP)


def _details_json(value: Any) -> str | None:
    return None if value is None else _json(value)


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # integers beyond 64 bits
        return json.dumps(value, sort_keys=True)


def _entity_errors(value: Any) -> list[dict[str, str | None]] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    return [
        {
            "error_code": _text(item.get("error_code")),
            "error_description": _text(item.get("error_description")),
            "possible_solution": _text(item.get("possible_solution")),
        }
        if isinstance(item, dict)
        else {"error_code": None, "error_description": _text(item), "possible_solution": None}
        for item in items
    ]


_COERCE: dict[pa.DataType, Callable[[Any], Any]] = {
    pa.string(): _text,
    pa.bool_(): _flag,
    pa.int16(): _small_int,
    pa.int64(): lambda value: value if type(value) is int and abs(value) < 2**63 else None,
    pa.float64(): _number,
    pa.binary(): lambda value: value if isinstance(value, bytes) else None,
    pa.list_(pa.string()): _texts,
}

_POLL_ROW_FIELDS = tuple(
    name for name in schemas.POLLS.names if name not in ("run_id", "project", "is_repeat")
)
_POLL_CONVERTERS: dict[str, Callable] = {"webhook_subscribed_fields": _list}
_CHECK_CONVERTERS: dict[str, Callable] = {"details": _details_json}
_ENTITY_CONVERTERS: dict[str, Callable] = {"additional_info": _list, "errors": _entity_errors}
