"""Benchmarks against the simulator, each side by side with its baseline in the same run.

    .venv/bin/python bench/run.py            # everything, writes BENCHMARKS.md
    .venv/bin/python bench/run.py --only flatten --no-write

Sections: `sweep` (rate-limited sweep vs a sequential loop and an unlimited gather),
`unthrottled` (whole flow vs a raw aiohttp client), `flatten` (vs pandas.json_normalize),
`shared` (two collection runs at once sharing a global rate limit vs one run for both),
`report` (one day and the whole range of a 1,000-number, 90-day and a 10,000-number, 30-day
history, each beside a DuckDB query for availability_daily alone; the histories are built once
into bench/.cache, which takes tens of minutes), `report_floor` (the same one-day report and
reference on a 10-number history: the report's fixed cost), `compaction` (reading
a day after 96 appends vs after compacting it), `s3` (collection, one day's report and
compaction with the history on moto's S3 server vs on local disk, and its PUT/COPY requests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import aiohttp
import httpx
import pandas as pd
import pyarrow.parquet as pq

from kapso_health.simulator.fleet import Fleet
from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import SimulatorConfig
from kapso_health.tasks.client import KapsoClient
from kapso_health.tasks.fetch import poll_numbers
from kapso_health.tasks.settings import ApiKey, ConnectionSettings

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
KEY = "bench-key"
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.s3: the S3 server the tests use


@dataclass
class Row:
    section: str
    measure: str
    value: str
    target: str = ""
    verdict: str = ""
    run: str = ""


def _ids(size: int) -> list[str]:
    return [n.config_id for n in Fleet(size).numbers if n.profile != "deleted"]


# --- rate-limited sweep -------------------------------------------------------------------

SWEEP_NUMBERS, LONG_SWEEP_NUMBERS, SWEEP_RPS, SWEEP_RPM = 600, 1_800, 50, 600
SWEEP_LATENCY = (200.0, 1500.0)
SEQUENTIAL_SAMPLE = 60


def _sweep_config(numbers: int = SWEEP_NUMBERS) -> SimulatorConfig:
    return SimulatorConfig(
        numbers=numbers,
        rate_per_second=SWEEP_RPS,
        rate_per_minute=SWEEP_RPM,
        latency_ms=SWEEP_LATENCY,
    )


def budget_floor(n: int, per_second: int, per_minute: int) -> float:
    """The earliest moment both sliding windows let the n-th request leave (from t=0)."""
    sent: list[float] = []
    for i in range(n):
        earliest = sent[-1] if sent else 0.0
        if i >= per_second:
            earliest = max(earliest, sent[i - per_second] + 1.0)
        if i >= per_minute:
            earliest = max(earliest, sent[i - per_minute] + 60.0)
        sent.append(earliest)
    return sent[-1]


async def _ours(base_url: str, ids: list[str]) -> tuple[float, Counter, int, int]:
    settings = ConnectionSettings(
        api_key=ApiKey(KEY),
        base_url=base_url,
        rate_per_second=SWEEP_RPS,
        rate_per_minute=SWEEP_RPM,
        max_in_flight=100,
    )
    started = time.perf_counter()
    async with KapsoClient(settings) as client:
        results = await poll_numbers(client, ids)
        requests, throttled = client.limiter.requests, client.limiter.throttled
    return (
        time.perf_counter() - started,
        Counter(r.outcome.value for r in results),
        requests,
        throttled,
    )


async def _sequential(base_url: str, ids: list[str]) -> tuple[float, Counter]:
    """Kapso's own health script: one request after another, no limiter, no retries."""
    codes: Counter = Counter()
    started = time.perf_counter()
    async with httpx.AsyncClient(headers={"X-API-Key": KEY}, timeout=30) as client:
        for number in ids:
            response = await client.get(f"{base_url}/whatsapp_configs/{number}/health")
            codes[response.status_code] += 1
    return time.perf_counter() - started, codes


async def _gather(base_url: str, ids: list[str]) -> tuple[float, Counter]:
    """Everything at once with asyncio.gather: no limiter, no retries."""
    started = time.perf_counter()
    async with aiohttp.ClientSession(
        headers={"X-API-Key": KEY}, connector=aiohttp.TCPConnector(limit=0)
    ) as session:

        async def one(number: str) -> int:
            async with session.get(f"{base_url}/whatsapp_configs/{number}/health") as response:
                await response.read()
                return response.status

        codes = Counter(await asyncio.gather(*(one(n) for n in ids)))
    return time.perf_counter() - started, codes


def bench_sweep() -> list[Row]:
    ids = _ids(SWEEP_NUMBERS)
    floor = len(ids) / SWEEP_RPS
    rows = []
    with running_simulator(_sweep_config()) as sim:
        seconds, outcomes, requests, throttled = asyncio.run(_ours(sim.base_url(), ids))
    lost = len(ids) - sum(outcomes.values())
    share = throttled / requests if requests else 0.0
    rows += [
        Row(
            "sweep",
            f"kapso-health: {len(ids)} numbers at {SWEEP_RPS}/s, {SWEEP_RPM}/min",
            f"{seconds:.1f} s = {seconds / floor:.3f} x floor ({floor:.1f} s = N / rate)",
            "<= 1.05 x floor",
            _verdict(seconds / floor <= 1.05),
        ),
        Row(
            "sweep",
            "kapso-health: requests answered 429",
            f"{throttled} of {requests} ({share:.2%})",
            "< 1%",
            _verdict(share < 0.01),
        ),
        Row(
            "sweep",
            "kapso-health: numbers without a row / not ok",
            f"{lost} / {len(ids) - outcomes['ok']} ({dict(outcomes)})",
            "0 lost",
            _verdict(lost == 0),
        ),
    ]
    long_ids = _ids(LONG_SWEEP_NUMBERS)
    with running_simulator(_sweep_config(LONG_SWEEP_NUMBERS)) as sim:
        seconds, outcomes, requests, throttled = asyncio.run(_ours(sim.base_url(), long_ids))
    schedule = budget_floor(len(long_ids), SWEEP_RPS, SWEEP_RPM) + SWEEP_LATENCY[1] / 1000
    rows.append(
        Row(
            "sweep",
            f"kapso-health: {len(long_ids)} numbers (the minute budget binds)",
            f"{seconds:.1f} s = {seconds / schedule:.3f} x budget floor ({schedule:.1f} s: last "
            f"send the windows allow + max latency); 429: {throttled} of {requests}; "
            f"outcomes {dict(outcomes)}",
            "<= 1.05 x floor (extra row)",
            _verdict(seconds / schedule <= 1.05),
        )
    )
    with running_simulator(_sweep_config()) as sim:
        seconds, codes = asyncio.run(_sequential(sim.base_url(), ids[:SEQUENTIAL_SAMPLE]))
    projected = seconds / SEQUENTIAL_SAMPLE * len(ids)
    rows.append(
        Row(
            "sweep",
            f"baseline sequential loop (measured on {SEQUENTIAL_SAMPLE}, projected to {len(ids)})",
            f"{projected:.0f} s = {projected / floor:.1f} x floor; codes {dict(codes)}",
        )
    )
    with running_simulator(_sweep_config()) as sim:
        seconds, codes = asyncio.run(_gather(sim.base_url(), ids))
    rows.append(
        Row(
            "sweep",
            "baseline unlimited asyncio.gather (no retries)",
            f"{seconds:.1f} s; {codes.get(429, 0)} of {len(ids)} answered 429 "
            f"= {codes.get(429, 0)} numbers lost; codes {dict(codes)}",
        )
    )
    return rows


# --- unthrottled whole flow ----------------------------------------------------------------

FLOW_NUMBERS, FLOW_LATENCY, FLOW_IN_FLIGHT = 10_000, (50.0, 50.0), 100


async def _raw(base_url: str, ids: list[str]) -> float:
    """A raw aiohttp client with the same concurrency: fetch and read every body, nothing more."""
    limit = asyncio.Semaphore(FLOW_IN_FLIGHT)
    connector = aiohttp.TCPConnector(limit=FLOW_IN_FLIGHT)
    started = time.perf_counter()
    async with aiohttp.ClientSession(headers={"X-API-Key": KEY}, connector=connector) as session:

        async def one(number: str) -> None:
            async with limit, session.get(f"{base_url}/whatsapp_configs/{number}/health") as r:
                await r.read()

        await asyncio.gather(*(one(n) for n in ids))
    return time.perf_counter() - started


def _flow_seconds(base_url: str, storage: str) -> tuple[float, dict]:
    from kapso_health.flows.collect import collect_health

    os.environ["KAPSO_API_KEY"] = KEY
    started = time.perf_counter()
    summary = asyncio.run(
        collect_health(
            base_url=base_url,
            storage=storage,
            rate_per_second=0,
            rate_per_minute=0,
            max_in_flight=FLOW_IN_FLIGHT,
            chunk_size=1000,
            ids=_ids(FLOW_NUMBERS),
        )
    )
    return time.perf_counter() - started, summary


def bench_unthrottled() -> list[Row]:
    from prefect.testing.utilities import prefect_test_harness

    ids = _ids(FLOW_NUMBERS)
    config = SimulatorConfig(
        numbers=FLOW_NUMBERS, rate_per_second=None, rate_per_minute=None, latency_ms=FLOW_LATENCY
    )
    with (
        running_simulator(config) as sim,
        prefect_test_harness(server_startup_timeout=180),
        tempfile.TemporaryDirectory() as storage,
    ):
        _flow_seconds(sim.base_url(), storage + "/warm-up")  # the server's first flow run
        raw = asyncio.run(_raw(sim.base_url(), ids))
        ours, summary = _flow_seconds(sim.base_url(), storage + "/measured")
    ratio = raw / ours
    rate = len(ids) / ours
    return [
        Row(
            "unthrottled",
            f"baseline raw aiohttp client, {len(ids)} numbers, 50 ms latency, "
            f"{FLOW_IN_FLIGHT} in flight",
            f"{len(ids) / raw:,.0f} numbers/s",
        ),
        Row(
            "unthrottled",
            "kapso-health whole flow (fetch + flatten + write), warm server",
            f"{rate:,.0f} numbers/s = {ratio:.2f} x raw; outcomes {summary['outcomes']}",
            ">= 0.8 x raw and >= 1,000/s",
            _verdict(ratio >= 0.8 and rate >= 1000),
        ),
    ]


# --- flattening ------------------------------------------------------------------------------

FLATTEN_BODIES = 20_000


def bench_flatten() -> list[Row]:
    from kapso_health.tasks.flatten import flatten_polls
    from kapso_health.tasks.poll import PollResult
    from kapso_health.tasks.vocabulary import Outcome

    fleet = Fleet(2_000, seed=4)
    rng = random.Random(4)
    start = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
    listed = [n for n in fleet.numbers if n.profile != "deleted"]
    bodies = [
        fleet.health(
            rng.choice(listed),
            rng.choice(("legacy", "platform")),
            start + rng.randrange(30 * 86400),
        )
        for _ in range(FLATTEN_BODIES)
    ]
    now = datetime.now(UTC)
    results = [PollResult(str(i), now, Outcome.OK, 200, 1, 1.0, b) for i, b in enumerate(bodies)]
    ours = _best_of(3, lambda: flatten_polls(results, "bench"))
    entities_path = ["checks", "messaging_health", "details", "entities"]
    with_entities = [
        b
        for b in bodies
        if isinstance(((b.get("checks") or {}).get("messaging_health") or {}).get("details"), dict)
    ]

    def normalize() -> None:
        pd.json_normalize(bodies)
        pd.json_normalize(with_entities, record_path=entities_path, meta=["timestamp"])

    baseline = _best_of(3, normalize)
    ratio = baseline / ours
    return [
        Row(
            "flatten",
            f"baseline pandas.json_normalize (wide + entity records), "
            f"{len(bodies):,} simulator bodies",
            f"{len(bodies) / baseline:,.0f} bodies/s",
        ),
        Row(
            "flatten",
            "kapso-health flatten_polls (polls + checks + entities + raw tables)",
            f"{len(bodies) / ours:,.0f} bodies/s = {ratio:.1f} x json_normalize",
            ">= 10 x",
            _verdict(ratio >= 10),
        ),
    ]


# --- two runs sharing one project's budget -------------------------------------------------

SHARED_NUMBERS, SHARED_LIMIT = 300, "bench-shared-budget"


async def _together(base_url: str, storage: str, sets: list[list[str]], shared: bool) -> dict:
    """Collection runs started at once (one per set); wall time, 429s and outcomes."""
    from kapso_health.flows.collect import collect_health

    started = time.perf_counter()
    summaries = await asyncio.gather(
        *(
            collect_health(
                ids=ids,
                base_url=base_url,
                storage=f"{storage}/{index}",
                rate_per_second=SWEEP_RPS,
                rate_per_minute=SWEEP_RPM,
                global_limit=SHARED_LIMIT if shared else None,
            )
            for index, ids in enumerate(sets)
        )
    )
    outcomes: Counter[str] = Counter()
    for summary in summaries:
        outcomes.update(summary["outcomes"])
    return {
        "seconds": time.perf_counter() - started,
        "requests": sum(s["requests"] for s in summaries),
        "throttled": sum(s["rate_limited_responses"] for s in summaries),
        "outcomes": dict(outcomes),
    }


def bench_shared() -> list[Row]:
    from prefect.client.orchestration import get_client
    from prefect.testing.utilities import prefect_test_harness

    from kapso_health.tasks.limiter import shared_limit_for

    ids = _ids(SHARED_NUMBERS)
    halves = [ids[: len(ids) // 2], ids[len(ids) // 2 :]]
    slots, decay = shared_limit_for(SWEEP_RPS, SWEEP_RPM)
    config = SimulatorConfig(
        numbers=SHARED_NUMBERS, rate_per_second=SWEEP_RPS, rate_per_minute=SWEEP_RPM
    )
    os.environ["KAPSO_API_KEY"] = KEY
    results = {}

    async def create_limit() -> None:
        async with get_client() as client:
            await client.upsert_global_concurrency_limit_by_name(SHARED_LIMIT, slots, decay)

    with prefect_test_harness(server_startup_timeout=180), tempfile.TemporaryDirectory() as out:
        asyncio.run(create_limit())
        for label, sets, shared in (
            ("one run, both sets, shared limit", [ids], True),
            ("two runs together, shared limit", halves, True),
            ("one run, both sets, no shared limit", [ids], False),
            ("two runs together, no shared limit", halves, False),
        ):
            with running_simulator(config) as sim:  # a fresh budget for each
                results[label] = asyncio.run(
                    _together(sim.base_url(), f"{out}/{label}", sets, shared)
                )
    one, two = (
        results["one run, both sets, shared limit"],
        results["two runs together, shared limit"],
    )
    ratio = two["seconds"] / one["seconds"]
    share = two["throttled"] / max(1, two["requests"])
    rows = [
        Row(
            "shared",
            f"{label} ({len(ids)} numbers at Kapso's limits x10: {SWEEP_RPS}/s, "
            f"{SWEEP_RPM}/min; limit {slots} slots, {decay}/s decay)",
            f"{r['seconds']:.1f} s; 429: {r['throttled']} of {r['requests']}; "
            f"outcomes {r['outcomes']}",
        )
        for label, r in results.items()
        if label != "two runs together, shared limit"
    ]
    rows.append(
        Row(
            "shared",
            "kapso-health: two runs together, shared limit",
            f"{two['seconds']:.1f} s = {ratio:.2f} x one run for both sets; 429: "
            f"{two['throttled']} of {two['requests']} ({share:.2%}); outcomes {two['outcomes']}",
            "<= 1.1 x one run, 429 < 1%",
            _verdict(ratio <= 1.1 and share < 0.01),
        )
    )
    return rows


# --- reports over a long history ---------------------------------------------------------------

HISTORY_NUMBERS, HISTORY_DAYS = 1000, 90
HISTORIES = ((HISTORY_NUMBERS, HISTORY_DAYS), (10_000, 30))  # the report's two histories


def _history(numbers: int, days: int) -> Path:
    return ROOT / "bench" / ".cache" / f"history-{numbers}x{days}"


REPORT_MODES = ("reference", "table", "ours")  # bench/report_once.py's
FIGURES = ["polls_up", "polls_down", "polls_degraded", "polls_unknown"]
FRACTIONS = ["availability_samples", "availability_time", "coverage"]


def _report_once(mode: str, history: Path, first: date, last: date, out: str) -> dict:
    """One measurement in a fresh process (bench/report_once.py), for its own peak memory."""
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "report_once.py"),
            mode,
            str(history),
            first.isoformat(),
            last.isoformat(),
            out,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _best_interleaved(
    modes: tuple[str, ...], runs: int, history: Path, first: date, last: date, out: str
) -> dict[str, dict]:
    """Each mode's fastest of `runs` measurements (`_report_once`), taken in turns so that
    each mode meets the same machine."""
    measured: dict[str, list[dict]] = {mode: [] for mode in modes}
    for _ in range(runs):
        for mode in modes:
            measured[mode].append(_report_once(mode, history, first, last, out))
    return {mode: min(tries, key=lambda r: r["seconds"]) for mode, tries in measured.items()}


def _same_figures(ours: pd.DataFrame, theirs: pd.DataFrame) -> bool:
    """Two `availability_daily` tables have the same figures (counts exactly, fractions to
    1e-9)."""
    ours, theirs = ours.copy(), theirs.copy()
    for frame in (ours, theirs):
        frame["day"] = pd.to_datetime(frame["day"], utc=True).dt.date
        # plain floats: a nullable column's NA would make a comparison NA, which .all() skips
        frame[FRACTIONS] = frame[FRACTIONS].astype("float64")
    merged = ours.merge(theirs, on=["config_id", "day"], suffixes=("", "_ref"), how="outer")
    if len(merged) != len(ours) or len(merged) != len(theirs):
        return False
    counts = all((merged[c] == merged[f"{c}_ref"]).all() for c in FIGURES)
    fractions = all(
        (
            ((merged[c] - merged[f"{c}_ref"]).abs() <= 1e-9 * merged[c].abs() + 1e-12)
            | (merged[c].isna() & merged[f"{c}_ref"].isna())
        ).all()
        for c in FRACTIONS
    )
    return counts and fractions


def bench_report() -> list[Row]:
    from kapso_health import History
    from kapso_health.simulator.history import FIRST_DAY, build
    from kapso_health.tasks.storage import ParquetStore

    result = []
    for numbers, days in HISTORIES:
        history = _history(numbers, days)
        build(str(history), numbers, days)  # once; kept in bench/.cache
        store = ParquetStore(str(history))
        rows = {
            name: sum(pq.read_metadata(path).num_rows for path in store.files(name))
            for name in ("polls", "checks", "entities")
        }
        size = sum(f.stat().st_size for f in history.rglob("*.parquet") if "reports" not in f.parts)
        label = f"{numbers:,} x {days} days"
        result.append(
            Row(
                "report",
                f"history {label}: every 15 min, written through flatten + store, each day "
                "compacted",
                f"{rows['polls']:,} polls, {rows['checks']:,} checks, {rows['entities']:,} "
                f"entities rows; {size / 1e9:.2f} GB",
            )
        )
        last = FIRST_DAY + timedelta(days=days - 1)
        middle = FIRST_DAY + timedelta(days=days // 2)
        for span, first, end in (("one day", middle, middle), (f"{days} days", FIRST_DAY, last)):
            with tempfile.TemporaryDirectory() as out:
                runs = 3 if first == end else 1  # the best of three for the short range
                best = _best_interleaved(REPORT_MODES, runs, history, first, end, out)
                theirs = pd.read_parquet(f"{out}/reference.parquet")
                ours_table = History(str(history)).report("availability_daily", first, end)
                same = _same_figures(ours_table, theirs)
                same_alone = _same_figures(pd.read_parquet(f"{out}/table.parquet"), theirs)
            reference, alone, ours = best["reference"], best["table"], best["ours"]
            ratio = ours["seconds"] / reference["seconds"]
            targets = ["<= 1.5 x reference"]
            met = ratio <= 1.5
            if numbers == 10_000:
                targets.append("peak <= 2,048 MB")
                met = met and ours["peak_mb"] <= 2048
            if numbers == HISTORY_NUMBERS and first == end:
                targets.append("< 0.5 s")
                met = met and ours["seconds"] < 0.5
            result += [
                Row(
                    "report",
                    f"reference {label}, {span}: a DuckDB query for availability_daily alone "
                    "(bench/availability_reference.sql)",
                    f"{reference['seconds']:.2f} s, peak {reference['peak_mb']:,.0f} MB; same "
                    f"figures as the report's: {'yes' if same else 'NO'}",
                ),
                Row(
                    "report",
                    f"kapso-health engine {label}, {span}: availability_daily alone (its pieces "
                    "only; not written)",
                    f"{alone['seconds']:.2f} s = {alone['seconds'] / reference['seconds']:.2f} x "
                    f"reference, peak {alone['peak_mb']:,.0f} MB; same figures: "
                    f"{'yes' if same_alone else 'NO'}",
                ),
                Row(
                    "report",
                    f"kapso-health {label}, {span}: every report table + HTML page (write_reports)",
                    f"{ours['seconds']:.2f} s = {ratio:.2f} x reference, peak "
                    f"{ours['peak_mb']:,.0f} MB",
                    ", ".join(targets),
                    _verdict(met and same),
                ),
            ]
    return result


FLOOR_NUMBERS = 10  # a fleet so small that a report's time is what it costs at any size


def bench_report_floor() -> list[Row]:
    """One day of a 10-number history (and a day either side): the report beside the
    reference, each the best of five fresh processes, interleaved. What the report costs
    whatever the fleet's size, against the reference's own fixed part."""
    from kapso_health.simulator.history import FIRST_DAY, build

    day = FIRST_DAY + timedelta(days=1)  # and the days either side, as the report reads
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryDirectory() as out:
        build(root, FLOOR_NUMBERS, 3)
        best = _best_interleaved(("reference", "ours"), 5, Path(root), day, day, out)
    reference, ours = best["reference"]["seconds"], best["ours"]["seconds"]
    label = f"{FLOOR_NUMBERS} numbers x 3 days, one day"
    return [
        Row(
            "report_floor",
            f"reference {label}: the DuckDB query for availability_daily alone",
            f"{reference:.2f} s",
        ),
        Row(
            "report_floor",
            f"kapso-health {label}: every report table + HTML page (write_reports)",
            f"{ours:.2f} s = {ours / reference:.2f} x reference: {ours - reference:.2f} s more "
            "with hardly any data (the report's fixed cost above the reference's)",
        ),
    ]


def bench_compaction() -> list[Row]:
    from kapso_health.simulator.history import write_day
    from kapso_health.tasks.compaction import compact
    from kapso_health.tasks.storage import ParquetStore

    day = date(2026, 1, 1)
    with tempfile.TemporaryDirectory() as root:
        write_day(root, HISTORY_NUMBERS, day, compact=False)
        store = ParquetStore(root)
        files = len(store.files("polls", day, day))
        appended = _best_of(5, lambda: store.read("polls", day, day))
        started = time.perf_counter()
        merged = sum(compact(store, name, day) for name in ("polls", "checks", "entities"))
        compaction = time.perf_counter() - started
        compacted = _best_of(5, lambda: store.read("polls", day, day))
    return [
        Row(
            "compaction",
            f"read one day of polls ({HISTORY_NUMBERS:,} numbers x 96 rounds) from "
            f"{files} appended files",
            f"{appended * 1000:,.0f} ms",
        ),
        Row(
            "compaction",
            "the same day after compaction (one file per table)",
            f"{compacted * 1000:,.0f} ms = {appended / compacted:.1f} x faster; compacting "
            f"{merged} files of 3 tables took {compaction:.1f} s",
            "report both",
            "met",
        ),
    ]


# --- object storage ----------------------------------------------------------------------------

S3_DAY_NUMBERS = 200


def _s3_collection(base_url: str, root: str) -> tuple[float, dict, Counter]:
    """One unthrottled collection into `root`, counting the S3 requests it sends."""
    from kapso_health.tasks.storage import ParquetStore
    from tests.s3 import count_s3_calls

    store = ParquetStore(root)
    if store.local:
        return (*_flow_seconds(base_url, root), Counter())
    with count_s3_calls(store.fs) as calls:
        seconds, summary = _flow_seconds(base_url, root)
    return seconds, summary, calls


def bench_s3() -> list[Row]:
    """The same work with the history on the S3 server (moto on loopback) and on local disk."""
    from prefect.testing.utilities import prefect_test_harness

    from kapso_health.flows.report import write_reports
    from kapso_health.reports.timeline import Policy
    from kapso_health.simulator.history import write_day
    from kapso_health.tasks.compaction import compact
    from kapso_health.tasks.storage import ParquetStore
    from tests.s3 import MotoServer

    server = MotoServer()
    os.environ.update(server.environment())
    config = SimulatorConfig(
        numbers=FLOW_NUMBERS, rate_per_second=None, rate_per_minute=None, latency_ms=FLOW_LATENCY
    )
    day = date(2026, 1, 1)
    seconds: dict[str, dict[str, float]] = {}
    try:
        with (
            running_simulator(config) as sim,
            prefect_test_harness(server_startup_timeout=180),
            tempfile.TemporaryDirectory() as local,
        ):
            roots = {"local disk": f"{local}/history", "S3": f"{server.new_bucket()}/history"}
            for kind, root in roots.items():
                _s3_collection(sim.base_url(), f"{root}-warm-up")
                taken, summary, calls = _s3_collection(sim.base_url(), root)
                objects = len(ParquetStore(root).fs.find(ParquetStore(root).root))
                write_day(root, S3_DAY_NUMBERS, day, compact=False)
                started = time.perf_counter()
                write_reports(root, [day], Policy())
                report = time.perf_counter() - started
                store = ParquetStore(root)
                started = time.perf_counter()
                merged = sum(compact(store, name, day) for name in ("polls", "checks", "entities"))
                seconds[kind] = {
                    "collection": taken,
                    "report": report,
                    "compaction": time.perf_counter() - started,
                }
                if kind == "S3":
                    writes = {k: v for k, v in calls.items() if "put" in k or "copy" in k}
                    s3_files, s3_calls, s3_outcomes = objects, writes, summary["outcomes"]
    finally:
        server.stop()
    local, s3 = seconds["local disk"], seconds["S3"]
    ratio = s3["collection"] / local["collection"]
    once = s3_calls.get("copy_object", 0) == 0 and s3_calls.get("put_object", 0) == s3_files + 1
    return [
        Row(
            "s3",
            f"baseline: local disk; unthrottled collection of {FLOW_NUMBERS:,} numbers, "
            f"one day's report and compaction ({S3_DAY_NUMBERS} numbers x 96 rounds, merged "
            f"{merged} files of 3 tables)",
            f"collection {local['collection']:.1f} s, report {local['report']:.1f} s, "
            f"compaction {local['compaction']:.1f} s",
        ),
        Row(
            "s3",
            "the same on the S3 server (moto on loopback, s3fs); requests that write",
            f"collection {s3['collection']:.1f} s = {ratio:.2f} x local; report "
            f"{s3['report']:.1f} s = {s3['report'] / local['report']:.2f} x; compaction "
            f"{s3['compaction']:.1f} s = {s3['compaction'] / local['compaction']:.2f} x; "
            f"{s3_files} files written by {dict(s3_calls)} (1 extra: the write probe); "
            f"outcomes {s3_outcomes}",
            "collection <= 1.5 x local; every file one PUT, no COPY",
            _verdict(ratio <= 1.5 and once),
        ),
    ]


def _cli_seconds(args: list[str], key: str | None, home: Path, simulator=None) -> float:
    """Seconds from starting `kapso-health ARGS` with a fresh PREFECT_HOME until it exits or,
    with `simulator`, until the simulator answered its first health request."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAPSO_", "PREFECT_"))}
    env |= {"PREFECT_HOME": str(home), **({"KAPSO_API_KEY": key} if key else {})}
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "kapso_health.flows.cli", *args],
        cwd=home.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while process.poll() is None:
        if simulator is not None and simulator.stats()["counts"].get("health_requests", 0):
            break
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    process.wait(timeout=300)
    return seconds


def bench_first_answer() -> list[Row]:
    """How soon a first run says what is wrong (fresh PREFECT_HOME each), beside how long the
    same first run takes to reach its first health request (Prefect's temporary server)."""
    from kapso_health.simulator.process import running_simulator
    from kapso_health.simulator.server import SimulatorConfig

    config = SimulatorConfig(numbers=5, api_key="right", rate_per_second=None, rate_per_minute=None)
    with tempfile.TemporaryDirectory() as root, running_simulator(config) as simulator:
        url = simulator.base_url()

        def fresh(name: str) -> Path:
            return Path(root) / name / ".prefect"

        for name in ("first", "wrong", "unreachable", "missing"):
            fresh(name).parent.mkdir()
        storage = ["--storage", str(Path(root) / "data")]
        first = _cli_seconds(
            ["collect", "--base-url", url, *storage], "right", fresh("first"), simulator
        )
        cases = {
            "a wrong key": (["collect", "--base-url", url], "wrong", "wrong"),
            "an unreachable base URL": (
                ["collect", "--base-url", "http://127.0.0.1:9/api/v1"],
                "k",
                "unreachable",
            ),
            "a missing key": (["collect", "--base-url", url], None, "missing"),
        }
        answers = {
            label: _cli_seconds(args, key, fresh(home))
            for label, (args, key, home) in cases.items()
        }
    rows = [
        Row(
            "first_answer",
            "baseline: `collect` from a fresh PREFECT_HOME to its first health request "
            "(what a wrong key waited for before the preflight)",
            f"{first:.1f} s",
        )
    ]
    rows += [
        Row(
            "first_answer",
            f"`collect` with {label}, fresh PREFECT_HOME, until it exits with the message",
            f"{seconds:.2f} s = {first / seconds:.0f} x sooner than the first health request",
            "within 3 s",
            _verdict(seconds <= 3.0),
        )
        for label, seconds in answers.items()
    ]
    return rows


def _best_of(times: int, work) -> float:
    best = float("inf")
    for _ in range(times):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


SECTIONS = {
    "sweep": bench_sweep,
    "unthrottled": bench_unthrottled,
    "flatten": bench_flatten,
    "shared": bench_shared,
    "report": bench_report,
    "report_floor": bench_report_floor,
    "compaction": bench_compaction,
    "s3": bench_s3,
    "first_answer": bench_first_answer,
}


def render(rows: list[Row]) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Run with `.venv/bin/python bench/run.py [--only SECTION]` ({platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}); each section's rows are "
        "replaced when that section runs. Each figure comes with its baseline, measured in "
        "the same run on the same machine; read them as ratios (this machine is shared and "
        "noisy).",
        "",
        "| section | measure | result | target | verdict | run |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.section} | {r.measure} | {r.value} | {r.target} | {r.verdict} | {r.run} |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def earlier_rows(path: Path, replaced: set[str]) -> list[Row]:
    """Rows of sections not run this time, kept from the existing BENCHMARKS.md."""
    if not path.exists():
        return []
    kept = []
    for line in path.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if len(cells) == 6 and cells[0] in SECTIONS and cells[0] not in replaced:
            kept.append(Row(*cells))
    return kept


def after_table(path: Path) -> str:
    """What BENCHMARKS.md holds below this table (other benchmarks' sections), kept as is."""
    if not path.exists():
        return ""
    lines = path.read_text().splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith("| section |")), None)
    if start is None:
        return ""
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "".join(lines[end:])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--no-write", action="store_true", help="print only, keep BENCHMARKS.md")
    args = parser.parse_args()
    sections = args.only or list(SECTIONS)
    rows = []
    for name in sections:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += SECTIONS[name]()
    stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    rows = [Row(r.section, r.measure, r.value, r.target, r.verdict, stamp) for r in rows]
    print(render(rows))
    if not args.no_write:
        path = ROOT / "BENCHMARKS.md"
        kept = earlier_rows(path, set(sections))
        ordered = sorted(kept + rows, key=lambda r: list(SECTIONS).index(r.section))
        path.write_text(render(ordered) + after_table(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
