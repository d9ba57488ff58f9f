"""What one poll of one number produced, before flattening."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


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


@dataclass(slots=True)
class PollResult:
    config_id: str
    polled_at: datetime
    outcome: Outcome
    http_status: int | None = None
    attempts: int = 0
    latency_ms: float | None = None
    body: Any = None
    raw: bytes | None = None
    error: str | None = None
    retry_after: datetime | None = None
