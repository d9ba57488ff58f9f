"""Observations and the time they hold: the base of every daily figure (pure pandas).

An observation is a distinct (`config_id`, `checked_at`) among polls with outcome `ok`
(Kapso's cache repeats a body for 3 minutes: repeats are one observation); a failed or
skipped poll is an observation of an *unknown* state at its `polled_at`. Each observation
holds until the next one of the same number, at most `max_gap`; beyond that the time is
unknown. Intervals are split at UTC midnight so each piece belongs to one day.

`max_gap` is either fixed (`Policy(max_gap=timedelta(...))`, the pure default: 30 minutes) or,
with `Policy(max_gap=None)`, each number's own cadence per day: `cadence_factor` x the
time-weighted median interval between its observations that day and the day before (the
smallest interval such that intervals up to it cover half the time), clamped to `cadence_range`; a
number-day with no such interval (fewer than two observations over the two days) gets the
range's lower bound. `observations` puts the gap that applies on each row (`max_gap`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kapso_health.reports.policy import DAY, DEFAULT_POLICY, Policy
from kapso_health.tasks.vocabulary import UNKNOWN, Outcome

__all__ = ["DAY", "DEFAULT_POLICY", "Policy"]

OBSERVATION_COLUMNS = [
    "config_id",
    "at",
    "day",
    "state",
    "ok",
    "quality_rating",
    "can_send_message",
    "phone_status",
    "max_gap",
]


def observations(polls: pd.DataFrame, policy: Policy = DEFAULT_POLICY) -> pd.DataFrame:
    """One row per observation, in time order per number; missing columns count as unknown."""
    frame = polls.copy()
    for column in ("checked_at", "status", "quality_rating", "can_send_message", "phone_status"):
        if column not in frame:
            frame[column] = None
    frame["ok"] = frame["outcome"].astype("string").eq(Outcome.OK.value).fillna(False).astype(bool)
    at = pd.to_datetime(frame["checked_at"], utc=True).where(frame["ok"])
    frame["at"] = at.fillna(pd.to_datetime(frame["polled_at"], utc=True))
    ok = frame[frame["ok"]].drop_duplicates(["config_id", "at"])
    frame = pd.concat([ok, frame[~frame["ok"]]], ignore_index=True)
    state = frame["status"].astype("string").map(policy.states).fillna(UNKNOWN)
    frame["state"] = state.where(frame["ok"], UNKNOWN).astype("string")
    frame["day"] = frame["at"].dt.floor("D")
    for column in ("quality_rating", "can_send_message", "phone_status"):
        frame[column] = frame[column].astype("string").where(frame["ok"])
    frame["config_id"] = frame["config_id"].astype("string")
    ordered = frame.sort_values(["config_id", "at"], kind="stable", ignore_index=True)
    ordered["max_gap"] = max_gaps(ordered, policy)
    return ordered[OBSERVATION_COLUMNS]


def max_gaps(obs: pd.DataFrame, policy: Policy = DEFAULT_POLICY) -> pd.Series:
    """How long each observation holds at most (timedelta per row of `obs`, which is in time
    order per number): the fixed `max_gap`, or its number's cadence on the observation's day
    (see the module's docstring). A day's cadence needs the day before in `obs` to be whole."""
    if policy.max_gap is not None:
        return pd.Series(pd.Timedelta(policy.max_gap), index=obs.index, dtype="timedelta64[ns]")
    low, high = (pd.Timedelta(bound) for bound in policy.cadence_range)
    step = obs.groupby("config_id", sort=False)["at"].diff()
    steps = obs.assign(step=step)[step > pd.Timedelta(0)][["config_id", "day", "step"]]
    window = pd.concat([steps, steps.assign(day=steps["day"] + DAY)], ignore_index=True)
    window = window.sort_values(["config_id", "day", "step"], ignore_index=True)
    by_day = window.groupby(["config_id", "day"])["step"]
    half = by_day.cumsum() * 2 >= by_day.transform("sum")
    median = window[half].groupby(["config_id", "day"])["step"].min()
    gap = (median * policy.cadence_factor).clip(low, high)
    rows = pd.MultiIndex.from_frame(obs[["config_id", "day"]])
    found = gap.reindex(rows).to_numpy(dtype="timedelta64[ns]")
    return pd.Series(found, index=obs.index).fillna(low)


def intervals(obs: pd.DataFrame, policy: Policy = DEFAULT_POLICY) -> pd.DataFrame:
    """Each observation's holding time, split at UTC midnight: one row per (observation, day).

    Columns: the observation's, plus `start`, `end`, `seconds`, and `day` of the piece. An
    observation holds at most its `max_gap` (computed from `policy` when `obs` lacks it).
    """
    if obs.empty:
        return obs.assign(start=obs["at"], end=obs["at"], seconds=pd.Series(dtype="float64"))
    following = obs.groupby("config_id", sort=False)["at"].shift(-1)
    cap = obs["at"] + (obs["max_gap"] if "max_gap" in obs else max_gaps(obs, policy))
    pieces = obs.assign(start=obs["at"], end=following.where(following < cap, cap))
    pieces = pieces[pieces["end"] > pieces["start"]]
    split = []
    while not pieces.empty:
        midnight = pieces["start"].dt.floor("D") + DAY
        inside = pieces["end"] <= midnight
        split.append(pieces[inside])
        crossing = pieces[~inside]
        split.append(crossing.assign(end=midnight[~inside]))
        pieces = crossing.assign(start=midnight[~inside])
    result = pd.concat(split, ignore_index=True)
    result["day"] = result["start"].dt.floor("D")
    result["seconds"] = (result["end"] - result["start"]).dt.total_seconds()
    return result.sort_values(["config_id", "start"], ignore_index=True)


def reported_numbers(obs: pd.DataFrame, pieces: pd.DataFrame, days: list[pd.Timestamp]) -> pd.Index:
    """The numbers a report on `days` lists: polled on one of them, or holding a state into
    one (observations from the margin days alone do not put a number in the report)."""
    ids = pd.concat(
        [
            obs.loc[obs["day"].isin(days), "config_id"],
            pieces.loc[pieces["day"].isin(days), "config_id"],
        ]
    )
    return pd.Index(ids.unique(), name="config_id")


def runs(obs: pd.DataFrame, column: str, bad: str, recovered: tuple[str, ...]) -> pd.DataFrame:
    """Maximal runs of `column == bad` per number; other values outside `recovered` (unknown
    or missing) neither end nor extend a run. Columns: config_id, start, last_seen, end, and
    max_gap (how long the last bad observation holds)."""
    known = obs[obs[column].isin([bad, *recovered])]
    if known.empty:
        return pd.DataFrame(
            {
                "config_id": pd.Series(dtype="string"),
                **{
                    c: pd.Series(dtype="datetime64[us, UTC]") for c in ("start", "last_seen", "end")
                },
                "max_gap": pd.Series(dtype="timedelta64[ns]"),
            }
        )
    ids = known["config_id"].to_numpy(dtype=object)
    bad_flags = known[column].eq(bad).to_numpy(dtype=bool)
    starts = np.r_[True, (ids[1:] != ids[:-1]) | (bad_flags[1:] != bad_flags[:-1])]
    run_id = pd.Series(np.cumsum(starts), index=known.index)
    is_bad = pd.Series(bad_flags, index=known.index)
    next_at = known.groupby("config_id")["at"].shift(-1)
    bad_runs = known[is_bad].assign(run=run_id[is_bad], next_at=next_at[is_bad])
    first = bad_runs.drop_duplicates("run", keep="first").set_index("run")
    last = bad_runs.drop_duplicates("run", keep="last").set_index("run")
    return pd.DataFrame(
        {
            "config_id": first["config_id"],
            "start": first["at"],
            "last_seen": last["at"],
            "end": last["next_at"],  # the first recovered observation; NaT: still open
            "max_gap": last["max_gap"],
        }
    ).reset_index(drop=True)
