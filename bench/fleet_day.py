"""A simulated day of scheduled collection at Kapso's real limits: rolling runs vs today's.

    .venv/bin/python bench/fleet_day.py [--only NAME] [--write]

The real parts on simulated time (`simulator/virtual_time.py`: the event loop's clock jumps over
idle waits, so the day passes in the minutes its work takes): the simulator's HTTP server on
loopback (`simulator/server.py`: each project's own limiter of 5 a second and 60 a minute
answering 429, Kapso's 3-minute cache, 20-80 ms latency) and its fleets, whose hourly episodes
are the truth of when a number's state changed; the client with its retries and limiter; the
planner and the rolling rounds (`tasks/plan.py`, `tasks/rolling.py`); flatten and the Parquet
store, and the history read back for each run's plan; the report's coverage from the report
itself (`build_reports`). Not Prefect: the schedule is a loop that starts a run every 15
minutes. Three hours of warm-up precede the measured day, two follow it.

- rolling: each run opens its window (`open_window`, 14.75 min) and polls in rounds
  (`poll_rounds`), as the scheduled deployment does;
- baseline (today): each run polls every number in list order; a run due while the previous
  one is still going is cancelled (CANCEL_NEW).

`--write` replaces the "Fleets" section of BENCHMARKS.md with the table printed.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import math
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from kapso_health.reports.build import build_reports
from kapso_health.reports.policy import Policy
from kapso_health.simulator import virtual_time
from kapso_health.simulator.fleet import EPISODE_SECONDS, Fleet, Number
from kapso_health.simulator.server import Project as SimulatedProject
from kapso_health.simulator.server import Simulator, SimulatorConfig, serving
from kapso_health.tasks.client import KapsoClient
from kapso_health.tasks.fetch import numbers_table, poll_numbers
from kapso_health.tasks.flatten import flatten_polls, number_ids
from kapso_health.tasks.last_observations import SEEN_COLUMNS, Known
from kapso_health.tasks.plan import capacity
from kapso_health.tasks.rolling import poll_rounds, start_window
from kapso_health.tasks.schemas import to_pandas
from kapso_health.tasks.settings import (
    MAX_GAP_MINUTES,
    RATE_PER_MINUTE,
    RATE_PER_SECOND,
    SCHEDULE_MINUTES,
    WINDOW_MINUTES,
    ApiKey,
    connection_settings,
)
from kapso_health.tasks.storage import ParquetStore

DAY_START = datetime(2026, 3, 2, tzinfo=UTC)  # the measured day is [DAY_START, +1 day)
WARMUP = timedelta(hours=3)
TAIL = timedelta(hours=2)
ORIGIN = DAY_START - WARMUP  # the simulated clock starts here
DAY = 86_400.0
INTERVAL = SCHEDULE_MINUTES * 60
FLAVOUR = "platform"
KEY = "phone_number_id"  # the polled id of the platform flavour
PROJECTS = (("alpha", 2000, 11), ("bravo", 2000, 12), ("charlie", 2000, 13), ("delta", 500, 14))
BAD = frozenset({"limited", "webhook_unverified", "blocked", "disconnected"})
MODELS = ("rolling", "baseline")


@dataclass
class ProjectDay:
    """One project's day under one model: what its runs did and what the server saw."""

    name: str
    size: int
    seed: int
    accepted: list[float] = field(default_factory=list)  # simulated seconds of each
    runs: int = 0
    cancelled: int = 0  # runs due while the previous one still went (in the measured day)
    longest: float = 0.0  # seconds
    late: int = 0  # runs that ended after their window
    requests: int = 0  # health requests the client sent
    throttled: int = 0  # answered 429


def listed_size(size: int, seed: int) -> int:
    """How many numbers the simulated project needs for `size` of them to be listed."""
    fleet = Fleet(int(size * 1.1) + 20, seed)
    kept = [i for i, n in enumerate(fleet.numbers) if n.profile != "deleted"]
    return kept[size - 1] + 1


async def simulate(model: str, root: Path, chosen: list[tuple[str, int, int]]) -> list[ProjectDay]:
    """One model's day for every chosen project, each with its own server-side budget."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, virtual_time.VirtualTimeLoop)
    served = [
        SimulatedProject(name, (f"key-{name}",), numbers=listed_size(size, seed), seed=seed)
        for name, size, seed in chosen
    ]
    simulator = Simulator(SimulatorConfig(projects=served), clock=loop.epoch, monotonic=loop.time)
    days = [ProjectDay(name, size, seed) for name, size, seed in chosen]
    for state, day in zip(simulator.projects, days, strict=True):
        take = state.limiter.take

        def recorded(now: float, take=take, day=day) -> None:
            day.accepted.append(now - WARMUP.total_seconds())
            take(now)

        state.limiter.take = recorded  # type: ignore[method-assign]
    async with serving(simulator) as url:
        await asyncio.gather(*(schedule(model, day, root / day.name, url) for day in days))
    return days


async def schedule(model: str, day: ProjectDay, root: Path, url: str) -> None:
    """A run every 15 minutes of the simulated day (and its warm-up and tail)."""
    loop = asyncio.get_running_loop()
    settings = connection_settings(
        ApiKey(f"key-{day.name}"), FLAVOUR, f"{url}/platform/v1", RATE_PER_SECOND, RATE_PER_MINUTE
    )
    store = ParquetStore(str(root))
    async with KapsoClient(settings, clock=loop.at) as client:
        listing = await numbers_table(client, "listing", day.name)
    store.write("numbers", listing, "listing", "numbers")
    ids = listing.column(KEY).to_pylist()
    known_ids = number_ids(listing, FLAVOUR)
    end = (WARMUP + timedelta(days=1) + TAIL).total_seconds()
    running: asyncio.Task | None = None
    start = 0.0
    while start < end:
        await asyncio.sleep(max(0.0, start - loop.time()))
        in_day = 0 <= start - WARMUP.total_seconds() < DAY
        if running is not None and not running.done():
            day.cancelled += in_day
        else:
            run = rolling_run if model == "rolling" else full_sweep
            running = asyncio.create_task(
                run(day, settings, store, ids, known_ids, loop.at(), start)
            )
            day.runs += in_day
        start += INTERVAL
    if running is not None:
        await running


async def rolling_run(day, settings, store, ids, known_ids, at, start) -> None:
    """One scheduled rolling run, as `collect_project` does it (without Prefect)."""
    loop = asyncio.get_running_loop()
    run_id = f"{day.name}{at:%Y%m%dT%H%M}"
    async with KapsoClient(settings, clock=loop.at) as client:
        known = Known.read(store, at, run_id, KEY)
        seen = start_window(client, store, KEY, day.name, run_id, at, WINDOW_MINUTES)
        room = capacity(len(ids), settings.rate_per_minute, WINDOW_MINUTES, SCHEDULE_MINUTES)

        async def poll_round(planned: dict[str, datetime], index: int) -> pd.DataFrame:
            results = await poll_numbers(client, list(planned), known.skip_until, None, planned)
            return store_polls(store, results, run_id, f"r{index:03d}", known, known_ids, day)

        cadence = timedelta(minutes=room.cadence_minutes or 0)
        await poll_rounds(client, ids, seen, KEY, cadence, poll_round, room.allowed)
        finish(day, client, loop.time() - start)


async def full_sweep(day, settings, store, ids, known_ids, at, start) -> None:
    """One run of today's model: every number, in list order, however long it takes."""
    loop = asyncio.get_running_loop()
    run_id = f"{day.name}{at:%Y%m%dT%H%M}"
    async with KapsoClient(settings, clock=loop.at) as client:
        known = Known.read(store, at, run_id, KEY)
        results = await poll_numbers(client, ids, known.skip_until)
        store_polls(store, results, run_id, "sweep", known, known_ids, day)
        finish(day, client, loop.time() - start)


def store_polls(store, results, run_id, part, known, known_ids, day) -> pd.DataFrame:
    """Flatten and store a round's polls (the `polls` table: the benchmark reads no other)."""
    flat = flatten_polls(results, run_id, known.checked_at, FLAVOUR, known_ids, day.name)
    store.write("polls", flat.polls, run_id, part)
    known.learn(flat.polls, KEY)
    return to_pandas(flat.polls.select([KEY, *SEEN_COLUMNS]))


def finish(day: ProjectDay, client: KapsoClient, seconds: float) -> None:
    day.requests += client.limiter.requests
    day.throttled += client.limiter.throttled
    day.longest = max(day.longest, seconds)
    day.late += seconds > WINDOW_MINUTES * 60 and client.deadline is not None


# measures


@dataclass
class Measures:
    budget_used: float
    throttled_share: float
    intervals: list[float]  # minutes, every interval ending inside the day
    observed: float  # share of the day an observation holds, by the report's default rule
    observed_fixed: float  # the same by today's fixed 30-minute rule
    coverage: float  # the report's coverage (a known state), its default rule
    worsening: list[float]  # minutes from a true change to the first observation showing it
    recovery: list[float]
    missed: Counter


def truth_changes(fleet: Fleet, number: Number) -> list[tuple[float, str, str]]:
    """(seconds into the day, state before, state after) of every change of the number's
    state, from the episode before the warm-up to the end of the tail."""
    first = int((ORIGIN.timestamp() + number.offset) // EPISODE_SECONDS)
    last = int(
        (DAY_START.timestamp() + DAY + TAIL.total_seconds() + number.offset) // EPISODE_SECONDS
    )
    changes, previous = [], None
    for episode in range(first, last + 1):
        at = episode * EPISODE_SECONDS - number.offset
        state = fleet._state(number, at)
        if previous is not None and state != previous:
            changes.append((at - DAY_START.timestamp(), previous, state))
        previous = state
    return changes


def measure(day: ProjectDay, root: Path) -> Measures:
    store = ParquetStore(str(root))
    the_day = DAY_START.date()
    polls = store.read(
        "polls",
        the_day - timedelta(days=1),
        the_day + timedelta(days=1),
        columns=[KEY, "config_id", "polled_at", "checked_at", "outcome"],
    )
    polls = polls[polls["outcome"].eq("ok")].sort_values([KEY, "polled_at"])
    polls = polls.drop_duplicates([KEY, "checked_at"])
    base = DAY_START.timestamp()
    sent = {
        number: (
            (group["polled_at"].astype("int64") / 1e6 - base).tolist(),
            (group["checked_at"].astype("int64") / 1e6 - base).tolist(),
        )
        for number, group in polls.groupby(KEY)
    }
    config_of = dict(zip(polls[KEY], polls["config_id"], strict=True))
    fleet = Fleet(listed_size(day.size, day.seed), day.seed)
    intervals, worsening, recovery, missed = [], [], [], Counter()
    for number in fleet.numbers:
        if number.profile == "deleted":
            continue
        polled, checked = sent.get(number.phone_number_id, ([], []))
        intervals.extend((b - a) / 60 for a, b in itertools.pairwise(polled) if 0 <= b < DAY)
        changes = truth_changes(fleet, number)
        for index, (at, before, after) in enumerate(changes):
            if not 0 <= at < DAY:
                continue
            if before == "healthy" and after in BAD:
                kind, found = "worsening", worsening
            elif before in BAD and after == "healthy":
                kind, found = "recovery", recovery
            else:
                continue
            until = changes[index + 1][0] if index + 1 < len(changes) else DAY * 2
            first = bisect.bisect_left(checked, at)  # the first body Kapso checked after it
            if first < len(checked) and checked[first] < until:
                found.append((polled[first] - at) / 60)
            else:
                missed[kind] += 1
    observed, known = {}, {}
    for rule, policy in (
        ("cadence", Policy(max_gap=None)),
        ("fixed", Policy(max_gap=timedelta(minutes=MAX_GAP_MINUTES))),
    ):
        daily = build_reports(store, [the_day], policy)["availability_daily"]
        known[rule] = daily["coverage"].fillna(0).mean()
        gaps = dict(zip(daily["config_id"], daily["max_gap_seconds"], strict=True))
        observed[rule] = statistics.fmean(
            held(sent[number][1], gaps.get(config_of[number], 0.0)) / DAY if number in sent else 0.0
            for number in (n.phone_number_id for n in fleet.numbers if n.profile != "deleted")
        )
    in_day = sum(1 for t in day.accepted if 0 <= t < DAY)
    return Measures(
        budget_used=in_day / (RATE_PER_MINUTE * DAY / 60),
        throttled_share=day.throttled / max(day.requests, 1),
        intervals=intervals,
        observed=observed["cadence"],
        observed_fixed=observed["fixed"],
        coverage=known["cadence"],
        worsening=worsening,
        recovery=recovery,
        missed=missed,
    )


def held(checked: list[float], gap: float) -> float:
    """Seconds of the day in which one of the observations (sorted seconds into the day)
    holds: each until the next one, at most `gap`."""
    total = 0.0
    for index, at in enumerate(checked):
        following = checked[index + 1] if index + 1 < len(checked) else math.inf
        total += max(0.0, min(at + gap, following, DAY) - max(at, 0.0))
    return total


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else math.nan


def _fig(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} / {_quantile(values, 0.95):.1f}" if values else "-"


def table(
    results: list[tuple[ProjectDay, Measures, ProjectDay, Measures]],
) -> tuple[str, list[str]]:
    lines = [
        f"Simulated day, runs every {INTERVAL / 60:g} min, rolling window {WINDOW_MINUTES:g} "
        f"min, {RATE_PER_SECOND:g}/s and {RATE_PER_MINUTE:g}/min per project (the simulator's "
        "limiter answers 429 beyond them). Floor: uniform round robin at the same budget "
        "(interval N/60 min, detection median N/120 min). Figures: median / p95 in minutes.",
        "",
        "| project | measure | rolling | baseline (today) | floor | target | holds |",
        "|---|---|---|---|---|---|---|",
    ]
    verdicts: list[str] = []

    def row(project, measure, r, b, floor, target, ok):
        mark = "" if ok is None else ("yes" if ok else "**no**")
        lines.append(f"| {project} | {measure} | {r} | {b} | {floor} | {target} | {mark} |")
        if ok is not None:
            verdicts.append(f"{project}: {measure} ({target}): {'holds' if ok else 'FAILS'}")

    for rd, r, bd, b in results:
        n = rd.size
        project = f"{rd.name} ({n:,})"
        room = capacity(n, RATE_PER_MINUTE, WINDOW_MINUTES, SCHEDULE_MINUTES)
        floor_interval = max(n / RATE_PER_MINUTE, INTERVAL / 60)
        floor_detect = floor_interval / 2
        row(project, "capacity", room.line(), "", "", "", None)
        row(
            project,
            "budget used",
            f"{r.budget_used:.1%}",
            f"{b.budget_used:.1%}",
            "100%",
            ">= 95%",
            r.budget_used >= 0.95,
        )
        row(
            project,
            "requests answered 429",
            f"{rd.throttled:,} of {rd.requests:,} ({r.throttled_share:.2%})",
            f"{bd.throttled:,} of {bd.requests:,} ({b.throttled_share:.2%})",
            "",
            "< 1%",
            r.throttled_share < 0.01,
        )
        row(
            project,
            "runs (cancelled) / longest",
            f"{rd.runs} ({rd.cancelled} cancelled) / {rd.longest / 60:.1f} min, "
            f"{rd.late} past window",
            f"{bd.runs} ({bd.cancelled} cancelled) / {bd.longest / 60:.1f} min",
            "",
            "ends inside window, none cancelled",
            rd.late == 0 and rd.cancelled == 0,
        )
        row(
            project,
            "interval between observations",
            _fig(r.intervals),
            _fig(b.intervals),
            f"{floor_interval:.1f}",
            "",
            None,
        )
        row(
            project,
            "report coverage: the day held by observations (each number's cadence, the default)",
            f"{r.observed:.2%}",
            f"{b.observed:.2%}",
            "100%",
            ">= 99%",
            r.observed >= 0.99,
        )
        row(
            project,
            "the same by today's fixed 30-min rule",
            f"{r.observed_fixed:.2%}",
            f"{b.observed_fixed:.2%}",
            "",
            "",
            None,
        )
        row(
            project,
            "the report's `coverage` (a known state: `error` bodies are unknown)",
            f"{r.coverage:.2%}",
            f"{b.coverage:.2%}",
            "",
            "",
            None,
        )
        row(
            project,
            f"detect worsening (n={len(r.worsening)}, missed {r.missed['worsening']}"
            f" vs {b.missed['worsening']})",
            _fig(r.worsening),
            _fig(b.worsening),
            f"{floor_detect:.1f}",
            f"median <= {1.2 * floor_detect:.1f} (1.2 x floor)",
            statistics.median(r.worsening) <= 1.2 * floor_detect,
        )
        row(
            project,
            f"detect recovery (n={len(r.recovery)}, missed {r.missed['recovery']}"
            f" vs {b.missed['recovery']})",
            _fig(r.recovery),
            _fig(b.recovery),
            f"{floor_detect:.1f}",
            f"median <= {statistics.median(b.recovery) / 3:.1f} (baseline / 3)",
            statistics.median(r.recovery) * 3 <= statistics.median(b.recovery),
        )
        if room.covers_fleet:
            row(
                project,
                "no worse than today",
                "",
                "",
                "",
                "coverage, interval, detection",
                r.observed >= b.observed
                and statistics.median(r.intervals) <= statistics.median(b.intervals) + 0.1
                and statistics.median(r.worsening) <= statistics.median(b.worsening) * 1.05
                and statistics.median(r.recovery) <= statistics.median(b.recovery) * 1.05,
            )
    return "\n".join(lines), verdicts


SECTION = "## Fleets: rolling collection over a simulated day"


def write_section(text: str, verdicts: list[str], seconds: float) -> None:
    path = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
    current = path.read_text()
    body = (
        f"{SECTION}\n\nRun with `.venv/bin/python bench/fleet_day.py --write` "
        f"({seconds / 60:.0f} min on 2 cores; run {datetime.now(UTC):%Y-%m-%d}). "
        + " ".join((__doc__ or "").split("\n\n")[2:4]).replace("\n", " ")
        + "\n\n"
        + text
        + "\n\n"
        + "\n".join(verdicts)
        + "\n"
    )
    start = current.find(SECTION)
    after = current.find("\n## ", start + 1) if start >= 0 else -1
    if start < 0:
        current = current.rstrip() + "\n\n" + body
    else:
        current = current[:start] + body + ("" if after < 0 else current[after:])
    path.write_text(current)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--only", help="one project name (quicker)")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args(argv)
    chosen = [p for p in PROJECTS if args.only in (None, p[0])]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fleet-day-") as tmp:
        days = {}
        for model in MODELS:
            clock = time.perf_counter()
            days[model] = virtual_time.run(simulate(model, Path(tmp) / model, chosen), ORIGIN)
            print(f"{model}: simulated in {time.perf_counter() - clock:.0f} s", file=sys.stderr)
        results = [
            (
                r,
                measure(r, Path(tmp) / "rolling" / r.name),
                b,
                measure(b, Path(tmp) / "baseline" / b.name),
            )
            for r, b in zip(days["rolling"], days["baseline"], strict=True)
        ]
    text, verdicts = table(results)
    seconds = time.perf_counter() - began
    print(text + "\n\n" + "\n".join(verdicts) + f"\n\n{seconds:.0f} s")
    if args.write:
        write_section(text, verdicts, seconds)
    return 0 if all(v.endswith("holds") for v in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
