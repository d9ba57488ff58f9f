"""Fleet roll-up per day, and per customer or WABA where the numbers table knows them."""

from __future__ import annotations

import pandas as pd

from kapso_health.tasks.vocabulary import RATINGS

ATTRIBUTE_COLUMNS = ["config_id", "customer_id", "business_account_id", "name"]


def latest_attributes(numbers: pd.DataFrame) -> pd.DataFrame:
    """The newest listed attributes per number (customer, WABA, name)."""
    if numbers.empty:
        return pd.DataFrame(columns=ATTRIBUTE_COLUMNS)
    newest = numbers.sort_values("listed_at").drop_duplicates("config_id", keep="last")
    return newest[ATTRIBUTE_COLUMNS]


def fleet_rollup(
    availability: pd.DataFrame,
    quality: pd.DataFrame,
    attributes: pd.DataFrame | None = None,
    by: str | None = None,
) -> pd.DataFrame:
    """Per day (and per `by`, e.g. `customer_id`): numbers polled, mean availability, numbers
    with incidents, numbers per last quality rating, downgrades. `by` comes from `attributes`,
    or from `availability` itself when it has that column (`project`)."""
    return rollup_of(number_days(availability, quality), attributes, by)


RATING_COUNTS = [f"numbers_{rating.lower()}" for rating in RATINGS]


def number_days(availability: pd.DataFrame, quality: pd.DataFrame) -> pd.DataFrame:
    """Availability and quality per number and day side by side, with what the roll-ups count
    of each (polled, with incidents, a 1 in the column of its last rating): several roll-ups
    share it."""
    shared = [c for c in quality.columns if c in availability.columns]
    keys = ["config_id", "day"]
    extra = quality.drop(columns=[c for c in shared if c not in keys])
    merged = availability.merge(extra, on=keys, how="left")
    observed = merged["polls_up"] + merged["polls_down"] + merged["polls_degraded"]
    counted = {
        "polled": (observed + merged["polls_unknown"]) > 0,
        "with_incidents": merged["incidents"] > 0,
    }
    for rating, column in zip(RATINGS, RATING_COUNTS, strict=True):
        counted[column] = merged["last_rating"].eq(rating).fillna(False).astype("int64")
    return merged.assign(**counted)


def rollup_of(
    merged: pd.DataFrame, attributes: pd.DataFrame | None = None, by: str | None = None
) -> pd.DataFrame:
    """`fleet_rollup` of `number_days(...)`."""
    keys = ["day"]
    if by is not None:
        if by not in merged:
            merged = merged.merge(
                attributes if attributes is not None else pd.DataFrame(columns=["config_id", by]),
                on="config_id",
                how="left",
            )
        merged = merged.assign(**{by: merged[by].astype("string").fillna("(unknown)")})
        keys.append(by)
    grouped = merged.groupby(keys)
    counts = grouped[RATING_COUNTS].sum()  # integers: exact in any order
    table = pd.DataFrame(
        {
            "numbers": grouped.size(),
            "numbers_polled": grouped["polled"].sum(),
            "mean_availability_time": grouped["availability_time"].mean(),
            "mean_availability_samples": grouped["availability_samples"].mean(),
            "mean_coverage": grouped["coverage"].mean(),
            "numbers_with_incidents": grouped["with_incidents"].sum(),
            "incidents": grouped["incidents"].sum(),
            "downtime_seconds": grouped["downtime_seconds"].sum(),
            "downgrades": grouped["downgrades"].sum(),
            **{column: counts[column] for column in RATING_COUNTS},
        }
    )
    return table.reset_index()
