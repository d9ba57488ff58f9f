"""Ad hoc audit: poll some numbers now and show them as a table, JSON or CSV (no Prefect run, no
storage), worst first, each named by its business name and phone number with its id beside."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa
from rich.table import Table

from kapso_health.tasks.client import KapsoClient
from kapso_health.tasks.fetch import clean_ids, numbers_table, poll_numbers
from kapso_health.tasks.flatten import (
    FlatPolls,
    NumberIds,
    flatten_polls,
    number_ids,
    polled_id_column,
)
from kapso_health.tasks.names import number_names, observed_names
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.schemas import to_pandas
from kapso_health.tasks.settings import ConnectionSettings
from kapso_health.tasks.vocabulary import (
    AVAILABLE,
    DEGRADED_STATUS,
    ERROR,
    HEALTHY,
    UNHEALTHY,
    Outcome,
    rank,
)

FAIL_LEVELS = {UNHEALTHY: UNHEALTHY, DEGRADED_STATUS: DEGRADED_STATUS}  # `--fail-on`, or "never"


@dataclass(frozen=True)
class Audited:
    """The polls of an audit, and the listing when the numbers were discovered."""

    flat: FlatPolls
    listed: pa.Table | None = None


async def audit_numbers(
    settings: ConnectionSettings,
    ids: Sequence[str] | None,
    on_total: Callable[[int], None] | None = None,
    on_result: Callable[[PollResult], None] | None = None,
) -> Audited:
    """Poll `ids` (all listed numbers when None) once, within the same limits as collection."""
    async with KapsoClient(settings) as client:
        flavour = settings.flavour
        known: dict[str, NumberIds] = {}
        listed = None
        if ids:
            numbers = clean_ids(ids)
        else:
            listed = await numbers_table(client, "audit")
            numbers = clean_ids(listed.column(polled_id_column(flavour)).drop_null().to_pylist())
            known = number_ids(listed, flavour)
        if on_total:
            on_total(len(numbers))
        results = await poll_numbers(client, numbers, on_result=on_result)
        client.raise_for_auth()
    return Audited(flatten_polls(results, "audit", flavour=flavour, known_ids=known), listed)


def audit_records(audited: Audited) -> list[dict[str, Any]]:
    """One record per number, worst first: every `polls` field, the number's name fields
    (`name`, `customer_id`, `label`), its failing checks (`check_name, error,
    meta_error_code`) and its entities' errors (Meta's `error_code`, `possible_solution`...)."""
    flat = audited.flat
    listed = None if audited.listed is None else to_pandas(audited.listed)
    polls = to_pandas(flat.polls)
    names = number_names(polls["config_id"], observed_names(polls), listed).set_index("config_id")
    checks = _by_number(flat.checks, ["check_name", "error", "meta_error_code"], _failed)
    errors = _by_number(flat.entities, ["entity_type", "entity_id", "can_send_message"], None)
    records = []
    for row in flat.polls.to_pylist():
        number = row["config_id"]
        named = names.loc[number]
        records.append(
            row
            | {name: _plain(named[name]) for name in ("name", "customer_id", "label")}
            | {"failing_checks": checks.get(number, []), "entity_errors": errors.get(number, [])}
        )
    return sorted(records, key=_severity)


def _failed(row: dict[str, Any]) -> bool:
    return row["passed"] is False or bool(row["error"])


def _by_number(
    table: pa.Table, fields: list[str], keep: Callable[[dict[str, Any]], bool] | None
) -> dict[str, list[dict[str, Any]]]:
    """Per number, the rows `keep` wants (checks) or, for entities, one row per error of an
    entity that has errors or cannot send freely."""
    found: dict[str, list[dict[str, Any]]] = {}
    for row in table.to_pylist():
        if keep is not None:
            if keep(row):
                found.setdefault(row["config_id"], []).append({f: row[f] for f in fields})
            continue
        if not row["errors"] and row["can_send_message"] in (None, AVAILABLE):
            continue
        for error in row["errors"] or [{}]:
            found.setdefault(row["config_id"], []).append(
                {f: row[f] for f in fields}
                | {
                    k: error.get(k)
                    for k in ("error_code", "error_description", "possible_solution")
                }
            )
    return found


def _plain(value: object) -> object:
    """pandas' missing values as None (JSON null, an empty CSV cell)."""
    return None if value is None or value is pd.NA or value != value else value


def fails(records: list[dict[str, Any]], level: str) -> bool:
    """True when a number's status is `level` or worse (`--fail-on`; "never": False)."""
    if level not in FAIL_LEVELS:
        return False
    bar = rank("status", FAIL_LEVELS[level])
    return any(
        (rank("status", r["status"]) or -1) >= bar for r in records if r["outcome"] == Outcome.OK
    )


def audit_table(records: list[dict[str, Any]], width: int | None = None) -> Table:
    """One row per number, worst first, as wide as `width` (the terminal's): the number's name
    and id, status, quality, messaging, failing checks, and the first error (shortened)."""
    table = Table(
        title=f"Kapso health audit: {len(records)} numbers", show_lines=False, width=width
    )
    for column in ("number", "outcome", "status", "quality", "phone", "messaging", "failing"):
        table.add_column(column, overflow="fold")
    table.add_column("error", overflow="ellipsis", no_wrap=True, ratio=1)
    for row in records:
        checks = row["failing_checks"]
        first_error = next((c["error"] for c in checks if c["error"]), None)
        table.add_row(
            row["config_id"] if row["label"] == row["config_id"] else row["label"],
            row["outcome"],
            _styled(row["status"]),
            row["quality_rating"] or "",
            row["phone_status"] or row["connection_status"] or "",
            row["can_send_message"] or "",
            ", ".join(c["check_name"] for c in checks if c["check_name"]),
            row["error"] or first_error or "",
        )
    return table


AUDIT_ORDER = (UNHEALTHY, ERROR, DEGRADED_STATUS, None, HEALTHY)  # None: no body, or another status


def _severity(row: dict) -> tuple[int, str]:
    """Worst first: unhealthy, `error` bodies, degraded, failed polls and others, healthy."""
    status = row["status"] if row["outcome"] == Outcome.OK else None
    return AUDIT_ORDER.index(status if status in AUDIT_ORDER else None), row["config_id"]


def _styled(status: str | None) -> str:
    colour = {HEALTHY: "green", DEGRADED_STATUS: "yellow", UNHEALTHY: "red", ERROR: "magenta"}
    return f"[{colour[status]}]{status}[/]" if status in colour else status or ""
