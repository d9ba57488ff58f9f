"""What one poll of one number produced, before flattening."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kapso_health.tasks.vocabulary import Outcome


@dataclass(slots=True)
class PollResult:
    number_id: str  # as polled: Kapso's config id (legacy) or Meta's phone number id (Platform)
    polled_at: datetime
    outcome: Outcome
    http_status: int | None = None
    attempts: int = 0
    latency_ms: float | None = None
    body: Any = None
    raw: bytes | None = None
    error: str | None = None
    retry_after: datetime | None = None
