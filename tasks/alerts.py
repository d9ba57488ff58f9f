"""A number's state getting worse (or better) between two observations, as Prefect events.

Automations in Prefect match these events to notify people (Slack, email, webhooks):
`kapso.number.worsened` and `kapso.number.recovered`, one per aspect that changed, with the
number as the resource, both states as related resources and everything in the payload.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

TROUBLED_PHONE_STATUS = {"FLAGGED", "RESTRICTED", "DISCONNECTED"}


def _ranked(*values: str) -> Callable[[Any], int | None]:
    order = {value: rank for rank, value in enumerate(values)}
    return order.get


def _phone_status(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    return 1 if value.upper() in TROUBLED_PHONE_STATUS else 0


# aspect -> (polls column, rank of a value: higher is worse; None is not comparable)
ASPECTS: dict[str, tuple[str, Callable[[Any], int | None]]] = {
    "status": ("status", _ranked("healthy", "degraded", "unhealthy")),
    "quality_rating": ("quality_rating", _ranked("GREEN", "YELLOW", "RED")),
    "messaging": ("can_send_message", _ranked("AVAILABLE", "LIMITED", "BLOCKED")),
    "webhook_verified": ("passed_webhook_verified", {True: 0, False: 1}.get),
    "phone_status": ("phone_status", _phone_status),
}
STATE_COLUMNS = [column for column, _ in ASPECTS.values()]


@dataclass(frozen=True)
class StateChange:
    config_id: str
    aspect: str
    before: Any
    after: Any
    worse: bool
    checked_at: datetime | None

    @property
    def event(self) -> str:
        return "kapso.number.worsened" if self.worse else "kapso.number.recovered"


def state_changes(previous: Mapping[str, Mapping[str, Any]], polls: pa.Table) -> list[StateChange]:
    """Every aspect whose rank moved between a number's previous observation and its new one
    in `polls` (new observations only: outcome ok, not a repeat of the same body)."""
    changes = []
    for row in polls.select(
        ["config_id", "outcome", "is_repeat", "checked_at", *STATE_COLUMNS]
    ).to_pylist():
        before = previous.get(row["config_id"])
        if before is None or row["outcome"] != "ok" or row["is_repeat"]:
            continue
        for aspect, (column, rank) in ASPECTS.items():
            old, new = rank(before.get(column)), rank(row[column])
            if old is not None and new is not None and old != new:
                changes.append(
                    StateChange(
                        row["config_id"],
                        aspect,
                        before.get(column),
                        row[column],
                        new > old,
                        row["checked_at"],
                    )
                )
    return changes


def emit_state_changes(changes: Iterable[StateChange]) -> int:
    """One Prefect event per change; returns how many were emitted."""
    from prefect.events import emit_event

    emitted = 0
    for change in changes:
        emit_event(
            event=change.event,
            resource={
                "prefect.resource.id": f"kapso.number.{change.config_id}",
                "prefect.resource.name": change.config_id,
                "kapso.aspect": change.aspect,
            },
            related=[
                {
                    "prefect.resource.id": f"kapso.state.{change.aspect}.{value}",
                    "prefect.resource.role": role,
                    "prefect.resource.name": str(value),
                }
                for role, value in (("from", change.before), ("to", change.after))
            ],
            payload={
                "config_id": change.config_id,
                "aspect": change.aspect,
                "from": change.before,
                "to": change.after,
                "checked_at": change.checked_at.isoformat() if change.checked_at else None,
            },
        )
        emitted += 1
    return emitted
