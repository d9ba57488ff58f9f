"""Daily quality rating and phone status per number: time shares, worst/last, transitions."""

from __future__ import annotations

import pandas as pd

from kapso_health.tasks.vocabulary import ASPECT_OF_COLUMN, RATINGS, rank, worse
from tests.reports.reference.timeline import reported_numbers


def transitions(obs: pd.DataFrame, column: str) -> pd.DataFrame:
    """Every change of `column` between a number's consecutive observations that carry it.

    `worse` marks a change the vocabulary ranks as worse (a quality downgrade, a phone status
    turning troubled): the same rule as the `kapso.number.worsened` events.
    """
    known = obs[obs[column].notna()]
    before = known.groupby("config_id")[column].shift()
    changed = known[before.notna() & known[column].ne(before)]
    result = pd.DataFrame(
        {
            "config_id": changed["config_id"],
            "at": changed["at"],
            "day": changed["day"],
            "field": column,
            "from_value": before[changed.index],
            "to_value": changed[column],
        }
    )
    aspect = ASPECT_OF_COLUMN[column]
    got_worse = [
        worse(aspect, before, after) is True
        for before, after in zip(result["from_value"], result["to_value"], strict=True)
    ]
    return result.assign(worse=pd.Series(got_worse, index=result.index, dtype=bool)).reset_index(
        drop=True
    )


def all_transitions(obs: pd.DataFrame) -> pd.DataFrame:
    """Quality rating and phone status transitions together (`field` tells them apart)."""
    return pd.concat(
        [transitions(obs, "quality_rating"), transitions(obs, "phone_status")], ignore_index=True
    )


def daily_quality(
    obs: pd.DataFrame,
    pieces: pd.DataFrame,
    days: list[pd.Timestamp],
    changes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per number and day: time share per rating (of the time a rating is known),
    worst and last rating, downgrades, phone status changes.

    `changes` is `all_transitions(obs)` when the caller has it already."""
    numbers = reported_numbers(obs, pieces, days)
    grid = pd.MultiIndex.from_product([numbers, pd.DatetimeIndex(days, name="day")])
    rated = pieces[pieces["quality_rating"].notna()]
    seconds = rated.groupby(["config_id", "day", "quality_rating"])["seconds"].sum().unstack()
    seconds = seconds.reindex(index=grid, columns=list(RATINGS)).fillna(0.0)
    total = rated.groupby(["config_id", "day"])["seconds"].sum().reindex(grid).fillna(0.0)
    table = pd.DataFrame(index=grid)
    for rating in RATINGS:
        table[f"share_{rating.lower()}"] = (seconds[rating] / total).where(total > 0)
    observed = obs[obs["quality_rating"].notna()]
    ranks = {rating: rank("quality_rating", rating) for rating in RATINGS}
    ranked = observed.assign(rank=observed["quality_rating"].map(ranks)).dropna(subset=["rank"])
    worst = ranked.sort_values("rank").groupby(["config_id", "day"])["quality_rating"].last()
    table["worst_rating"] = worst.reindex(grid)
    table["last_rating"] = (
        observed.groupby(["config_id", "day"])["quality_rating"].last().reindex(grid)
    )
    if changes is None:
        changes = all_transitions(obs)
    ratings = changes[changes["field"] == "quality_rating"]
    per_day = ratings.groupby(["config_id", "day"])
    table["rating_changes"] = per_day.size().reindex(grid, fill_value=0).astype("int64")
    table["downgrades"] = per_day["worse"].sum().reindex(grid, fill_value=0).astype("int64")
    status_changes = changes[changes["field"] == "phone_status"].groupby(["config_id", "day"])
    table["phone_status_changes"] = (
        status_changes.size().reindex(grid, fill_value=0).astype("int64")
    )
    table["last_phone_status"] = (
        obs[obs["phone_status"].notna()]
        .groupby(["config_id", "day"])["phone_status"]
        .last()
        .reindex(grid)
    )
    return table.reset_index()
