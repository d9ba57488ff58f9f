"""Ad hoc audit: poll some numbers now and show a readable table (no Prefect run, no storage)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.settings import ConnectionSettings
from kapso_health.tasks.vocabulary import DEGRADED_STATUS, ERROR, HEALTHY, UNHEALTHY, Outcome

ERROR_WIDTH = 90


async def audit_numbers(
    settings: ConnectionSettings,
    ids: Sequence[str] | None,
    on_total: Callable[[int], None] | None = None,
    on_result: Callable[[PollResult], None] | None = None,
) -> FlatPolls:
    """Poll `ids` (all listed numbers when None) once, within the same limits as collection."""
    async with KapsoClient(settings) as client:
        flavour = settings.flavour
        known: dict[str, NumberIds] = {}
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
    return flatten_polls(results, "audit", flavour=flavour, known_ids=known)


def audit_table(flat: FlatPolls) -> Table:
    """One row per number, worst first: status, quality, messaging, failing checks, errors."""
    failing, check_errors = _check_problems(flat.checks)
    rows = sorted(flat.polls.to_pylist(), key=_severity)
    table = Table(title=f"Kapso health audit: {len(rows)} numbers", show_lines=False)
    for column in (
        "number",
        "outcome",
        "status",
        "quality",
        "phone",
        "messaging",
        "failing checks",
        "error",
    ):
        table.add_column(column, overflow="fold")
    for row in rows:
        number = row["config_id"]
        table.add_row(
            number,
            row["outcome"],
            _styled(row["status"]),
            row["quality_rating"] or "",
            row["phone_status"] or row["connection_status"] or "",
            row["can_send_message"] or "",
            ", ".join(failing.get(number, [])),
            _short(row["error"] or check_errors.get(number)),
        )
    return table


AUDIT_ORDER = (UNHEALTHY, ERROR, DEGRADED_STATUS, None, HEALTHY)  # None: no body, or another status


def _severity(row: dict) -> tuple[int, str]:
    """Worst first: unhealthy, `error` bodies, degraded, failed polls and others, healthy."""
    status = row["status"] if row["outcome"] == Outcome.OK else None
    return AUDIT_ORDER.index(status if status in AUDIT_ORDER else None), row["config_id"]


def _check_problems(checks: pa.Table) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Per number: the names of failed checks, and the first check error text."""
    failing: dict[str, list[str]] = {}
    first_error: dict[str, str] = {}
    for row in checks.select(["config_id", "check_name", "passed", "error"]).to_pylist():
        if row["passed"] is False:
            failing.setdefault(row["config_id"], []).append(row["check_name"])
        if row["error"]:
            first_error.setdefault(row["config_id"], row["error"])
    return failing, first_error


def _styled(status: str | None) -> str:
    colour = {HEALTHY: "green", DEGRADED_STATUS: "yellow", UNHEALTHY: "red", ERROR: "magenta"}
    return f"[{colour[status]}]{status}[/]" if status in colour else status or ""


def _short(text: str | None) -> str:
    if not text:
        return ""
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 1] + "…"
