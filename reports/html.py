"""The report page: one self-contained HTML file, charts as inline SVG, no network. It opens
with what needs attention and what changed, then the analysis; long tables get a filter box
and column sort from a few lines of inline script, and the page reads whole without it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from html import escape

import pandas as pd

from kapso_health.reports.availability import worst_numbers
from kapso_health.reports.html_attention import (
    attention_section,
    changes_section,
    names_of,
    number_label,
)
from kapso_health.reports.html_table import SCRIPT, rows_table
from kapso_health.tasks.vocabulary import RATINGS

RATING_COLOURS = dict(
    zip(RATINGS, ("#2e9d52", "#e0b020", "#d0393e", "#9aa5b1", "#c9ced6"), strict=True)
)
EMPTY = "#eceff3"
WORST_ROWS = 20
LISTING_ROWS = 2_000  # rows of a listing on the page; the Parquet tables hold them all
HEATMAP_ROWS = 500  # numbers a heatmap draws; beyond, the least available ones
CELL, LABEL = 14, 250

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d2430;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.1rem;margin-top:2rem}
.figures{display:flex;gap:1rem;flex-wrap:wrap}
.figure{background:#f4f6f9;border-radius:8px;padding:.8rem 1.1rem;min-width:150px}
.figure b{display:block;font-size:1.5rem}
table{border-collapse:collapse}td,th{padding:.25rem .6rem;border-bottom:1px solid #e3e7ee;
text-align:left}td.n{text-align:right}svg text{font:11px system-ui,sans-serif;fill:#4a5568}
.note{color:#5a6473}td{vertical-align:top}.solution{color:#1d5c2e}
.filter{margin:.4rem 0;padding:.3rem .5rem;width:22rem}th.sortable{cursor:pointer}
"""


def render_report(title: str, tables: dict[str, pd.DataFrame], rule: str | None = None) -> str:
    """The page for the days in `tables` (the report tables, `day` as UTC midnight); `rule`
    says how long an observation held (`Policy.gap_rule()`)."""
    availability, quality = tables["availability_daily"], tables["quality_daily"]
    fleet, transitions = tables["fleet_daily"], tables["quality_transitions"]
    found = tables["incidents"]
    project = _project_of(availability)  # None with one project: the page looks as ever
    numbered = ["project", "number"] if project is not None else ["number"]
    names = names_of(tables)
    drawn, heatmap_note = _heatmapped(availability)
    sections = [
        f"<h1>{escape(title)}</h1>",
        attention_section(tables, project),
        changes_section(tables, project),
        "<h2 id=analysis>Analysis</h2>",
        f"<p class=note id=max-gap>Each observation holds until the number's next one, at most "
        f"{escape(rule)}; beyond that the time is unknown (coverage).</p>"
        if rule
        else "",
        _figures(fleet, availability),
        *(
            [
                "<h2 id=projects>Per Kapso project</h2>",
                _project_figures(availability, tables.get("project_daily")),
            ]
            if project is not None
            else []
        ),
        "<h2>Fleet availability per day (time-weighted)</h2>",
        _trend(fleet),
        "<h2>Availability per number and day</h2>",
        heatmap_note,
        _heatmap(drawn(availability), "availability_time", _availability_colour, project, names),
        "<h2>Quality rating per number and day (last rating of the day)</h2>",
        _heatmap(
            drawn(quality), "last_rating", lambda v: RATING_COLOURS.get(v, EMPTY), project, names
        ),
        _legend(),
        f"<h2>Worst numbers (lowest availability, top {WORST_ROWS})</h2>",
        _worst(availability, project, names),
        "<h2>Quality downgrades and phone status changes for the worse</h2>",
        _listing(
            _beside(transitions[transitions["worse"]].sort_values("at"), project, names),
            ["at", *numbered, "field", "from_value", "to_value"],
            "reports/quality_transitions",
        ),
        "<h2>Incidents</h2>",
        _listing(
            _beside(
                found.drop_duplicates("incident_id")
                .sort_values("start")
                .assign(minutes=lambda f: f["duration_seconds"] / 60),
                project,
                names,
            ),
            ["start", "end", *numbered, "kind", "minutes", "ongoing"],
            "reports/incidents",
        ),
    ]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(sections)
        + SCRIPT
        + "</body></html>"
    )


def _figures(fleet: pd.DataFrame, availability: pd.DataFrame) -> str:
    numbers = availability["config_id"].nunique()
    mean = availability["availability_time"].mean()
    coverage = availability["coverage"].mean()
    cards = [
        ("numbers", f"{numbers:,}"),
        ("mean availability", percent_text(mean)),
        ("mean coverage", percent_text(coverage)),
        ("number-days with incidents", f"{int((availability['incidents'] > 0).sum()):,}"),
        ("downtime", f"{availability['downtime_seconds'].sum() / 3600:,.1f} h"),
        ("quality downgrades", f"{int(fleet['downgrades'].sum()):,}"),
    ]
    return (
        "<div class=figures>"
        + "".join(
            f"<div class=figure>{escape(label)}<b>{escape(value)}</b></div>"
            for label, value in cards
        )
        + "</div>"
    )


def _project_of(availability: pd.DataFrame) -> pd.Series | None:
    """Each number's project (`config_id` → project) when the page covers more than one."""
    if "project" not in availability or availability["project"].nunique() < 2:
        return None
    return availability.drop_duplicates("config_id").set_index("config_id")["project"]


def _beside(
    frame: pd.DataFrame, project: pd.Series | None, names: Mapping[str, str]
) -> pd.DataFrame:
    """`frame` with its numbers as people know them, and their project (when there are
    several)."""
    frame = frame.assign(number=[number_label(n, names) for n in frame["config_id"].tolist()])
    if project is None:
        return frame
    return frame.assign(project=frame["config_id"].map(project))


def _project_figures(availability: pd.DataFrame, rollup: pd.DataFrame | None) -> str:
    """The page's headline figures, one row per project over the page's days."""
    grouped = availability.assign(with_incidents=availability["incidents"] > 0).groupby("project")
    table = pd.DataFrame(
        {
            "numbers": grouped["config_id"].nunique(),
            "mean_availability": grouped["availability_time"].mean(),
            "mean_coverage": grouped["coverage"].mean(),
            "number_days_with_incidents": grouped["with_incidents"].sum(),
            "downtime_hours": grouped["downtime_seconds"].sum() / 3600,
        }
    )
    if rollup is not None:
        table["quality_downgrades"] = rollup.groupby("project")["downgrades"].sum()
    table = table.reset_index()
    return _rows(table, list(table.columns), percent=("mean_availability", "mean_coverage"))


def _trend(fleet: pd.DataFrame) -> str:
    points = fleet.sort_values("day")[["day", "mean_availability_time"]].dropna()
    if points.empty:
        return "<p class=note>No day with a known state.</p>"
    width, height, pad = 720, 180, 40
    step = (width - 2 * pad) / max(1, len(points) - 1)
    xy = [
        (pad + i * step, height - pad - value * (height - 2 * pad))
        for i, value in enumerate(points["mean_availability_time"])
    ]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#2f6fde">'
        f"<title>{day:%Y-%m-%d}: {value:.2%}</title></circle>"
        for (x, y), day, value in zip(
            xy, points["day"], points["mean_availability_time"], strict=True
        )
    )
    axis = "".join(
        f'<text x="4" y="{height - pad - f * (height - 2 * pad) + 4:.1f}">{f:.0%}</text>'
        for f in (0, 0.5, 1)
    )
    labels = f'<text x="{pad}" y="{height - 8}">{points["day"].iloc[0]:%Y-%m-%d}</text>'
    if len(points) > 1:
        labels += (
            f'<text x="{width - pad}" y="{height - 8}" text-anchor="end">'
            f"{points['day'].iloc[-1]:%Y-%m-%d}</text>"
        )
    return (
        f'<svg class=chart id=trend width="{width}" height="{height}" role="img">{axis}'
        f'<polyline fill="none" stroke="#2f6fde" stroke-width="2" points="{path}"/>'
        f"{dots}{labels}</svg>"
    )


def _heatmapped(
    availability: pd.DataFrame,
) -> tuple[Callable[[pd.DataFrame], pd.DataFrame], str]:
    """Which rows the heatmaps draw (a filter of a table by number) and a note: every number,
    or beyond HEATMAP_ROWS the least available ones (`worst_numbers`) and where the rest are."""
    numbers = availability["config_id"].nunique()
    if numbers <= HEATMAP_ROWS:
        return lambda frame: frame, ""
    shown = worst_numbers(availability, HEATMAP_ROWS)["config_id"]
    note = (
        f"<p class=note>Both heatmaps: the {HEATMAP_ROWS:,} numbers of {numbers:,} with the "
        "lowest availability; every number is in the <code>reports/availability_daily</code> "
        "and <code>reports/quality_daily</code> Parquet tables.</p>"
    )
    return lambda frame: frame[frame["config_id"].isin(shown)], note


def _heatmap(
    frame: pd.DataFrame,
    column: str,
    colour,
    project: pd.Series | None = None,
    names: Mapping[str, str] | None = None,
) -> str:
    """A row per number (grouped by project when there are several), a column per day; each
    row labelled with the number's name (its id when none is known)."""
    if frame.empty:
        return "<p class=note>No numbers.</p>"
    grid = frame.pivot(index="config_id", columns="day", values=column)
    known = names or {}
    labels = [number_label(number, known)[:34] for number in grid.index]
    if project is not None:
        owner = grid.index.map(project).astype(str)
        grid = grid.set_axis(pd.MultiIndex.from_arrays([owner, grid.index])).sort_index()
        labels = [f"{name[:10]} · {number_label(n, known)[:26]}" for name, n in grid.index]
        grid.index = grid.index.get_level_values(1)
    width, height = LABEL + CELL * len(grid.columns) + 10, CELL * len(grid.index) + 30
    cells = []
    days = [f"{day:%Y-%m-%d}" for day in grid.columns]
    rows = zip(grid.index, grid.to_numpy(dtype=object), labels, strict=True)
    for row, (number, values, label) in enumerate(rows):
        y = 20 + row * CELL
        full = escape(number_label(number, known))
        cells.append(f'<text x="0" y="{y + CELL - 3}">{escape(label)}<title>{full}</title></text>')
        for col, (day, value) in enumerate(zip(days, values, strict=True)):
            shown = (
                "no data"
                if pd.isna(value)
                else (f"{value:.1%}" if isinstance(value, float) else str(value))
            )
            cells.append(
                f'<rect class=cell x="{LABEL + col * CELL}" y="{y}" width="{CELL - 1}" '
                f'height="{CELL - 1}" fill="{colour(value)}"><title>'
                f"{full} {day}: {escape(shown)}"
                "</title></rect>"
            )
    return f'<svg class=chart width="{width}" height="{height}" role="img">{"".join(cells)}</svg>'


def _availability_colour(value: object) -> str:
    if pd.isna(value):
        return EMPTY
    share = max(0.0, min(1.0, float(value)))
    red, green = (208, 57, 62), (46, 157, 82)
    mix = [round(r + (g - r) * share) for r, g in zip(red, green, strict=True)]
    return "#" + "".join(f"{c:02x}" for c in mix)


def _legend() -> str:
    items = "".join(
        f'<span style="background:{c};padding:0 .5rem;margin-right:.4rem">&nbsp;</span>{escape(r)} '
        for r, c in RATING_COLOURS.items()
    )
    return (
        f"<p class=note>{items}<span style='background:{EMPTY};padding:0 .5rem'>&nbsp;"
        "</span> no data</p>"
    )


def _worst(availability: pd.DataFrame, project: pd.Series | None, names: Mapping[str, str]) -> str:
    worst = _beside(worst_numbers(availability, WORST_ROWS), project, names)
    columns = [*(["project"] if project is not None else []), "number"]
    columns += [c for c in worst.columns if c not in ("config_id", "number", "project")]
    return _rows(worst, columns, percent=("availability_time", "coverage"))


def _listing(frame: pd.DataFrame, columns: list[str], table: str) -> str:
    """Every row, up to LISTING_ROWS; beyond that the first ones and where the rest are."""
    table_id = table.rsplit("/", 1)[-1]
    if len(frame) <= LISTING_ROWS:
        return _rows(frame, columns, table_id=table_id)
    return (
        f"<p class=note>The first {LISTING_ROWS:,} of {len(frame):,}; every one is in the "
        f"<code>{table}</code> Parquet table.</p>"
        + _rows(frame.head(LISTING_ROWS), columns, table_id=table_id)
    )


def _rows(
    frame: pd.DataFrame,
    columns: list[str],
    percent: tuple[str, ...] = (),
    table_id: str | None = None,
) -> str:
    if frame.empty:
        return "<p class=note>None.</p>"
    cells = [_cells(frame[column], column in percent) for column in columns]
    return rows_table(columns, [list(row) for row in zip(*cells, strict=True)], table_id)


def _cells(values: pd.Series, percent: bool) -> list[str]:
    """A column's cells (times formatted at once: one at a time takes most of the page's)."""
    if isinstance(values.dtype, pd.DatetimeTZDtype) or values.dtype.kind == "M":
        texts = values.dt.strftime("%Y-%m-%d %H:%M").fillna("NaT")
        return [f"<td>{text}</td>" for text in texts.tolist()]
    return [_cell(value, percent) for value in values.tolist()]


def _cell(value: object, percent: bool) -> str:
    if isinstance(value, float):
        text = percent_text(value) if percent else "—" if pd.isna(value) else f"{value:,.1f}"
        return f"<td class=n>{text}</td>"
    return f"<td>{escape(str(value))}</td>"


def percent_text(value: float) -> str:
    """A fraction as a percentage; "—" where it is unknown."""
    return "—" if pd.isna(value) else f"{value:.1%}"
