"""Daily quality rating and phone status per number: time shares, worst/last, transitions.

The computations are the engine's SQL pieces (`sql/transitions.sql`, `quality_daily.sql`);
these functions run them on pandas frames.
"""

from __future__ import annotations

import pandas as pd

from kapso_health.reports import engine


def transitions(obs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Every change of `column` (`quality_rating` or `phone_status`) between a number's
    consecutive observations that carry it.

    `worse` marks a change the vocabulary ranks as worse (a quality downgrade, a phone status
    turning troubled): the same rule as the `kapso.number.worsened` events.
    """
    found = all_transitions(obs)
    return found[found["field"] == column].reset_index(drop=True)


def all_transitions(obs: pd.DataFrame) -> pd.DataFrame:
    """Quality rating and phone status transitions together (`field` tells them apart)."""
    return engine.run_on("transitions", obs, order="field DESC, config_id, at_us")


def daily_quality(
    obs: pd.DataFrame,
    pieces: pd.DataFrame,
    days: list[pd.Timestamp],
    changes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per number and day: time share per rating (of the time a rating is known),
    worst and last rating, downgrades, phone status changes.

    `changes` is `all_transitions(obs)` when the caller has it already."""
    given = {} if changes is None else {"transitions": engine.table_of(changes, engine.TRANSITION)}
    return engine.run_on(
        "quality_daily",
        obs,
        days=days,
        order="config_id, day_us",
        pieces=engine.table_of(pieces, engine.PIECE),
        **given,
    )
