"""The `daily-report` flow: Parquet history → daily availability and quality report tables."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from itertools import product
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

from kapso_health.flows.steps import finish_compactions_left
from kapso_health.reports.availability import worst_numbers
from kapso_health.reports.build import build_reports, report_days
from kapso_health.reports.html import percent_text, render_report
from kapso_health.reports.html_attention import names_of, number_label
from kapso_health.reports.markdown import attention_markdown
from kapso_health.reports.schemas import REPORT_SCHEMAS, to_arrow
from kapso_health.reports.timeline import Policy
from kapso_health.tasks.settings import DEFAULT_STORAGE, REPORT_WRITERS, configured
from kapso_health.tasks.storage import ParquetStore, write_text


def write_reports(
    storage: str, days: list[date], policy: Policy, out: str | None = None
) -> tuple[dict[str, pd.DataFrame], str]:
    """Build every report table for `days`, replace those days' files, and write the HTML
    page (to `out`, default `<storage>/reports/html`). Returns the tables and the page."""
    store = ParquetStore(storage)
    tables = build_reports(store, days, policy)
    arrow = {name: to_arrow(name, tables[name]) for name in REPORT_SCHEMAS}

    def replace(name_and_day: tuple[str, date]) -> None:
        name, day = name_and_day
        rows = arrow[name].filter(pc.equal(arrow[name]["day"], pa.scalar(day, pa.date32())))
        store.replace_day(f"reports/{name}", rows, day)

    # a file per table and day, many at once, written (Arrow, off the GIL) as the page renders
    with ThreadPoolExecutor(REPORT_WRITERS) as pool:
        written = pool.map(replace, product(REPORT_SCHEMAS, days))
        page = _write_page(
            tables,
            days,
            out or f"{storage.rstrip('/')}/reports/html",
            simulated=store.simulated,
            rule=policy.gap_rule(),
        )
        list(written)  # a file that failed raises here
    return tables, page


@flow(name="daily-report", log_prints=False)
def daily_report(
    day: date | None = None,
    to: date | None = None,
    storage: str | None = None,
    max_gap_minutes: Annotated[int | None, Field(ge=1, le=1440)] = None,
    degraded_counts_as_up: bool = True,
    out: str | None = None,
) -> dict[str, Any]:
    """Build the report tables for a day (default: yesterday, UTC) or a range of days and
    write them under `<storage>/reports/<table>/date=YYYY-MM-DD/`, replacing earlier builds,
    plus a self-contained HTML page in `out` (default `<storage>/reports/html`). `storage`
    defaults to the Prefect Variable `kapso_health_storage`, `KAPSO_HEALTH_STORAGE`, `./data`.
    An observation holds at most `max_gap_minutes` when given, else its number's own cadence
    (see `reports.policy`)."""
    logger = get_run_logger()
    storage = configured("storage", storage, DEFAULT_STORAGE)
    days = report_days(day, to)
    policy = Policy(
        max_gap=None if max_gap_minutes is None else timedelta(minutes=max_gap_minutes),
        degraded_counts_as_up=degraded_counts_as_up,
    )
    finish_compactions_left(ParquetStore(storage))
    tables, page = write_reports(storage, days, policy, out)
    _publish(tables, days, page, policy.gap_rule())
    fleet = tables["fleet_daily"]
    logger.info("Report page: %s", page)
    logger.info("Observations hold: %s", policy.gap_rule())
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
        "max_gap": policy.gap_rule(),
        "fleet": _records(fleet),
        "projects": _records(tables["project_daily"]),
    }


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return table.assign(day=table["day"].dt.strftime("%Y-%m-%d")).to_dict("records")


def _write_page(
    tables: dict[str, pd.DataFrame], days: list[date], out: str, simulated: bool, rule: str
) -> str:
    span = f"{days[0]}" if len(days) == 1 else f"{days[0]}_to_{days[-1]}"
    title = f"Kapso health report, {span.replace('_to_', ' to ')} (UTC)"
    if simulated:
        title += ": SIMULATED data (the built-in simulator's made-up numbers)"
    return write_text(
        f"{out.rstrip('/')}/kapso-health-{span}.html", render_report(title, tables, rule)
    )


def _figure_lines(rollup: pd.DataFrame, by: str | None = None) -> list[str]:
    """A roll-up's headline figures as a Markdown table (a column for `by` when given)."""
    head = f" {by} |" if by else ""
    lines = [
        f"| day |{head} numbers polled | mean availability | mean coverage | numbers with "
        "incidents | downgrades |",
        "|---|---|---|---|---|---|" + ("---|" if by else ""),
    ]
    return lines + [
        f"| {r['day']:%Y-%m-%d} |{f' {r[by]} |' if by else ''} {r['numbers_polled']} | "
        f"{percent_text(r['mean_availability_time'])} | {percent_text(r['mean_coverage'])} | "
        f"{r['numbers_with_incidents']} | {r['downgrades']} |"
        for _, r in rollup.sort_values(["day", by] if by else ["day"]).iterrows()
    ]


def _publish(tables: dict[str, pd.DataFrame], days: list[date], page: str, rule: str) -> None:
    """Artifacts under fixed keys, so each day's report is a new version of the same three."""
    lines = _figure_lines(tables["fleet_daily"])
    per_project = tables["project_daily"]
    if per_project["project"].nunique() > 1:
        lines += ["", "## Per Kapso project", "", *_figure_lines(per_project, "project")]
    create_markdown_artifact(
        "# Kapso health, daily report\n\n"
        + attention_markdown(tables)
        + f"\n\nObservations hold at most {rule}.\n\n"
        + "\n".join(lines),
        key="daily-report-summary",
        description=f"Fleet figures for {days[0]} to {days[-1]}",
    )
    names = names_of(tables)
    rows = [
        {
            "number": number_label(r.config_id, names),
            "config_id": r.config_id,
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
