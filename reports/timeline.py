"""Observations and the time they hold: the base of every daily figure.

An observation is a distinct (`config_id`, `checked_at`) among polls with outcome `ok`
(Kapso's cache repeats a body for 3 minutes: repeats are one observation); a failed or
skipped poll is an observation of an *unknown* state at its `polled_at`. Each observation
holds until the next one of the same number, at most its `max_gap` (see `policy`); beyond that
the time is unknown. Intervals are split at UTC midnight so each piece belongs to one day.

The computations are the engine's SQL pieces (`sql/observed.sql`, `cadence.sql`,
`ordered.sql`, `observations.sql`, `pieces.sql`); these functions run them on pandas frames.
"""

from __future__ import annotations

import pandas as pd

from kapso_health.reports import engine
from kapso_health.reports.policy import DAY, DEFAULT_POLICY, Policy

__all__ = ["DAY", "DEFAULT_POLICY", "Policy", "intervals", "observations"]

OBSERVATION_COLUMNS = [
    "config_id",
    "at",
    "day",
    "state",
    "ok",
    "quality_rating",
    "can_send_message",
    "phone_status",
    "polled",
    "max_gap",
]


def observations(polls: pd.DataFrame, policy: Policy = DEFAULT_POLICY) -> pd.DataFrame:
    """One row per observation, in time order per number (with its `max_gap`); missing
    columns count as unknown."""
    found = engine.run(
        "observations", policy, order="config_id, seq", polls=engine.polls_table(polls)
    )
    return found[OBSERVATION_COLUMNS]


def intervals(obs: pd.DataFrame, policy: Policy = DEFAULT_POLICY) -> pd.DataFrame:
    """Each observation's holding time, split at UTC midnight: one row per (observation, day).

    Columns: the observation's number, time and states, plus `start`, `end`, `seconds`, and
    `day` of the piece. An observation holds at most its `max_gap` (computed from `policy`
    when `obs` lacks it).
    """
    return engine.run_on("pieces", obs, policy, order="config_id, start_us")
