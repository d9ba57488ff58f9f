"""The page's opening sections: "Needs attention" (each number in trouble at the end of the
period, why, since when, and Kapso's and Meta's words for it) and "Changed since the day
before"."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

import pandas as pd

from kapso_health.reports.html_table import rows_table

ATTENTION_HEAD = [
    "number",
    "trouble",
    "since",
    "failing checks (Kapso's error)",
    "entity errors (Meta's code: possible solution)",
    "last good observation",
]


def names_of(tables: dict[str, pd.DataFrame]) -> dict[str, str]:
    """`config_id` → how a person knows the number (name · phone · customer (id))."""
    names = tables.get("number_names")
    if names is None or names.empty:
        return {}
    return dict(zip(names["config_id"].tolist(), names["label"].tolist(), strict=True))


def number_label(config_id: object, names: Mapping[str, str]) -> str:
    return str(names.get(config_id, config_id))


def attention_section(tables: dict[str, pd.DataFrame], project: pd.Series | None) -> str:
    attention = tables["needs_attention"]
    title = f"<h2 id=needs-attention>Needs attention ({len(attention):,})</h2>"
    if attention.empty:
        return title + "<p class=note>No number is in trouble at the end of the period.</p>"
    names = names_of(tables)
    checks = _by_number(tables["attention_checks"])
    errors = _by_number(tables["attention_entity_errors"])
    head = ["project", *ATTENTION_HEAD] if project is not None else ATTENTION_HEAD
    since, last_good = _since(attention), _last_good(attention)
    body = []
    for number, problems, *times, owner in zip(
        attention["config_id"].tolist(),
        attention["problems"].tolist(),
        since,
        last_good,
        attention["project"].tolist() if project is not None else [None] * len(attention),
        strict=True,
    ):
        cells = [escape(number_label(number, names)), escape(problems), times[0]]
        cells += [_checks(checks.get(number, [])), _errors(errors.get(number, [])), times[1]]
        if project is not None:
            cells.insert(0, escape(str(owner)))
        body.append(cells)
    return title + rows_table(head, body, table_id="attention")


def changes_section(tables: dict[str, pd.DataFrame], project: pd.Series | None) -> str:
    changes = tables["changes_since_day_before"]
    title = "<h2 id=changes>Changed since the day before</h2>"
    if changes.empty:
        return title + "<p class=note>No number changed state since the end of the day before.</p>"
    names = names_of(tables)
    head = ["project"] * (project is not None) + ["number", "change", "what"]
    body = [
        ([escape(str(row.project))] if project is not None else [])
        + [escape(number_label(row.config_id, names)), escape(row.kind), escape(row.what)]
        for row in changes.itertuples(index=False)
    ]
    return title + rows_table(head, body, table_id="changes")


def _when(stamps: pd.Series) -> list[str]:
    """Each time to the minute; "—" where there is none."""
    return stamps.dt.strftime("%Y-%m-%d %H:%M").fillna("—").tolist()


def _since(attention: pd.DataFrame) -> list[str]:
    hours = (attention["seconds"] / 3600).tolist()
    known = attention["since_known"].tolist()
    return [
        escape(f"{'' if sure else 'at least since '}{when} ({span:,.1f} h by the end)")
        for when, span, sure in zip(_when(attention["since"]), hours, known, strict=True)
    ]


def _by_number(frame: pd.DataFrame) -> dict[str, list[dict]]:
    """The rows of `frame` as records, by number (no namedtuple class per number)."""
    found: dict[str, list[dict]] = {}
    for record in frame.to_dict("records"):
        found.setdefault(record["config_id"], []).append(record)
    return found


def _checks(found: list[dict]) -> str:
    return "<br>".join(
        f"<b>{escape(str(c['check_name']))}</b>: "
        + escape(str(c["error"]) if pd.notna(c["error"]) else "failed")
        + (f" (Meta code {int(c['meta_error_code'])})" if pd.notna(c["meta_error_code"]) else "")
        for c in found
    )


def _errors(found: list[dict]) -> str:
    lines = []
    for e in found:
        text = f"{e['entity_type']} {e['entity_id']}: {e['can_send_message']}"
        if pd.notna(e["error_code"]):
            detail = e["error_description"] if pd.notna(e["error_description"]) else ""
            text += f", Meta {e['error_code']} {detail}".rstrip()
        line = escape(text)
        if pd.notna(e["possible_solution"]):
            line += f": <i class=solution>{escape(str(e['possible_solution']))}</i>"
        if pd.notna(e["additional_info"]):
            line += f" ({escape(str(e['additional_info']))})"
        lines.append(line)
    return "<br>".join(lines)


def _last_good(attention: pd.DataFrame) -> list[str]:
    statuses = attention["last_good_status"].tolist()
    return [
        "none in the days read" if pd.isna(stamp) else escape(f"{when} ({status})")
        for stamp, when, status in zip(
            attention["last_good_at"].tolist(),
            _when(attention["last_good_at"]),
            statuses,
            strict=True,
        )
    ]
