"""Fleet roll-up per day, and per customer or WABA where the numbers table knows them."""

from __future__ import annotations

import pandas as pd

from kapso_health.tasks.vocabulary import RATINGS


def latest_attributes(numbers: pd.DataFrame) -> pd.DataFrame:
    """The newest listed attributes per number (customer, WABA, name)."""
    columns = ["config_id", "customer_id", "business_account_id", "name"]
    if numbers.empty:
        return pd.DataFrame(columns=columns)
    newest = numbers.sort_values("listed_at").drop_duplicates("config_id", keep="last")
    return newest[columns]


def fleet_rollup(
    availability: pd.DataFrame,
    quality: pd.DataFrame,
    attributes: pd.DataFrame | None = None,
    by: str | None = None,
) -> pd.DataFrame:
    """Per day (and per `by`, e.g. `customer_id`): numbers polled, mean availability, numbers
    with incidents, numbers per last quality rating, downgrades. `by` comes from `attributes`,
    or from `availability` itself when it has that column (`project`)."""
    shared = [c for c in quality.columns if c in availability.columns]
    keys = ["config_id", "day"]
    extra = quality.drop(columns=[c for c in shared if c not in keys])
    merged = availability.merge(extra, on=keys, how="left")
    keys = ["day"]
    if by is not None:
        if by not in merged:
            merged = merged.merge(
                attributes if attributes is not None else pd.DataFrame(columns=["config_id", by]),
                on="config_id",
                how="left",
            )
        merged[by] = merged[by].astype("string").fillna("(unknown)")
        keys.append(by)
    observed = merged["polls_up"] + merged["polls_down"] + merged["polls_degraded"]
    merged["polled"] = (observed + merged["polls_unknown"]) > 0
    merged["with_incidents"] = merged["incidents"] > 0
    grouped = merged.groupby(keys)
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
        }
    )
    for rating in RATINGS:
        table[f"numbers_{rating.lower()}"] = (
            merged["last_rating"]
            .eq(rating)
            .fillna(False)
            .astype("int64")
            .groupby([merged[key] for key in keys])
            .sum()
        )
    return table.reset_index()
