"""The domain's words, once: health statuses, ratings, messaging states, phone statuses, poll
outcomes and report states, with their order of badness. Alerts, reports, the audit, the
planner and the notebook import these; nothing else spells them out.

Every Kapso enum is an open set: a value not listed here is kept as text and is not ranked.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

# Kapso's overall `status` of a health body. `error` means the check itself could not run:
# it says nothing about the number, so it is not ranked.
HEALTHY, DEGRADED_STATUS, UNHEALTHY, ERROR = "healthy", "degraded", "unhealthy", "error"
STATUS_ORDER = (HEALTHY, DEGRADED_STATUS, UNHEALTHY)  # best first
TROUBLED_STATUSES = (DEGRADED_STATUS, UNHEALTHY)

# Meta's quality rating: NA (not yet rated) and UNKNOWN are ratings, but not ranked.
RATINGS = ("GREEN", "YELLOW", "RED", "NA", "UNKNOWN")
RATING_ORDER = ("GREEN", "YELLOW", "RED")  # best first
WORST_RATING = RATING_ORDER[-1]

# `can_send_message` of messaging_health and of each entity (Meta's rule: any BLOCKED →
# BLOCKED, else any LIMITED → LIMITED, else AVAILABLE).
MESSAGING = ("AVAILABLE", "LIMITED", "BLOCKED")  # best first
AVAILABLE, LIMITED, BLOCKED = MESSAGING
TROUBLED_MESSAGING = ("LIMITED", "BLOCKED")

# Phone statuses in which the number cannot work normally; any other status is fine.
TROUBLED_PHONE_STATUSES = frozenset(
    {"FLAGGED", "RESTRICTED", "DISCONNECTED", "BANNED", "RATE_LIMITED", "OFFLINE"}
)

# The report's view of a status: up, degraded, down, or unknown (failed polls, `error`
# bodies, statuses not listed here).
UP, DEGRADED, DOWN, UNKNOWN = "up", "degraded", "down", "unknown"
KNOWN_STATES = (UP, DEGRADED, DOWN)
REPORT_STATES = {HEALTHY: UP, DEGRADED_STATUS: DEGRADED, UNHEALTHY: DOWN, ERROR: UNKNOWN}


class Outcome(StrEnum):
    """How a poll ended. `ok` means a health body arrived, whatever its `status`."""

    OK = "ok"
    NOT_FOUND = "not_found"
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION_ERROR = "connection_error"
    INVALID_BODY = "invalid_body"
    SKIPPED = "skipped"


def _order(values: tuple[str, ...]) -> Callable[[Any], int | None]:
    ranks = {value: rank for rank, value in enumerate(values)}
    return lambda value: ranks.get(value) if isinstance(value, str) else None


def _phone_status_rank(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    return 1 if value.upper() in TROUBLED_PHONE_STATUSES else 0


def _webhook_verified_rank(value: Any) -> int | None:
    return {True: 0, False: 1}.get(value) if isinstance(value, bool) else None


# aspect -> (the `polls` column that holds it, rank of a value: higher is worse, None unranked)
ASPECTS: dict[str, tuple[str, Callable[[Any], int | None]]] = {
    "status": ("status", _order(STATUS_ORDER)),
    "quality_rating": ("quality_rating", _order(RATING_ORDER)),
    "messaging": ("can_send_message", _order(MESSAGING)),
    "webhook_verified": ("passed_webhook_verified", _webhook_verified_rank),
    "phone_status": ("phone_status", _phone_status_rank),
}
ASPECT_OF_COLUMN = {column: aspect for aspect, (column, _) in ASPECTS.items()}
STATE_COLUMNS = list(ASPECT_OF_COLUMN)  # the `polls` columns that hold a number's state


def rank(aspect: str, value: Any) -> int | None:
    """How bad `value` is for `aspect` (0 is fine; higher is worse); None when not ranked."""
    return ASPECTS[aspect][1](value)


def worse(aspect: str, before: Any, after: Any) -> bool | None:
    """True when `before` → `after` is a worsening of `aspect`, False when a recovery; None
    when the rank did not move or either value is not ranked."""
    old, new = rank(aspect, before), rank(aspect, after)
    if old is None or new is None or old == new:
        return None
    return new > old
