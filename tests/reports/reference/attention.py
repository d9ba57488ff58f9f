"""What needs attention at the end of the period, and what changed since the day before (pure
pandas, one polls batch at a time: one row per number out).

An observation is *known* when its status is ranked (healthy, degraded, unhealthy; `error`
bodies and failed polls say nothing about the number). A known observation is *in trouble*
when any of TROUBLES holds; otherwise it is *good*. A number needs attention when its newest
known observation before the end is in trouble: since its first troubled observation after its
last good one (or since its first one read, when no good one was read), ordered by its worst
trouble, then by how long.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from kapso_health.tasks.schemas import DEFAULT_PROJECT
from kapso_health.tasks.vocabulary import (
    ASPECTS,
    BLOCKED,
    LIMITED,
    STATE_COLUMNS,
    STATUS_ORDER,
    TROUBLED_PHONE_STATUSES,
    UNHEALTHY,
    WORST_RATING,
    Outcome,
    worse,
)

# (how it reads, when it holds), worst first: the index is the severity.
TROUBLES: tuple[tuple[str, Callable[[pd.DataFrame], pd.Series]], ...] = (
    ("down", lambda f: f["status"].eq(UNHEALTHY)),
    (f"messaging {BLOCKED}", lambda f: f["can_send_message"].eq(BLOCKED)),
    ("phone " + "/".join(sorted(TROUBLED_PHONE_STATUSES)), lambda f: _phone_troubled(f)),
    (f"rating {WORST_RATING}", lambda f: f["quality_rating"].eq(WORST_RATING)),
    (f"messaging {LIMITED}", lambda f: f["can_send_message"].eq(LIMITED)),
    ("webhook not verified", lambda f: f["passed_webhook_verified"].eq(False)),
)
ATTENTION_COLUMNS = [
    "config_id",
    "project",
    "severity",
    "problems",
    "since",
    "since_known",
    "seconds",
    "checked_at",
    "polled_at",
    *STATE_COLUMNS,
    "last_good_at",
    "last_good_status",
]
CHANGE_KINDS = ("new incident", "downgrade", "recovery", "upgrade")  # the order listed
CHANGE_COLUMNS = ["config_id", "project", "kind", "what"]


def _phone_troubled(frame: pd.DataFrame) -> pd.Series:
    return frame["phone_status"].str.upper().isin(TROUBLED_PHONE_STATUSES)


def known_observations(polls: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """The known observations before `end`, in time order per number, with `severity` (the
    worst trouble's index; NA when good) and `problems` (every trouble, worst first)."""
    frame = polls.copy()
    for column in [*STATE_COLUMNS, "project", "checked_at"]:
        if column not in frame:
            frame[column] = pd.NA
    frame["at"] = pd.to_datetime(frame["checked_at"], utc=True)
    ok = frame["outcome"].astype("string").eq(Outcome.OK.value) & frame["status"].isin(STATUS_ORDER)
    frame = frame[ok.fillna(False) & (frame["at"] < end)]
    frame = frame.sort_values(["config_id", "at", "polled_at"], kind="stable")
    frame = frame.drop_duplicates(["config_id", "at"], keep="last").copy()
    frame["project"] = frame["project"].astype("string").fillna(DEFAULT_PROJECT)
    for column in STATE_COLUMNS:
        frame[column] = frame[column].astype("boolean" if column.startswith("passed") else "string")
    held = pd.DataFrame(
        {name: test(frame).fillna(False).astype(bool) for name, test in TROUBLES},
        index=frame.index,
    )
    frame["severity"] = pd.Series(held.to_numpy().argmax(axis=1), index=frame.index).where(
        held.any(axis=1)
    )
    names = held.columns.to_numpy()
    frame["problems"] = [", ".join(names[row]) for row in held.to_numpy()]
    return frame.reset_index(drop=True)


def needs_attention(polls: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """One row per number in trouble at `end` (ATTENTION_COLUMNS), worst and longest first."""
    obs = known_observations(polls, end)
    if obs.empty:
        return pd.DataFrame(columns=ATTENTION_COLUMNS)
    good = obs["severity"].isna()
    last_good = obs[good].groupby("config_id")[["at", "status"]].last()
    newest = obs.groupby("config_id").tail(1).set_index("config_id")
    troubled = newest[newest["severity"].notna()].copy()
    good_at = last_good["at"].reindex(troubled.index)
    after_good = obs[~good & obs["config_id"].isin(troubled.index)]
    # reindex keeps the datetime dtype where map would give floats for a number never good
    good_before = good_at.reindex(after_good["config_id"]).set_axis(after_good.index)
    after_good = after_good[good_before.isna() | (after_good["at"] > good_before)]
    since = after_good.groupby("config_id")["at"].min().reindex(troubled.index)
    troubled = troubled.assign(
        since=since,
        since_known=good_at.notna(),
        seconds=(end - since).dt.total_seconds(),
        checked_at=troubled["at"],
        last_good_at=good_at,
        last_good_status=last_good["status"].reindex(troubled.index),
    ).reset_index()
    ordered = troubled.sort_values(["severity", "seconds", "config_id"], ascending=[1, 0, 1])
    return ordered[ATTENTION_COLUMNS].reset_index(drop=True)


def changes_since(polls: pd.DataFrame, before: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Per number whose state moved between its newest known observation before `before` and
    its newest before `end`: a new incident (good → in trouble), a recovery (the way back), else
    a downgrade or an upgrade of an aspect; `what` says which aspects, how."""
    obs = known_observations(polls, end)
    now = obs.groupby("config_id").tail(1).set_index("config_id")
    then = obs[obs["at"] < before].groupby("config_id").tail(1).set_index("config_id")
    both = now.index.intersection(then.index)
    states = [*STATE_COLUMNS, "severity"]
    old_states = then.loc[both, states].astype("string").fillna("")
    moved_any = (now.loc[both, states].astype("string").fillna("") != old_states).any(axis=1)
    rows = []
    for number in both[moved_any.to_numpy()]:
        # Fixed in this copy too: a row of a boolean column gives numpy.bool_, which the
        # vocabulary does not rank, so webhook_verified moves went unreported before.
        old, new = (row.map(_plain) for row in (then.loc[number], now.loc[number]))
        moves = [
            (aspect, worse(aspect, old[column], new[column]), old[column], new[column])
            for aspect, (column, _) in ASPECTS.items()
        ]
        moved = [move for move in moves if move[1] is not None]
        was, now_troubled = pd.notna(old["severity"]), pd.notna(new["severity"])
        if was != now_troubled:
            kind = "new incident" if now_troubled else "recovery"
        elif moved:
            kind = "downgrade" if any(direction for _, direction, _, _ in moved) else "upgrade"
        else:
            continue
        what = "; ".join(f"{aspect} {a} → {b}" for aspect, _, a, b in moved) or new["problems"]
        rows.append((number, new["project"], kind, what))
    frame = pd.DataFrame(rows, columns=CHANGE_COLUMNS)
    order = frame["kind"].map(CHANGE_KINDS.index)
    return frame.assign(_order=order).sort_values(["_order", "config_id"]).drop(columns="_order")


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value
