"""A synthetic history (for the report benchmark and the notebook test), written through the
project's own layers.

Every 15 minutes of simulated time, each number of a seeded simulator fleet answers with the
body the simulator would serve at that moment; the bodies go through `flatten_polls` and
`ParquetStore.write` exactly as in a collection run (one run per round, so 96 appends a day),
then each closed day is compacted as the daily deployment does. 1 % of polls time out. The
`raw` table is left out: reports never read it, and it would only cost disk.

    .venv/bin/python -m kapso_health.simulator.history DIR --numbers 1000 --days 90
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta

from kapso_health.simulator.fleet import Fleet
from kapso_health.tasks import compaction
from kapso_health.tasks.flatten import flatten_numbers, flatten_polls
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.storage import ParquetStore
from kapso_health.tasks.vocabulary import Outcome

FIRST_DAY = date(2026, 1, 1)
EVERY = timedelta(minutes=15)
TABLES = ("polls", "checks", "entities")


def write_day(root: str, numbers: int, day: date, compact: bool = True, seed: int = 11) -> int:
    """One day of rounds for the whole fleet; returns the polls rows written."""
    fleet = Fleet(numbers, seed=seed)
    rng = random.Random(day.toordinal())
    store = ParquetStore(root)
    start = datetime.combine(day, datetime.min.time(), UTC)
    listed = fleet.list_page("legacy", 1, len(fleet.numbers))["data"]
    run_id = f"history-{day:%Y%m%d}-numbers"
    store.write("numbers", flatten_numbers(listed, "legacy", run_id, start), run_id, "numbers")
    written = 0
    for round_index in range(int(timedelta(days=1) / EVERY)):
        at = start + round_index * EVERY
        results = []
        for number in fleet.numbers:
            polled_at = at + timedelta(milliseconds=rng.randrange(60_000))
            if number.profile == "deleted":
                results.append(
                    PollResult(number.config_id, polled_at, Outcome.NOT_FOUND, 404, 1, 30.0)
                )
            elif rng.random() < 0.01:
                results.append(
                    PollResult(
                        number.config_id,
                        polled_at,
                        Outcome.TIMEOUT,
                        None,
                        4,
                        30_000.0,
                        error="timed out (after 4 attempts)",
                    )
                )
            else:
                body = fleet.health(number, "legacy", polled_at.timestamp())
                results.append(
                    PollResult(number.config_id, polled_at, Outcome.OK, 200, 1, 80.0, body)
                )
        run_id = f"bench-{at:%Y%m%dT%H%M}"
        flat = flatten_polls(results, run_id).tables()
        for name in TABLES:
            store.write(name, flat[name], run_id, "c00000")
        written += len(results)
    if compact:
        for name in TABLES:
            compaction.compact(store, name, day)
    return written


def build(root: str, numbers: int, days: int, compact: bool = True, workers: int = 2) -> int:
    """Write `days` days from FIRST_DAY on. With `compact`, finished (compacted) days are
    kept, so an interrupted build resumes."""
    store = ParquetStore(root)
    todo = [FIRST_DAY + timedelta(days=n) for n in range(days)]
    if compact:
        todo = [day for day in todo if not _compacted(store, day)]
    total = 0
    with ProcessPoolExecutor(workers) as pool:
        futures = [pool.submit(write_day, root, numbers, day, compact) for day in todo]
        for done, future in enumerate(futures, 1):
            total += future.result()
            print(f"  history: {done}/{len(todo)} days written", file=sys.stderr, flush=True)
    return total


def _compacted(store: ParquetStore, day: date) -> bool:
    files = store.files("entities", day, day)
    return len(files) == 1 and files[0].rsplit("/", 1)[-1].startswith("compacted-")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root")
    parser.add_argument("--numbers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--no-compact", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    rows = build(args.root, args.numbers, args.days, not args.no_compact)
    print(f"{rows:,} polls rows in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
