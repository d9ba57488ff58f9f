"""A simulated day of scheduled collection at Kapso's real limits: rolling plan vs today.

    .venv/bin/python bench/fleet_day.py [--trouble-minutes 6] [--window-minutes 14.5]

Discrete-event simulation in one process, on simulated time (no HTTP, no Prefect, no sleeping):
runs start every 15 minutes; each project has its own budget, a sliding window of 5 requests a
second and 60 a minute (a send waits until it fits, so no request is ever answered 429); a poll
is its send time (it takes 50 ms). The simulator's `Fleet` gives each poll its body and is the
truth of when a number's state changed (hourly episodes). Three hours of warm-up precede the
measured day, and two hours follow it so late changes can still be detected.

- rolling: each run calls the real planner (`plan_polls`) with the last poll of every number, its
  trouble (`in_trouble`) and Kapso's `retry_after`, then polls the plan in order until the window
  ends.
- baseline (today): every run polls every number in list order; a run that starts while the
  previous one is still going is cancelled (CANCEL_NEW).

Both skip a number while Kapso backs it off (`retry_after`), as the collect flow does; a skip
costs no request and is no observation.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kapso_health.simulator.fleet import EPISODE_SECONDS, Fleet, Number
from kapso_health.tasks.flatten import body_error
from kapso_health.tasks.plan import LastSeen, capacity, in_trouble, plan_polls
from kapso_health.tasks.settings import (
    CADENCE_GAP_FACTOR,
    CADENCE_GAP_MAX_MINUTES,
    CADENCE_GAP_MIN_MINUTES,
    MAX_GAP_MINUTES,
    RATE_PER_MINUTE,
    RATE_PER_SECOND,
    SCHEDULE_MINUTES,
    WINDOW_MINUTES,
)
from kapso_health.tasks.vocabulary import Outcome

START = datetime(2026, 3, 2, tzinfo=UTC)  # the measured day is [START, START + 1 day)
EPOCH = START.timestamp()
DAY = 86_400.0
WARMUP = 3 * 3600.0
TAIL = 2 * 3600.0
INTERVAL = SCHEDULE_MINUTES * 60  # the schedule: a run every 15 minutes
PER_SECOND, PER_MINUTE = int(RATE_PER_SECOND), int(RATE_PER_MINUTE)  # Kapso's, per project
POLL_SECONDS = 0.05
FLAVOUR = "platform"
PROJECTS = (("alpha", 2000, 11), ("bravo", 2000, 12), ("charlie", 2000, 13), ("delta", 500, 14))
BAD = frozenset({"limited", "webhook_unverified", "blocked", "disconnected"})  # the number's own
ASPECTS = ("status", "can_send_message", "quality_rating", "phone_status")
BASELINE_MAX_GAP = MAX_GAP_MINUTES * 60.0  # today's report: a fixed gap
GAP_RANGE = (CADENCE_GAP_MIN_MINUTES * 60.0, CADENCE_GAP_MAX_MINUTES * 60.0)


class Budget:
    """Kapso's health limiter of one project: at most 5 sends in any second, 60 in any minute."""

    def __init__(self) -> None:
        self.second: deque[float] = deque()
        self.minute: deque[float] = deque()
        self.sent = 0
        self.sent_in_day = 0

    def earliest(self, t: float) -> float:
        """The first time at or after `t` when one more request fits."""
        while True:
            while self.minute and self.minute[0] <= t - 60:
                self.minute.popleft()
            while self.second and self.second[0] <= t - 1:
                self.second.popleft()
            if len(self.minute) >= PER_MINUTE:
                t = self.minute[0] + 60
            elif len(self.second) >= PER_SECOND:
                t = self.second[0] + 1
            else:
                return t

    def send(self, t: float) -> None:
        self.second.append(t)
        self.minute.append(t)
        self.sent += 1
        self.sent_in_day += 0 <= t < DAY


@dataclass
class Model:
    """One model's day on one project: every observation and what the planner needs."""

    name: str
    fleet: Fleet
    numbers: list[Number]
    budget: Budget = field(default_factory=Budget)
    observed: dict[str, list[float]] = field(default_factory=dict)  # ok polls, send times
    polled: dict[str, float] = field(default_factory=dict)  # last poll, any outcome
    rows: dict[str, dict] = field(default_factory=dict)  # last poll's row
    changed: dict[str, float] = field(default_factory=dict)  # last change of an aspect
    retry_after: dict[str, float] = field(default_factory=dict)
    runs: int = 0
    cancelled: int = 0
    longest_run: float = 0.0
    late_runs: int = 0  # rolling runs that ended outside their window

    def poll(self, number: Number, t: float) -> float:
        """Poll (or skip while Kapso backs off) at `t` or as soon as the budget allows; the
        time the poll was sent (or skipped)."""
        number_id = number.phone_number_id
        until = self.retry_after.get(number_id)
        if until is not None and until > t:
            self.polled[number_id] = t
            self.rows[number_id] = {"outcome": Outcome.SKIPPED.value}
            return t
        self.budget.send(t)
        body = self.fleet.health(number, FLAVOUR, EPOCH + t)
        checks = body.get("checks") or {}
        access = (checks.get("phone_number_access") or {}).get("details") or {}
        messaging = (checks.get("messaging_health") or {}).get("details") or {}
        row = {
            "outcome": Outcome.OK.value,
            "status": body.get("status"),
            "error": body_error(body),
            "quality_rating": access.get("quality_rating"),
            "phone_status": access.get("status"),
            "can_send_message": messaging.get("can_send_message"),
        }
        before = self.rows.get(number_id)
        if before is not None and any(before.get(a) != row[a] for a in ASPECTS):
            self.changed[number_id] = t
        if body.get("retry_after"):
            self.retry_after[number_id] = (
                datetime.fromisoformat(body["retry_after"]).timestamp() - EPOCH
            )
        self.rows[number_id] = row
        self.polled[number_id] = t
        self.observed.setdefault(number_id, []).append(t)
        return t


def _at(t: float) -> datetime:
    return START + timedelta(seconds=t)


def run_rolling(model: Model, window: float, trouble: timedelta) -> None:
    ids = [n.phone_number_id for n in model.numbers]
    by_id = {n.phone_number_id: n for n in model.numbers}
    cadence = capacity(len(ids), PER_MINUTE, window / 60, INTERVAL / 60).cadence_minutes
    assert cadence is not None
    start = -WARMUP
    while start < DAY + TAIL:
        now = _at(start)
        last = {}
        for number_id, polled in model.polled.items():
            changed = model.changed.get(number_id)
            row = model.rows[number_id]
            until = model.retry_after.get(number_id)
            last[number_id] = LastSeen(
                polled_at=_at(polled),
                observed_at=None,
                in_trouble=in_trouble(row, now, None if changed is None else _at(changed)),
                retry_after=None if until is None else _at(until),
            )
        plan = plan_polls(
            ids, last, now, PER_MINUTE, window / 60, timedelta(minutes=cadence), trouble
        )
        model.runs += 1
        t = end = start
        for number_id in plan:
            t = model.budget.earliest(t)
            if t > start + window:
                break  # the window is spent: stop starting requests
            t = model.poll(by_id[number_id], t)
            end = t + POLL_SECONDS
        model.longest_run = max(model.longest_run, end - start)
        model.late_runs += end > start + window
        start += INTERVAL


def run_baseline(model: Model) -> None:
    busy_until = -WARMUP
    start = -WARMUP
    while start < DAY + TAIL:
        if start < busy_until:
            model.cancelled += start >= 0 and start < DAY
        else:
            model.runs += 1
            t = end = start
            for number in model.numbers:
                t = model.poll(number, model.budget.earliest(t))
                end = t + POLL_SECONDS
            busy_until = end
            model.longest_run = max(model.longest_run, end - start)
        start += INTERVAL


# measures


@dataclass
class Measures:
    budget_used: float
    intervals: list[float]  # minutes, every interval ending inside the day
    coverage: float
    worsening: list[float]  # minutes from true change to first observation showing it
    recovery: list[float]
    missed_worsening: int
    missed_recovery: int


def truth_changes(fleet: Fleet, number: Number) -> list[tuple[float, str, str]]:
    """(time, state before, state after) of every change of the number's state, from the
    episode before the day to the end of the simulation."""
    first = int((EPOCH - WARMUP + number.offset) // EPISODE_SECONDS)
    last = int((EPOCH + DAY + TAIL + number.offset) // EPISODE_SECONDS)
    changes = []
    previous = None
    for episode in range(first, last + 1):
        at = episode * EPISODE_SECONDS - number.offset  # epoch of the episode's start
        state = fleet._state(number, at)
        if previous is not None and state != previous:
            changes.append((at - EPOCH, previous, state))
        previous = state
    return changes


def measure(model: Model, max_gap: float | None) -> Measures:
    intervals: list[float] = []
    covered = 0.0
    worsening: list[float] = []
    recovery: list[float] = []
    missed = {"worsening": 0, "recovery": 0}
    for number in model.numbers:
        seen = model.observed.get(number.phone_number_id, [])
        own = [b - a for a, b in itertools.pairwise(seen) if 0 <= b < DAY]
        intervals.extend(gap / 60 for gap in own)
        gap = max_gap
        if gap is None:  # the number's own cadence, as the report will default to
            spans = [b - a for a, b in itertools.pairwise(seen) if b < DAY]
            middle = statistics.median(spans) if spans else GAP_RANGE[1]
            gap = min(max(CADENCE_GAP_FACTOR * middle, GAP_RANGE[0]), GAP_RANGE[1])
        covered += _covered(seen, gap)
        changes = truth_changes(model.fleet, number)
        for index, (at, before, after) in enumerate(changes):
            if not 0 <= at < DAY:
                continue
            if before == "healthy" and after in BAD:
                kind, found = "worsening", worsening
            elif before in BAD and after == "healthy":
                kind, found = "recovery", recovery
            else:
                continue
            until = changes[index + 1][0] if index + 1 < len(changes) else DAY + TAIL
            first = bisect.bisect_left(seen, at)
            if first < len(seen) and seen[first] < until:
                found.append((seen[first] - at) / 60)
            else:
                missed[kind] += 1
    return Measures(
        budget_used=model.budget.sent_in_day / (PER_MINUTE * DAY / 60),
        intervals=intervals,
        coverage=covered / (DAY * len(model.numbers)),
        worsening=worsening,
        recovery=recovery,
        missed_worsening=missed["worsening"],
        missed_recovery=missed["recovery"],
    )


def _covered(seen: list[float], gap: float) -> float:
    """Seconds of the day in which the number's last observation is at most `gap` old."""
    total = 0.0
    for index, at in enumerate(seen):
        following = seen[index + 1] if index + 1 < len(seen) else DAY + TAIL
        lo, hi = max(at, 0.0), min(at + gap, following, DAY)
        total += max(0.0, hi - lo)
    return total


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _fig(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {_quantile(values, 0.95):.1f}" if values else "-"


# the day


def simulate(name: str, size: int, seed: int, window: float, trouble: timedelta) -> dict:
    began = time.perf_counter()
    fleet = Fleet(int(size * 1.05) + 10, seed)
    numbers = [n for n in fleet.numbers if n.profile != "deleted"][:size]  # what the list gives
    rolling = Model("rolling", fleet, numbers)
    run_rolling(rolling, window, trouble)
    baseline = Model("baseline", fleet, numbers)
    run_baseline(baseline)
    return {
        "name": name,
        "size": size,
        "rolling": rolling,
        "baseline": baseline,
        "r": measure(rolling, None),
        "b": measure(baseline, BASELINE_MAX_GAP),
        "b_cadence": measure(baseline, None),
        "capacity": capacity(size, PER_MINUTE, window / 60, INTERVAL / 60),
        "seconds": time.perf_counter() - began,
    }


def table(results: list[dict], window: float, trouble: timedelta) -> tuple[str, list[str]]:
    lines = [
        f"Simulated day, runs every {INTERVAL / 60:g} min, rolling window {window / 60:g} min, "
        f"trouble interval {trouble.total_seconds() / 60:g} min, {PER_SECOND}/s and "
        f"{PER_MINUTE}/min per project. Floor: uniform round robin at the same budget "
        "(interval N/60 min, detection median N/120 min). Figures: median / p95 in minutes.",
        "",
        "| project | measure | rolling | baseline (today) | floor | target | holds |",
        "|---|---|---|---|---|---|---|",
    ]
    verdicts: list[str] = []

    def row(project: str, measure: str, r: str, b: str, floor: str, target: str, ok: bool | None):
        mark = "" if ok is None else ("yes" if ok else "**no**")
        lines.append(f"| {project} | {measure} | {r} | {b} | {floor} | {target} | {mark} |")
        if ok is not None:
            verdicts.append(f"{project}: {measure} ({target}): {'holds' if ok else 'FAILS'}")

    for res in results:
        r, b, n = res["r"], res["b"], res["size"]
        rm, bm = res["rolling"], res["baseline"]
        project = f"{res['name']} ({n:,})"
        floor_interval, floor_detect = n / PER_MINUTE, n / (2 * PER_MINUTE)
        small = n <= res["capacity"].allowed
        row(project, "capacity", res["capacity"].line(), "", "", "", None)
        row(
            project,
            "budget used",
            f"{r.budget_used:.1%}",
            f"{b.budget_used:.1%}",
            "100%",
            ">= 95%" if not small else ">= 95% (not reachable: once a run)",
            r.budget_used >= 0.95,
        )
        row(project, "429s", "0 (model keeps to the limits)", "0", "", "< 1%", None)
        row(
            project,
            "runs (cancelled) / longest",
            f"{rm.runs} / {rm.longest_run / 60:.1f} min, {rm.late_runs} past window",
            f"{bm.runs} ({bm.cancelled} cancelled today) / {bm.longest_run / 60:.1f} min",
            "",
            "ends inside window",
            rm.late_runs == 0,
        )
        row(
            project,
            "interval between observations",
            _fig(r.intervals),
            _fig(b.intervals),
            f"{max(floor_interval, INTERVAL / 60):.1f}",
            "",
            None,
        )
        row(
            project,
            "report coverage",
            f"{r.coverage:.2%}",
            f"{b.coverage:.2%}",
            "100%",
            ">= 99%",
            r.coverage >= 0.99,
        )
        row(
            project,
            "report coverage, baseline under the new report rule (per-number cadence)",
            "",
            f"{res['b_cadence'].coverage:.2%}",
            "",
            "",
            None,
        )
        worse_floor = max(floor_detect, INTERVAL / 120)
        row(
            project,
            f"detect worsening (n={len(r.worsening)}, missed {r.missed_worsening}"
            f" vs {b.missed_worsening})",
            _fig(r.worsening),
            _fig(b.worsening),
            f"{worse_floor:.1f}",
            f"median <= {1.2 * worse_floor:.1f}",
            statistics.median(r.worsening) <= 1.2 * worse_floor,
        )
        row(
            project,
            f"detect recovery (n={len(r.recovery)}, missed {r.missed_recovery}"
            f" vs {b.missed_recovery})",
            _fig(r.recovery),
            _fig(b.recovery),
            f"{worse_floor:.1f}",
            f"median <= {statistics.median(b.recovery) / 3:.1f} (baseline / 3)",
            statistics.median(r.recovery) * 3 <= statistics.median(b.recovery),
        )
        if small:
            no_worse = (
                r.coverage >= b.coverage
                and statistics.median(r.intervals) <= statistics.median(b.intervals) + 0.1
                and statistics.median(r.worsening) <= statistics.median(b.worsening) * 1.05
                and statistics.median(r.recovery) <= statistics.median(b.recovery) * 1.05
            )
            row(
                project,
                "no worse than today",
                "",
                "",
                "",
                "coverage, interval, detection",
                no_worse,
            )
    return "\n".join(lines), verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-minutes", type=float, default=WINDOW_MINUTES)
    parser.add_argument("--trouble-minutes", type=float, default=None)
    parser.add_argument("--only", help="one project name (quicker)")
    args = parser.parse_args(argv)
    window = args.window_minutes * 60
    from kapso_health.tasks.plan import TROUBLE_INTERVAL

    trouble = (
        TROUBLE_INTERVAL
        if args.trouble_minutes is None
        else timedelta(minutes=args.trouble_minutes)
    )
    results = [
        simulate(name, size, seed, window, trouble)
        for name, size, seed in PROJECTS
        if args.only in (None, name)
    ]
    text, verdicts = table(results, window, trouble)
    print(text)
    print()
    for verdict in verdicts:
        print(verdict)
    print(f"\n{sum(res['seconds'] for res in results):.0f} s of computing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
