"""How the report counts: the policy (statuses, holding time) every report figure follows.

An observation holds until the next one of the same number, at most `max_gap`; beyond that the
time is unknown. `max_gap` is either fixed (`Policy(max_gap=timedelta(...))`, the pure default:
30 minutes) or, with `Policy(max_gap=None)`, each number's own cadence per day:
`cadence_factor` x the time-weighted median interval between its observations that day and the
day before (the interval a moment of those two days falls in: a spell of closer polls, as a
rolling collection makes while it watches a number, does not shorten it), clamped to
`cadence_range`; a number-day with no such interval (fewer than two observations over the two
days) gets the range's lower bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import pandas as pd

from kapso_health.tasks.settings import (
    CADENCE_GAP_FACTOR,
    CADENCE_GAP_MAX_MINUTES,
    CADENCE_GAP_MIN_MINUTES,
    MAX_GAP_MINUTES,
)
from kapso_health.tasks.vocabulary import REPORT_STATES

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Policy:
    """How statuses count, and how long an observation holds. `max_gap=None` is the README's
    default (each number's cadence; the flow and the command line use it); `Policy()` keeps a
    fixed 30 minutes, which hand-worked examples rely on."""

    states: dict[str, str] = field(default_factory=lambda: dict(REPORT_STATES))
    degraded_counts_as_up: bool = True
    max_gap: timedelta | None = timedelta(minutes=MAX_GAP_MINUTES)  # None: per-number cadence
    cadence_factor: float = CADENCE_GAP_FACTOR
    cadence_range: tuple[timedelta, timedelta] = (
        timedelta(minutes=CADENCE_GAP_MIN_MINUTES),
        timedelta(minutes=CADENCE_GAP_MAX_MINUTES),
    )

    def gap_rule(self) -> str:
        """How long an observation holds, in words (for the page and the artifacts)."""
        if self.max_gap is not None:
            return f"a fixed {_duration(self.max_gap)} (max gap set explicitly)"
        low, high = self.cadence_range
        return (
            f"each number's own cadence: {self.cadence_factor:g} x its time-weighted median "
            "interval between observations that day and the day before, within "
            f"{_duration(low)} to {_duration(high)} ({_duration(low)} without two observations "
            "to measure)"
        )


def _duration(span: timedelta) -> str:
    minutes = span.total_seconds() / 60
    if minutes >= 120 and minutes % 60 == 0:
        return f"{minutes / 60:g} h"
    return f"{minutes:g} min"


DEFAULT_POLICY = Policy()
