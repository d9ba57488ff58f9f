"""The summary artifact's opening: what needs attention, as Markdown (the first rows, a count)."""

from __future__ import annotations

import pandas as pd

from kapso_health.reports.html_attention import names_of, number_label

ATTENTION_ROWS = 20


def attention_markdown(tables: dict[str, pd.DataFrame], limit: int = ATTENTION_ROWS) -> str:
    """ "## Needs attention (N)" and a table of the first `limit`: number, trouble, since,
    the first failing check's error, the first entity error's code and possible solution."""
    attention = tables["needs_attention"]
    title = f"## Needs attention ({len(attention):,})\n\n"
    if attention.empty:
        return title + "No number is in trouble at the end of the period."
    names = names_of(tables)
    checks = tables["attention_checks"].drop_duplicates("config_id").set_index("config_id")
    errors = tables["attention_entity_errors"].drop_duplicates("config_id").set_index("config_id")
    lines = [
        "| number | trouble | since | failing check | entity error: possible solution |",
        "|---|---|---|---|---|",
    ]
    for row in attention.head(limit).itertuples(index=False):
        since = "—" if pd.isna(row.since) else f"{row.since:%Y-%m-%d %H:%M}"
        cells = [number_label(row.config_id, names), row.problems, since]
        cells.append(_check(checks, row.config_id))
        cells.append(_entity(errors, row.config_id))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    more = len(attention) - limit
    if more > 0:
        lines.append(f"\n… and {more:,} more: every one is on the report page.")
    return title + "\n".join(lines)


def _check(checks: pd.DataFrame, number: str) -> str:
    if number not in checks.index:
        return ""
    found = checks.loc[number]
    return (
        f"{found['check_name']}: {found['error']}"
        if pd.notna(found["error"])
        else (f"{found['check_name']}")
    )


def _entity(errors: pd.DataFrame, number: str) -> str:
    if number not in errors.index:
        return ""
    found = errors.loc[number]
    text = f"{found['entity_type']} {found['can_send_message']}"
    if pd.notna(found["error_code"]):
        text += f" ({found['error_code']})"
    if pd.notna(found["possible_solution"]):
        text += f": {found['possible_solution']}"
    return text


def _cell(text: object) -> str:
    """Markdown table cell text: one line, pipes escaped, at most 200 characters."""
    flat = " ".join(str(text).split()).replace("|", "\\|")
    return flat if len(flat) <= 200 else flat[:199] + "…"
