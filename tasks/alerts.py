"""A number's state getting worse (or better) between two observations, as Prefect events.

Automations in Prefect match these events to notify people (Slack, email, webhooks):
`kapso.number.worsened` and `kapso.number.recovered`, one per aspect that changed, with the
number as the resource, both states as related resources and everything in the payload.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from kapso_health.tasks.names import POLL_NAME_COLUMNS, label
from kapso_health.tasks.vocabulary import ASPECTS, STATE_COLUMNS, Outcome, worse


@dataclass(frozen=True)
class StateChange:
    config_id: str
    aspect: str
    before: Any
    after: Any
    worse: bool
    checked_at: datetime | None
    name: str | None = None  # business (verified) name, display phone number, customer:
    display_phone_number: str | None = None  # where known (see tasks/names.py)
    customer_id: str | None = None

    @property
    def label(self) -> str:
        return label(self.config_id, self.name, self.display_phone_number, self.customer_id)

    @property
    def event(self) -> str:
        return "kapso.number.worsened" if self.worse else "kapso.number.recovered"


def state_changes(
    previous: Mapping[str, Mapping[str, Any]],
    polls: pa.Table,
    customers: Mapping[str, str | None] | None = None,
) -> list[StateChange]:
    """Every aspect whose rank moved between a number's previous observation and its new one
    in `polls` (new observations only: outcome ok, not a repeat of the same body), with the
    number's name and phone (from the new observation, else the previous one) and customer."""
    changes = []
    customers = customers or {}
    names = [c for c in POLL_NAME_COLUMNS if c in polls.column_names]
    for row in polls.select(
        ["config_id", "outcome", "is_repeat", "checked_at", *STATE_COLUMNS, *names]
    ).to_pylist():
        before = previous.get(row["config_id"])
        if before is None or row["outcome"] != Outcome.OK or row["is_repeat"]:
            continue
        for aspect, (column, _) in ASPECTS.items():
            old, new = before.get(column), row[column]
            direction = worse(aspect, old, new)
            if direction is not None:
                named = [row.get(c) or before.get(c) for c in POLL_NAME_COLUMNS]
                changes.append(
                    StateChange(
                        row["config_id"],
                        aspect,
                        old,
                        new,
                        direction,
                        row["checked_at"],
                        *named,
                        customers.get(row["config_id"]),
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
                "prefect.resource.name": change.label,
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
                "number": change.label,
                "name": change.name,
                "display_phone_number": change.display_phone_number,
                "customer_id": change.customer_id,
                "aspect": change.aspect,
                "from": change.before,
                "to": change.after,
                "checked_at": change.checked_at.isoformat() if change.checked_at else None,
            },
        )
        emitted += 1
    return emitted
