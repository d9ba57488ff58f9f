"""The `daily-report` flow: Parquet history → daily availability and quality report tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, get_run_logger
from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_table_artifact,
)
from pydantic import Field

from kapso_health.reports.availability import (
    check_pass_rates,
    daily_availability,
    incident_days,
    incidents,
    worst_numbers,
)
from kapso_health.reports.html import percent_text, render_report
from kapso_health.reports.quality import all_transitions, daily_quality
from kapso_health.reports.rollup import fleet_rollup, latest_attributes
from kapso_health.reports.schemas import to_arrow
from kapso_health.reports.timeline import Policy, intervals, observations
from kapso_health.tasks.settings import DEFAULT_STORAGE, MAX_GAP_MINUTES, configured
from kapso_health.tasks.storage import ParquetStore, to_pandas, write_text

POLL_COLUMNS = [
    "config_id",
    "polled_at",
    "checked_at",
    "outcome",
    "status",
    "quality_rating",
    "can_send_message",
    "phone_status",
]
CHECK_COLUMNS = ["config_id", "polled_at", "checked_at", "check_name", "passed"]


def report_days(day: date | None, to: date | None) -> list[date]:
    """[day, to] inclusive; by default yesterday (UTC)."""
    first = day or (datetime.now(UTC) - timedelta(days=1)).date()
    last = to or first
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


ROWS_PER_BATCH = 1_000_000  # numbers are computed in batches of about this many polls rows


def number_tables(polls: pd.DataFrame, days: list[date], policy: Policy) -> dict[str, pd.DataFrame]:
    """The per-number tables for `days`, from those numbers' polls of the days and one day
    either side: availability, quality, incidents, transitions."""
    stamps = [pd.Timestamp(d, tz="UTC") for d in days]
    obs = observations(polls, policy)
    # Incidents and transitions look across the margin; holding time only matters in range.
    reach = pd.Timedelta(policy.max_gap)
    near = obs["at"].between(stamps[0] - reach, stamps[-1] + pd.Timedelta(days=1) + reach)
    pieces = intervals(obs[near], policy)
    found = incident_days(incidents(obs, policy))
    changes = all_transitions(obs)
    tables = {
        "availability_daily": daily_availability(obs, pieces, stamps, policy, found),
        "quality_daily": daily_quality(obs, pieces, stamps, changes),
        "incidents": found,
        "quality_transitions": changes,
    }
    return {
        name: frame[frame["day"].isin(stamps)].reset_index(drop=True)
        for name, frame in tables.items()
    }


def fleet_tables(
    availability: pd.DataFrame, quality: pd.DataFrame, numbers: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """Roll-ups per day: the fleet, and per customer and per WABA from the `numbers` table."""
    attributes = latest_attributes(numbers)
    return {
        "fleet_daily": fleet_rollup(availability, quality),
        "customer_daily": fleet_rollup(availability, quality, attributes, "customer_id"),
        "waba_daily": fleet_rollup(availability, quality, attributes, "business_account_id"),
    }


def build_reports(store: ParquetStore, days: list[date], policy: Policy) -> dict[str, pd.DataFrame]:
    """Every report table for `days`. Numbers are computed in batches and checks day by day,
    so memory stays bounded however long the range."""
    margin = timedelta(days=1)  # observations just before or after the range hold into it
    polls = store.read_arrow(
        "polls", days[0] - margin, days[-1] + margin, columns=POLL_COLUMNS, dictionary=True
    )
    batches = _number_batches(polls)
    del polls  # the batches own it now, and let go of it as early as they can
    parts = [number_tables(batch, days, policy) for batch in batches]
    tables = {
        name: pd.concat([part[name] for part in parts], ignore_index=True) for name in parts[0]
    }
    tables["check_pass_rates"] = pd.concat(
        [
            check_pass_rates(
                store.read_arrow("checks", day, day, columns=CHECK_COLUMNS, dictionary=True),
                [day],
            )
            for day in days
        ],
        ignore_index=True,
    )
    numbers = store.read("numbers", None, days[-1])
    tables.update(fleet_tables(tables["availability_daily"], tables["quality_daily"], numbers))
    return tables


def _number_batches(polls: pa.Table) -> Iterator[pd.DataFrame]:
    """The polls as pandas, a few whole numbers at a time (about ROWS_PER_BATCH rows each)."""
    if polls.num_rows <= ROWS_PER_BATCH:  # one chunk per column: pandas takes from it fast
        yield to_pandas(polls.unify_dictionaries().combine_chunks())
        return
    polls = polls.unify_dictionaries().combine_chunks()
    column = polls.column("config_id").chunk(0)
    ranks = pc.rank(column.dictionary, sort_keys="ascending", tiebreaker="dense")  # 1-based
    step = max(1, len(column.dictionary) * ROWS_PER_BATCH // polls.num_rows)
    batch_of_row = pc.take(pc.divide(pc.subtract(ranks, 1), step), column.indices)
    order = pc.sort_indices(batch_of_row)
    ordered = polls.take(order)  # still dictionary-encoded: decoded one batch at a time
    sizes = pc.value_counts(pc.take(batch_of_row, order)).field("counts").to_pylist()
    del polls, column, batch_of_row, order
    start = 0
    for size in sizes:
        yield to_pandas(ordered.slice(start, size))
        start += size


def write_reports(
    storage: str, days: list[date], policy: Policy, out: str | None = None
) -> tuple[dict[str, pd.DataFrame], str]:
    """Build every report table for `days`, replace those days' files, and write the HTML
    page (to `out`, default `<storage>/reports/html`). Returns the tables and the page."""
    store = ParquetStore(storage)
    tables = build_reports(store, days, policy)
    for name, frame in tables.items():
        for day in days:
            rows = frame[frame["day"] == pd.Timestamp(day, tz="UTC")]
            store.replace_day(f"reports/{name}", to_arrow(name, rows), day)
    page = _write_page(
        tables, days, out or f"{storage.rstrip('/')}/reports/html", simulated=store.simulated
    )
    return tables, page


@flow(name="daily-report", log_prints=False)
def daily_report(
    day: date | None = None,
    to: date | None = None,
    storage: str | None = None,
    max_gap_minutes: Annotated[int, Field(ge=1, le=1440)] = MAX_GAP_MINUTES,
    degraded_counts_as_up: bool = True,
    out: str | None = None,
) -> dict[str, Any]:
    """Build the report tables for a day (default: yesterday, UTC) or a range of days and
    write them under `<storage>/reports/<table>/date=YYYY-MM-DD/`, replacing earlier builds,
    plus a self-contained HTML page in `out` (default `<storage>/reports/html`). `storage`
    defaults to the Prefect Variable `kapso_health_storage`, `KAPSO_HEALTH_STORAGE`, `./data`."""
    logger = get_run_logger()
    storage = configured("storage", storage, DEFAULT_STORAGE)
    days = report_days(day, to)
    policy = Policy(
        max_gap=timedelta(minutes=max_gap_minutes), degraded_counts_as_up=degraded_counts_as_up
    )
    tables, page = write_reports(storage, days, policy, out)
    _publish(tables, days, page)
    fleet = tables["fleet_daily"]
    logger.info("Report page: %s", page)
    logger.info(
        "Reported %d days, %d numbers: %s",
        len(days),
        tables["availability_daily"]["config_id"].nunique(),
        ", ".join(
            f"{d:%Y-%m-%d} availability {a:.1%}"
            for d, a in zip(fleet["day"], fleet["mean_availability_time"], strict=True)
            if pd.notna(a)
        ),
    )
    return {
        "days": [d.isoformat() for d in days],
        "storage": storage,
        "page": page,
        "fleet": fleet.assign(day=fleet["day"].dt.strftime("%Y-%m-%d")).to_dict("records"),
    }


def _write_page(
    tables: dict[str, pd.DataFrame], days: list[date], out: str, simulated: bool
) -> str:
    span = f"{days[0]}" if len(days) == 1 else f"{days[0]}_to_{days[-1]}"
    title = f"Kapso health report, {span.replace('_to_', ' to ')} (UTC)"
    if simulated:
        title += ": SIMULATED data (the built-in simulator's made-up numbers)"
    return write_text(f"{out.rstrip('/')}/kapso-health-{span}.html", render_report(title, tables))


def _publish(tables: dict[str, pd.DataFrame], days: list[date], page: str) -> None:
    """Artifacts under fixed keys, so each day's report is a new version of the same three."""
    fleet = tables["fleet_daily"]
    lines = [
        "| day | numbers polled | mean availability | mean coverage | numbers with "
        "incidents | downgrades |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.day:%Y-%m-%d} | {r.numbers_polled} | {percent_text(r.mean_availability_time)} | "
        f"{percent_text(r.mean_coverage)} | {r.numbers_with_incidents} | {r.downgrades} |"
        for r in fleet.itertuples()
    ]
    create_markdown_artifact(
        "# Kapso health, daily report\n\n" + "\n".join(lines),
        key="daily-report-summary",
        description=f"Fleet figures for {days[0]} to {days[-1]}",
    )
    rows = [
        {
            "number": r.config_id,
            "availability": percent_text(r.availability_time),
            "coverage": percent_text(r.coverage),
            "incidents": int(r.incidents),
            "downtime_hours": round(r.downtime_hours, 2),
        }
        for r in worst_numbers(tables["availability_daily"]).itertuples()
    ]
    create_table_artifact(
        rows, key="daily-report-worst-numbers", description="Lowest time-weighted availability"
    )
    link = page if "://" in page else Path(page).resolve().as_uri()
    create_link_artifact(
        link,
        link_text="Open the report page",
        key="daily-report-page",
        description="Self-contained HTML: open it in any browser",
    )
