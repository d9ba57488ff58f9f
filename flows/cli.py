"""`kapso-health`: collect, audit and simulate from the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from kapso_health.tasks.settings import (
    API_KEY_ENV,
    CADENCE_GAP_FACTOR,
    CADENCE_GAP_MAX_MINUTES,
    CADENCE_GAP_MIN_MINUTES,
    CHUNK_SIZE,
    DEFAULT_BASE_URLS,
    DEFAULT_STORAGE,
    DEMO_DAYS,
    DEMO_EVERY_MINUTES,
    DEMO_STORAGE,
    GLOBAL_LIMIT_NAME,
    MAX_ATTEMPTS,
    MAX_GAP_MINUTES,
    MAX_IN_FLIGHT,
    MISSING_KEY,
    RATE_PER_MINUTE,
    RATE_PER_SECOND,
    SCHEDULE_MINUTES,
    TIMEOUT_SECONDS,
    WINDOW_MINUTES,
    MissingApiKeyError,
    env_setting,
)
from kapso_health.tasks.vocabulary import DEGRADED_STATUS, UNHEALTHY

# Without internet Prefect's telemetry attempt logs an ERROR; users read ERROR as failure.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

SIMULATOR_KEY = "simulator-demo-key"
EXIT_USAGE, EXIT_AUTH, EXIT_FAILED, EXIT_UNHEALTHY = 2, 3, 1, 4


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        code = _exit_code(exc)
        if code is None:
            raise
        print(f"kapso-health: {exc}", file=sys.stderr)
        return code


def _exit_code(exc: Exception) -> int | None:
    """The exit code of an error the user can act on (its message says how); None: a bug."""
    from kapso_health.tasks.client import KapsoAuthError, KapsoListError
    from kapso_health.tasks.projects import ProjectsFailedError
    from kapso_health.tasks.storage import StorageError

    if isinstance(exc, KapsoAuthError):
        return EXIT_AUTH
    usage = MissingApiKeyError | KapsoListError | ProjectsFailedError | StorageError
    if isinstance(exc, usage | ValueError | OSError):
        return EXIT_FAILED
    return None


def _parser() -> argparse.ArgumentParser:
    from kapso_health.simulator.main import add_arguments as add_simulator_arguments

    parser = argparse.ArgumentParser(prog="kapso-health", description=__doc__)
    commands = parser.add_subparsers(dest="command")

    collect = commands.add_parser(
        "collect", help="poll the numbers into the Parquet history (all once, or a rolling window)"
    )
    _add_connection_arguments(collect)
    _add_fleet_arguments(collect, window=None, interval=None)
    _add_storage_argument(collect)
    collect.add_argument("--chunk-size", type=int, default=CHUNK_SIZE)
    collect.add_argument("--run-id", default=None, help="re-running a run id replaces its files")
    collect.add_argument(
        "--global-limit",
        metavar="NAME",
        help="Prefect global rate limit shared with other runs (see `shared-limit`)",
    )
    collect.set_defaults(handler=_collect)

    plan = commands.add_parser(
        "plan", help="the capacity of each project at its budget (no health requests)"
    )
    _add_connection_arguments(plan)
    _add_fleet_arguments(plan, window=WINDOW_MINUTES, interval=SCHEDULE_MINUTES)
    plan.set_defaults(handler=_plan)

    audit = commands.add_parser("audit", help="poll some numbers now and print them, worst first")
    _add_connection_arguments(audit)
    audit.add_argument("numbers", nargs="*", metavar="ID", help="default: every listed number")
    audit.add_argument(
        "--format",
        choices=("table", "json", "csv"),
        default="table",
        help="json: one object per number with every polls field, failing checks and entity "
        "errors; csv: the same, one row per number (default: %(default)s)",
    )
    audit.add_argument(
        "--fail-on",
        choices=(UNHEALTHY, DEGRADED_STATUS, "never"),
        default="never",
        help=f"exit {EXIT_UNHEALTHY} when any number's status is this or worse "
        "(default: %(default)s)",
    )
    audit.set_defaults(handler=_audit, ids=None, ids_file=None)

    report = commands.add_parser("report", help="build the daily availability and quality reports")
    report.add_argument("--day", type=date.fromisoformat, help="YYYY-MM-DD (default: yesterday)")
    report.add_argument("--to", type=date.fromisoformat, help="last day of a range (YYYY-MM-DD)")
    _add_storage_argument(report)
    report.add_argument(
        "--max-gap-minutes",
        type=int,
        default=None,
        help=(
            "how long one observation holds at most, e.g. "
            f"{MAX_GAP_MINUTES} (default: each number's own cadence, {CADENCE_GAP_FACTOR:g} x its "
            f"median interval between observations, within {CADENCE_GAP_MIN_MINUTES} to "
            f"{CADENCE_GAP_MAX_MINUTES} minutes)"
        ),
    )
    report.add_argument(
        "--out", metavar="DIR", help="folder of the HTML page (default: <storage>/reports/html)"
    )
    report.set_defaults(handler=_report)

    shared = commands.add_parser(
        "shared-limit",
        help="create the Prefect global rate limit that runs against one project share",
    )
    shared.add_argument("--name", default=GLOBAL_LIMIT_NAME)
    shared.add_argument("--rate-per-second", type=float, default=RATE_PER_SECOND)
    shared.add_argument("--rate-per-minute", type=float, default=RATE_PER_MINUTE)
    shared.set_defaults(handler=_shared_limit)

    compact = commands.add_parser("compact", help="merge each closed day's files into one")
    _add_storage_argument(compact)
    compact.add_argument(
        "--before", type=date.fromisoformat, help="YYYY-MM-DD (default: today, UTC)"
    )
    compact.set_defaults(handler=_compact)

    demo = commands.add_parser(
        "demo", help="build days of history against the simulator in seconds, then the report"
    )
    demo.add_argument(
        "--days", type=int, default=DEMO_DAYS, help="whole UTC days, ending yesterday"
    )
    demo.add_argument(
        "--every-minutes", type=int, default=DEMO_EVERY_MINUTES, help="simulated poll interval"
    )
    demo.add_argument("--numbers", type=int, default=40, help="simulated fleet size")
    demo.add_argument("--seed", type=int, default=7, help="simulated fleet seed")
    demo.add_argument(
        "--storage",
        default=DEMO_STORAGE,
        help="root of the simulated history, kept apart from real ones (default: %(default)s)",
    )
    demo.set_defaults(handler=_demo)

    simulate = commands.add_parser("simulate", help="run the Kapso simulator in the foreground")
    add_simulator_arguments(simulate)
    simulate.set_defaults(handler=_simulate)
    return parser


def _add_storage_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage",
        help=f"root of the Parquet history: a folder or an fsspec URL "
        f"(default: $KAPSO_HEALTH_STORAGE, else {DEFAULT_STORAGE})",
    )


def _add_fleet_arguments(
    parser: argparse.ArgumentParser, window: float | None, interval: float | None
) -> None:
    parser.add_argument("--ids-file", type=Path, help="file with one number id per line")
    parser.add_argument(
        "--window-minutes",
        type=_positive,
        default=window,
        metavar="M",
        help="a rolling run: the most due numbers first, as many as M minutes of budget allow"
        + (f" (default: {window:g}, the scheduled deployment's)" if window else ""),
    )
    parser.add_argument(
        "--interval-minutes",
        type=_positive,
        default=interval,
        metavar="M",
        help="how often runs come: warns when the fleet cannot be covered that often"
        + (f" (default: {interval:g})" if interval else ""),
    )
    parser.add_argument(
        "--projects", metavar="FILE", help="several Kapso projects (TOML or YAML; see README)"
    )


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1440:
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most 1440 minutes: {text}")
    return value


def _add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    if parser.prog.endswith(("collect", "plan")):
        parser.add_argument("--ids", nargs="+", metavar="ID", help="default: every listed number")
    parser.add_argument("--base-url", help="API root with version prefix (default per flavour)")
    parser.add_argument("--flavour", choices=tuple(DEFAULT_BASE_URLS), default="legacy")
    parser.add_argument(
        "--rate-per-second", type=float, default=RATE_PER_SECOND, help="0 turns it off"
    )
    parser.add_argument(
        "--rate-per-minute", type=float, default=RATE_PER_MINUTE, help="0 turns it off"
    )
    parser.add_argument("--max-in-flight", type=int, default=MAX_IN_FLIGHT)
    parser.add_argument(
        "--timeout", type=float, default=TIMEOUT_SECONDS, help="seconds per request"
    )
    parser.add_argument("--max-attempts", type=int, default=MAX_ATTEMPTS)
    parser.add_argument("--api-key-secret", help="Prefect Secret block holding the API key")


def _require_key(args: argparse.Namespace) -> None:
    """No key at all fails at once, before Prefect starts: the simulator is never implicit.
    (A projects file names each project's key.)"""
    if getattr(args, "projects", None):
        return
    if not os.environ.get(API_KEY_ENV, "").strip() and not args.api_key_secret:
        raise MissingApiKeyError(MISSING_KEY)


@contextmanager
def _simulator_key() -> Iterator[None]:
    """KAPSO_API_KEY set to the simulator's key for a while, then as it was."""
    previous = os.environ.get(API_KEY_ENV)
    os.environ[API_KEY_ENV] = SIMULATOR_KEY
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(API_KEY_ENV, None)
        else:
            os.environ[API_KEY_ENV] = previous


def _ids(args: argparse.Namespace) -> list[str] | None:
    """Ids from --ids and --ids-file, checked before any server starts."""
    from kapso_health.tasks.fetch import clean_ids, read_ids_file

    ids = list(args.ids or [])
    if args.ids_file is not None:
        ids += read_ids_file(args.ids_file.read_text())
    return clean_ids(ids) or None


def _collect(args: argparse.Namespace) -> int:
    ids = _ids(args)
    _require_key(args)  # before Prefect is even imported: a missing key is said at once
    checked = _check_first(args, ids)  # before Prefect is even imported
    from kapso_health.flows.collect import collect_health

    summary = asyncio.run(
        collect_health(
            ids=ids,
            base_url=args.base_url,
            flavour=args.flavour,
            storage=args.storage,
            rate_per_second=args.rate_per_second,
            rate_per_minute=args.rate_per_minute,
            max_in_flight=args.max_in_flight,
            chunk_size=args.chunk_size,
            timeout_seconds=args.timeout,
            max_attempts=args.max_attempts,
            api_key_secret=args.api_key_secret,
            run_id=args.run_id,
            global_limit=args.global_limit,
            window_minutes=args.window_minutes,
            interval_minutes=args.interval_minutes,
            projects=args.projects,
            check_first=not checked,
        )
    )
    _print_summary(summary)
    return 0


def _check_first(args: argparse.Namespace, ids: list[str] | None) -> bool:
    """The key and the API's reach, checked with one cheap request before Prefect's temporary
    server starts (seconds on a fresh machine), for one project with its key in the
    environment; a storage root given is checked before that. True when the URL checked is the
    one the flow uses (`--base-url`): the flow need not check it again."""
    key = os.environ.get(API_KEY_ENV, "").strip()
    if args.projects or not key:
        return False
    from kapso_health.tasks.client import KapsoClient, KapsoListError
    from kapso_health.tasks.settings import ApiKey, connection_settings, env_setting
    from kapso_health.tasks.storage import ParquetStore

    if args.storage:
        ParquetStore(args.storage).check_writable()
    settings = connection_settings(
        ApiKey(key),
        args.flavour,
        args.base_url or env_setting("base_url"),
        timeout_seconds=args.timeout,
    )

    async def probe() -> None:
        async with KapsoClient(settings) as client:
            await client.check_access()

    try:
        asyncio.run(probe())
    except KapsoListError as exc:
        if ids is None:
            raise
        print(f"kapso-health: WARNING: {exc}; polling the given ids anyway", file=sys.stderr)
    return bool(args.base_url)


def _plan(args: argparse.Namespace) -> int:
    from kapso_health.flows.plan import fleet_capacity
    from kapso_health.tasks.projects import chosen_projects

    ids = _ids(args)
    if ids is None:
        _require_key(args)
    base_url = args.base_url or env_setting("base_url")
    projects = chosen_projects(args.projects, args.api_key_secret, args.flavour, base_url, ids)
    capacities = fleet_capacity(
        projects, args.rate_per_minute or None, args.window_minutes, args.interval_minutes
    )
    for name, room in asyncio.run(capacities):
        print(f"{name}: {room.line()}")
        if (warning := room.warning()) is not None:
            print(f"{name}: WARNING: {warning}")
    return 0


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    from kapso_health.tasks.schemas import TABLES

    table = Table(title=f"{summary['numbers']} numbers in {summary['seconds']} s")
    table.add_column("kind")
    table.add_column("value")
    table.add_column("numbers", justify="right")
    for kind, label in (("outcomes", "outcome"), ("statuses", "status")):
        for value, count in summary[kind].items():
            table.add_row(label, value, str(count))
    console = Console()
    console.print(table)
    for name, part in summary["projects"].items():
        if "capacity" in part:
            reached = f"{part['numbers']:,} of {part['planned']:,} planned polled"
            console.print(f"Project {name}: {part['capacity']['line']} ({reached}).")
    console.print(
        f"Run {summary['run_id']}: {summary['requests']} requests, "
        f"{summary['rate_limited_responses']} answered 429.\n"
        f"History: {summary['storage']} (tables {', '.join(TABLES)})."
    )


def _audit(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from kapso_health.flows.audit import audit_numbers, audit_records, audit_table, fails
    from kapso_health.flows.audit_output import write_csv, write_json
    from kapso_health.tasks.settings import connection_settings, require_api_key

    _require_key(args)
    settings = connection_settings(
        require_api_key(args.api_key_secret),
        args.flavour,
        args.base_url,
        args.rate_per_second,
        args.rate_per_minute,
        args.max_in_flight,
        args.timeout,
        args.max_attempts,
    )
    with Progress(console=Console(stderr=True), transient=True) as progress:
        bar = progress.add_task("polling", total=None)
        audited = asyncio.run(
            audit_numbers(
                settings,
                args.numbers,
                on_total=lambda total: progress.update(bar, total=total),
                on_result=lambda _: progress.advance(bar),
            )
        )
    records = audit_records(audited)
    if args.format == "json":
        write_json(records, sys.stdout)
    elif args.format == "csv":
        write_csv(records, sys.stdout)
    else:
        console = Console()
        console.print(audit_table(records, console.width))
    return EXIT_UNHEALTHY if fails(records, args.fail_on) else 0


def _report(args: argparse.Namespace) -> int:
    from kapso_health.flows.report import daily_report

    summary = daily_report(
        day=args.day,
        to=args.to,
        storage=args.storage,
        max_gap_minutes=args.max_gap_minutes,
        out=args.out,
    )
    _print_report(summary)
    return 0


def _print_report(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Fleet, per day")
    columns = (
        "day",
        "numbers_polled",
        "mean_availability_time",
        "mean_coverage",
        "numbers_with_incidents",
        "downgrades",
    )
    for column in columns:
        table.add_column(column.replace("_", " "), justify="right")
    for row in summary["fleet"]:
        table.add_row(*(_cell(row[column]) for column in columns))
    from kapso_health.reports.schemas import REPORT_SCHEMAS

    Console().print(table)
    print(f"Report tables: {summary['storage']}/reports/ ({', '.join(REPORT_SCHEMAS)})")
    print(f"Report page (open it in a browser): {summary['page']}")


def _shared_limit(args: argparse.Namespace) -> int:
    """Create or update the limit on the Prefect server of PREFECT_API_URL."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from kapso_health.tasks.limiter import shared_limit_for

    if not PREFECT_API_URL.value():
        print(
            "kapso-health: PREFECT_API_URL is not set: a shared limit only makes sense on the "
            "Prefect server your deployments and ad hoc runs use",
            file=sys.stderr,
        )
        return EXIT_FAILED
    slots, decay = shared_limit_for(args.rate_per_second, args.rate_per_minute)

    async def upsert() -> None:
        async with get_client() as client:
            await client.upsert_global_concurrency_limit_by_name(args.name, slots, decay)

    asyncio.run(upsert())
    print(
        f"Global rate limit {args.name!r}: {slots} slots, {decay}/s decay: every run together "
        f"stays within {args.rate_per_second:g}/s and {args.rate_per_minute:g}/min. "
        f"Pass --global-limit {args.name} (the deployment does)."
    )
    return 0


def _compact(args: argparse.Namespace) -> int:
    from kapso_health.flows.compact import compact_history

    summary = compact_history(storage=args.storage, before=args.before)
    merged = ", ".join(f"{name} {count}" for name, count in summary["files_merged"].items())
    print(f"Compacted {summary['table_days']} table-days before {summary['before']}: {merged}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from kapso_health.flows.demo import demo_history
    from kapso_health.flows.report import daily_report
    from kapso_health.simulator.process import running_simulator
    from kapso_health.simulator.server import SimulatorConfig

    config = SimulatorConfig(
        numbers=args.numbers,
        seed=args.seed,
        rate_per_second=None,
        rate_per_minute=None,
        latency_ms=(2.0, 10.0),
    )
    print(
        f"Demo: {args.days} days of SIMULATED history from the built-in Kapso simulator "
        f"({config.numbers} made-up numbers, one round every {args.every_minutes} simulated "
        f"minutes) into {args.storage}. Set {API_KEY_ENV} and run `kapso-health collect` "
        "for your own numbers.",
        file=sys.stderr,
    )
    logging.getLogger("prefect.task_runs").setLevel(logging.WARNING)  # 2 tasks a round
    with _simulator_key(), running_simulator(config) as simulator:
        history = asyncio.run(
            demo_history(
                simulator_url=simulator.url,
                storage=args.storage,
                days=args.days,
                every_minutes=args.every_minutes,
            )
        )
    days = [date.fromisoformat(day) for day in history["days"]]
    print(
        f"Collected {history['numbers']} polls in {history['rounds']} rounds "
        f"in {history['seconds']} s: "
        + ", ".join(f"{k} {v}" for k, v in history["outcomes"].items()),
        file=sys.stderr,
    )
    report = daily_report(day=days[0], to=days[-1], storage=args.storage)
    _print_report(report)
    return 0


def _cell(value: object) -> str:
    """The fleet table's floats are all fractions."""
    from kapso_health.reports.html import percent_text

    return percent_text(value) if isinstance(value, float) else str(value)


def _simulate(args: argparse.Namespace) -> int:
    from kapso_health.simulator.main import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
