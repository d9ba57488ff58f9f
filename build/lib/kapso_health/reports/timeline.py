"""Observations and the time they hold: the base of every daily figure (pure pandas).

An observation is a distinct (`config_id`, `checked_at`) among polls with outcome `ok`
(Kapso's cache repeats a body for 3 minutes: repeats are one observation); a failed or
skipped poll is an observation of an *unknown* state at its `polled_at`. Each observation
holds until the next one of the same number, at most `max_gap`; beyond that the time is
unknown. Intervals are split at UTC midnight so each piece belongs to one day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

from kapso_health.tasks.settings import MAX_GAP_MINUTES
from kapso_health.tasks.vocabulary import DEGRADED, REPORT_STATES, UNKNOWN, UP

DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Policy:
    """How statuses count. The defaults are the ones documented in the README."""

    states: dict[str, str] = field(default_factory=lambda: dict(REPORT_STATES))
    degraded_counts_as_up: bool = True
    max_gap: timedelta = timedelta(minutes=MAX_GAP_MINUTES)

    def available(self) -> tuple[str, ...]:
        return (UP, DEGRADED) if self.degraded_counts_as_up else (UP,)


DEFAULT_POLICY = Policy()
OBSERVATION_COLUMNS = [
    "config_id",
    "at",
    "day",
    "state",
    "ok",
    "quality_rating",
    "can_send_message",
    "phone_status",
]


def observations(polls: pd.DataFrame, policy: Policy = DEFAULT_POLICY) -> pd.DataFrame:
    """One row per observation, in time order per number; missing columns count as unknown."""
    frame = polls.copy()
    for column in ("checked_at", "status", "quality_rating", "can_send_message", "phone_status"):
        if column not in frame:
            frame[column] = None
    frame["ok"] = frame["outcome"].astype("string").eq("ok").fillna(False).astype(bool)
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
    return ordered[OBSERVATION_COLUMNS]


def intervals(obs: pd.DataFrame, policy: Policy = DEFAULT_POLICY) -> pd.DataFrame:
    """Each observation's holding time, split at UTC midnight: one row per (observation, day).

    Columns: the observation's, plus `start`, `end`, `seconds`, and `day` of the piece.
    """
    if obs.empty:
        return obs.assign(start=obs["at"], end=obs["at"], seconds=pd.Series(dtype="float64"))
    following = obs.groupby("config_id", sort=False)["at"].shift(-1)
    cap = obs["at"] + pd.Timedelta(policy.max_gap)
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
    or missing) neither end nor extend a run. Columns: config_id, start, last_seen, end."""
    known = obs[obs[column].isin([bad, *recovered])]
    if known.empty:
        return pd.DataFrame(
            {
                "config_id": pd.Series(dtype="string"),
                **{
                    c: pd.Series(dtype="datetime64[us, UTC]") for c in ("start", "last_seen", "end")
                },
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
        }
    ).reset_index(drop=True)
