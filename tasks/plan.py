"""Which numbers a collection run polls, in which order: capacity and the rolling plan.

Pure functions (no I/O, no Prefect): the flows read the history, call these, and log the result.

Kapso allows a project a fixed number of health checks per minute. A rolling run spends its
window's budget in rounds of at most Kapso's 3-minute cache (so a round polls a number at most
once), planning each round from what the history and the run's own polls say so far:

- numbers never polled come first;
- a number whose state is unusual *for it* (a number that is usually fine and is now in
  trouble, or one usually in trouble that now looks fine, or whose last poll failed) is
  *watched*: polled every `WATCH_INTERVAL` (as often as Kapso's cache allows), before
  everyone else, with up to `WATCH_SHARE` of each round's budget. Such a state is news and
  tends to change again soon: a recovery or a relapse is seen within minutes;
- every other number is polled by due time, the most overdue first: its last poll plus the
  fleet's cadence, or `TROUBLE_CADENCE_SHARE` of it for a number in trouble as usual or whose
  trouble came or went in the last hour; numbers not yet due fill what is left of the
  budget, so the budget is never idle while a number could be polled;
- no number is polled sooner than `CACHE` after its last poll (Kapso would return the same
  body) or while Kapso backs it off (`retry_after`).

Numbers a round does not reach are the most overdue of the next one.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pandas as pd

from kapso_health.tasks.vocabulary import (
    ERROR,
    TROUBLED_MESSAGING,
    TROUBLED_PHONE_STATUSES,
    TROUBLED_STATUSES,
    WORST_RATING,
    Outcome,
)

# Kapso repeats a number's result for 3 minutes: polling sooner buys the same body again. The
# cache runs from Kapso's check, which our clock sees a little off: poll a margin after it.
CACHE = timedelta(minutes=3)
REPEAT_MARGIN = timedelta(seconds=5)
# How often a watched number (its state unusual for it) is polled: as often as Kapso's cache
# allows; and the share of a round's budget watched numbers may take before the others. In the
# fleet-day benchmark (bench/fleet_day.py) a half share detects recoveries 3-4 x sooner than
# today's sweeps; in its model a 0.3 share left watched numbers waiting and no priority let
# them wait behind the overdue; 5 minutes instead of 3 detected the recoveries of a
# 500-number project only 2.5 x sooner.
WATCH_INTERVAL = CACHE
WATCH_SHARE = 0.5
# A number in trouble for more than this share of the time the history covers is usually in
# trouble: its trouble is not news, its recovery is.
USUAL_TROUBLE_SHARE = 0.5
# A number in trouble as usual, or whose trouble came or went in the last hour (changes come
# in bursts), is due at this share of the fleet's cadence: sooner than the healthy and stable,
# without the watched numbers' priority. In the fleet-day benchmark 0.7 left 5.6-5.9% of the
# healthy numbers' one-hour troubles unseen at 2,000 numbers, 0.85 2.8-3.1%.
TROUBLE_CADENCE_SHARE = 0.85
RECENT_CHANGE = timedelta(hours=1)


@dataclass(frozen=True)
class Capacity:
    """What the budget allows a project: per run and per number."""

    numbers: int
    per_minute: float | None  # the health budget in force; None = no limit
    window_minutes: float | None  # the run's window; None = a full sweep
    interval_minutes: float | None  # the schedule's interval, when there is one
    allowed: int  # polls one run may make
    cadence_minutes: float | None  # how often each number is polled; None = never
    covers_fleet: bool  # every number is polled every run

    def line(self) -> str:
        """One line for the log, the summary artifact and `kapso-health plan`."""
        fleet = f"{self.numbers:,} numbers"
        if self.per_minute is None:
            head = f"{fleet}, no rate limit"
        else:
            head = f"{fleet} at {self.per_minute:g}/min"
        head += f": each number {_every(self.cadence_minutes)}"
        if self.window_minutes is None:
            return f"{head}; no window: one full sweep per run"
        tail = f"; a {self.window_minutes:g}-min window allows {self.allowed:,} polls per run"
        if self.allowed == 0:
            tail += " (nothing will be polled)"
        return head + tail

    def warning(self) -> str | None:
        """None when the fleet is covered every run; else what the schedule cannot keep."""
        if self.covers_fleet:
            return None
        every = (
            f"every {self.interval_minutes:g} min"
            if self.interval_minutes is not None
            else "in one run"
        )
        return (
            f"{self.numbers:,} numbers cannot be covered {every} at this budget "
            f"({self.line()}); each number is polled {_every(self.cadence_minutes)} instead"
        )


def _every(cadence: float | None) -> str:
    if cadence is None:
        return "never"
    if cadence == 0:
        return "every run"
    return f"every ~{math.ceil(cadence - 1e-9):,} min"


def capacity(
    numbers: int,
    per_minute: float | None,
    window_minutes: float | None,
    interval_minutes: float | None,
) -> Capacity:
    """The capacity of `numbers` numbers at `per_minute` health checks a minute.

    A window allows `floor(window x per_minute)` polls, and no more than each number once per
    Kapso cache period in it (all that a run can use of the budget). Without a
    window a run is one full sweep: each number every `numbers / per_minute` minutes, never
    less than the schedule's interval. A rolling run spends its whole budget, so with a
    window and an interval each number is polled every `interval x numbers / allowed`
    minutes on average (the window's idle rest of each interval is budget the fleet does not
    get), and never more often than Kapso's cache allows.
    """
    if numbers < 0:
        raise ValueError("numbers must not be negative")
    if per_minute is not None and per_minute <= 0:
        raise ValueError("per_minute must be positive (or None for no limit)")
    if window_minutes is not None and window_minutes < 0:
        raise ValueError("window_minutes must not be negative")
    if window_minutes is None:
        allowed = numbers
    else:  # the budget, and no number more often than Kapso's cache allows
        allowed = numbers * max(1, math.floor(window_minutes / _minutes(CACHE)))
        if per_minute is not None:
            allowed = min(allowed, math.floor(window_minutes * per_minute + 1e-9))
    cadence: float | None
    if numbers == 0:
        cadence = 0.0
    elif allowed == 0:
        cadence = None
    elif window_minutes is not None and interval_minutes is not None:
        cadence = max(interval_minutes * numbers / allowed, _minutes(CACHE))
    elif per_minute is None:
        cadence = interval_minutes or 0.0
    else:
        cadence = max(numbers / per_minute, interval_minutes or 0.0)
    sweep_fits = (
        per_minute is None
        or interval_minutes is None
        or window_minutes is not None
        or numbers / per_minute <= interval_minutes
    )
    return Capacity(
        numbers=numbers,
        per_minute=per_minute,
        window_minutes=window_minutes,
        interval_minutes=interval_minutes,
        allowed=allowed,
        cadence_minutes=cadence,
        covers_fleet=allowed >= numbers and sweep_fits,
    )


def _minutes(span: timedelta) -> float:
    return span.total_seconds() / 60


@dataclass(frozen=True)
class LastSeen:
    """What the history says about one number."""

    polled_at: datetime | None  # the last poll, whatever its outcome
    observed_at: datetime | None  # checked_at of the last `ok` observation
    in_trouble: bool = False  # its last poll (see `troubled`)
    retry_after: datetime | None = None  # Kapso backs the number off until then
    usually_in_trouble: bool = False  # in trouble most of the time the history covers
    changed_at: datetime | None = None  # the last poll at which its trouble came or went

    @property
    def watched(self) -> bool:
        """Its state is unusual for it: news that tends to change again soon."""
        return self.in_trouble != self.usually_in_trouble

    def troubled_lately(self, now: datetime) -> bool:
        """In trouble, or its trouble came or went less than `RECENT_CHANGE` ago."""
        recent = self.changed_at is not None and now - self.changed_at < RECENT_CHANGE
        return self.in_trouble or recent


def troubled(polls: pd.DataFrame) -> pd.Series:
    """Per `polls` row, whether it shows the number in trouble: the poll failed (any outcome
    but `ok`, a skip for Kapso's backoff included), an `error` body, status unhealthy or
    degraded, messaging LIMITED or BLOCKED, rating RED, or a troubled phone status."""

    def column(name: str) -> pd.Series:
        if name in polls:
            return polls[name].astype("object")
        return pd.Series(None, index=polls.index, dtype="object")

    phone = column("phone_status").str.upper()
    error = column("error")
    failed = column("outcome").fillna(Outcome.OK.value).ne(Outcome.OK.value)
    return (
        failed
        | column("status").isin([ERROR, *TROUBLED_STATUSES])
        | (error.notna() & error.ne(""))
        | column("can_send_message").isin(TROUBLED_MESSAGING)
        | column("quality_rating").eq(WORST_RATING)
        | phone.isin(TROUBLED_PHONE_STATUSES)
    ).astype(bool)


def seen_from_polls(polls: pd.DataFrame, key: str, now: datetime) -> dict[str, LastSeen]:
    """Per number (keyed by the polls column `key`, the polled id), what the planner needs,
    from its `polls` rows (any order): its last poll and whether it shows trouble, its last
    observation, Kapso's backoff, and whether it is usually in trouble: in trouble for more
    than `USUAL_TROUBLE_SHARE` of the time its polls cover (each holds until the next, the
    last until `now`; a failed poll is trouble; a cached body again is no new poll), so a
    number polled often while in trouble is not taken for one that usually is, and one that
    keeps failing soon is."""
    polls = polls[polls[key].notna()].sort_values([key, "polled_at"], kind="stable")
    if polls.empty:
        return {}
    trouble = troubled(polls)
    ok = polls["outcome"].eq(Outcome.OK.value)
    repeat = ok & polls["checked_at"].notna() & polls.duplicated([key, "checked_at"])
    spells = polls.assign(trouble=trouble)[~repeat]
    following = spells.groupby(key)["polled_at"].shift(-1)
    held = (following.fillna(pd.Timestamp(now)) - spells["polled_at"]).dt.total_seconds()
    held = held.clip(lower=0)
    total = held.groupby(spells[key]).sum()
    share = (held * spells["trouble"]).groupby(spells[key]).sum() / total.where(total > 0)
    latest = spells.groupby(key)["trouble"].last().astype(float)
    usual = share.fillna(latest).gt(USUAL_TROUBLE_SHARE)
    before = spells.groupby(key)["trouble"].shift()
    flips = spells[before.notna() & spells["trouble"].ne(before)]
    changed = flips.groupby(key)["polled_at"].max()
    observed = polls[ok & polls["checked_at"].notna()]
    newest = observed.sort_values([key, "checked_at"], kind="stable").groupby(key).tail(1)
    newest = newest.set_index(key)
    last = polls.assign(trouble=trouble).groupby(key).tail(1)
    seen = {}
    for number, polled_at, in_trouble_now in zip(
        last[key], last["polled_at"], last["trouble"], strict=True
    ):
        observed = newest.loc[number] if number in newest.index else None
        seen[number] = LastSeen(
            polled_at=pd.Timestamp(polled_at).to_pydatetime(),
            observed_at=None if observed is None else _when(observed["checked_at"]),
            in_trouble=bool(in_trouble_now),
            retry_after=None if observed is None else _when(observed.get("retry_after")),
            usually_in_trouble=bool(usual.get(number, in_trouble_now)),
            changed_at=_when(changed.get(number)),
        )
    return seen


def _when(value: object) -> datetime | None:
    return None if value is None or pd.isna(value) else pd.Timestamp(value).to_pydatetime()


def plan_round(
    numbers: Sequence[str],
    last: Mapping[str, LastSeen],
    now: datetime,
    per_minute: float | None,
    window_minutes: float | None,
    cadence: timedelta,
    watch_interval: timedelta = WATCH_INTERVAL,
    cache: timedelta = CACHE,
    limit: int | None = None,
) -> list[tuple[str, datetime]]:
    """The polls of one round of `window_minutes` from `now`, in order, as (id, the time
    its slot starts: not to be polled sooner), each number at most once, at most
    `window_minutes x per_minute` of them and at most `limit` (what is left of the run's
    budget).

    The round's budget units are slots `60 / per_minute` seconds apart. Numbers never polled
    take the first slots (in the order given). Each later slot goes to a watched number due
    by then (last poll plus `watch_interval`), while watched numbers hold under
    `WATCH_SHARE` of the round's slots (past that share they are due by `cadence` like the
    others); else to the number due soonest (last poll plus `cadence`, `TROUBLE_CADENCE_SHARE`
    of it when the number is `troubled_lately`, or `watch_interval` when watched). A number
    may take a slot only from `eligible_at`; a slot nobody may take stays empty. Ties go in
    the order given. A poll sent before its slot would buy a cached body (a run's first
    seconds go faster than the budget's pace, in a burst): the slot time is when it may go.
    Without a limit (or a window), every number is planned at the time it becomes eligible
    within the round.
    """
    watch_interval, cadence = max(watch_interval, cache), max(cadence, cache)
    new = [number_id for number_id in numbers if _last_time(last.get(number_id)) is None]
    waiting = []  # (eligible, due when watched, due by cadence, watched, position, id)
    for position, number_id in enumerate(numbers):
        seen = last.get(number_id)
        if seen is None or (polled := _last_time(seen)) is None:
            continue
        eligible = eligible_at(seen, cache)
        own_cadence = cadence * (TROUBLE_CADENCE_SHARE if seen.troubled_lately(now) else 1)
        by_cadence = max(polled + own_cadence, eligible)
        due = max(polled + watch_interval, eligible) if seen.watched else by_cadence
        waiting.append((eligible, due, by_cadence, seen.watched, position, number_id))
    waiting.sort()
    if per_minute is None or window_minutes is None:
        horizon = now + timedelta(minutes=window_minutes or 0)
        ready = [(max(w[0], now), w[4], w[5]) for w in waiting if w[0] <= horizon]
        planned = [(number_id, now) for number_id in new]
        planned += [(number_id, at) for at, _, number_id in sorted(ready)]
        return planned if limit is None else planned[: max(limit, 0)]
    slots = math.floor(window_minutes * per_minute + 1e-9)
    slots = slots if limit is None else min(slots, max(limit, 0))
    step = 60.0 / per_minute
    plan = [(number_id, now + timedelta(seconds=k * step)) for k, number_id in enumerate(new)]
    plan = plan[:slots]
    watched: list[tuple[datetime, int, str, datetime]] = []
    others: list[tuple[datetime, int, str]] = []
    watch_slots, taken_by_watch, slot, i = WATCH_SHARE * slots, 0, len(plan), 0
    while slot < slots:
        at = now + timedelta(seconds=slot * step)
        while i < len(waiting) and waiting[i][0] <= at:
            _, due, by_cadence, is_watched, position, number_id = waiting[i]
            if is_watched and taken_by_watch < watch_slots:
                heapq.heappush(watched, (due, position, number_id, by_cadence))
            else:
                heapq.heappush(others, (by_cadence, position, number_id))
            i += 1
        if watched and (watched[0][0] <= at or not others or watched[0][:2] < others[0][:2]):
            plan.append((heapq.heappop(watched)[2], at))
            taken_by_watch += 1
            if taken_by_watch >= watch_slots:  # the share is spent: the rest wait by cadence
                for _, position, number_id, by_cadence in watched:
                    heapq.heappush(others, (by_cadence, position, number_id))
                watched.clear()
        elif others:
            plan.append((heapq.heappop(others)[2], at))
        elif i < len(waiting):
            wait = (waiting[i][0] - now).total_seconds()
            slot = max(slot, math.ceil(wait / step - 1e-9))
            continue
        else:
            break
        slot += 1
    return plan


def _last_time(seen: LastSeen | None) -> datetime | None:
    """The latest of a number's last poll and last observation (None: never polled)."""
    if seen is None:
        return None
    times = [t for t in (seen.polled_at, seen.observed_at) if t is not None]
    return max(times) if times else None


def eligible_at(seen: LastSeen, cache: timedelta = CACHE) -> datetime:
    """When a polled number may be polled again: `cache` and `REPEAT_MARGIN` after the later
    of our last poll and Kapso's last check of it (the cache runs from its check), and not
    while Kapso backs it off (`retry_after`)."""
    last = _last_time(seen)
    if last is None:
        raise ValueError("a number never polled is eligible at once")
    return max(last + cache + REPEAT_MARGIN, seen.retry_after or last)


def next_eligible(
    numbers: Sequence[str], last: Mapping[str, LastSeen], now: datetime, cache: timedelta = CACHE
) -> datetime | None:
    """When the first of `numbers` may be polled again (`now` for one never polled)."""
    times = []
    for number_id in numbers:
        seen = last.get(number_id)
        if _last_time(seen) is None:
            return now
        times.append(eligible_at(seen, cache))  # type: ignore[arg-type]
    return max(min(times), now) if times else None


def seen_after(
    seen: Mapping[str, LastSeen], polls: pd.DataFrame, key: str, now: datetime
) -> dict[str, LastSeen]:
    """`seen` moved on by newer `polls` rows (a round's): their last poll, observation and
    backoff; whether a number is usually in trouble stays what the history said (a round is
    too short to change it)."""
    updated = dict(seen)
    for number, newer in seen_from_polls(polls, key, now).items():
        older = seen.get(number)
        if older is not None:
            flipped = older.in_trouble != newer.in_trouble
            newer = replace(
                newer,
                observed_at=newer.observed_at or older.observed_at,
                retry_after=newer.retry_after if newer.observed_at else older.retry_after,
                usually_in_trouble=older.usually_in_trouble,
                changed_at=newer.polled_at if flipped else older.changed_at,
            )
        updated[number] = newer
    return updated
