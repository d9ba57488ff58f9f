"""The audit's records as JSON (one object per number) or CSV (one row per number; the lists
as text), for scripts and spreadsheets."""

from __future__ import annotations

import csv
import json
from datetime import datetime
from typing import Any, TextIO


def write_json(records: list[dict[str, Any]], out: TextIO) -> None:
    json.dump(records, out, default=_text, indent=1, ensure_ascii=False)
    out.write("\n")


def write_csv(records: list[dict[str, Any]], out: TextIO) -> None:
    if not records:
        return
    writer = csv.DictWriter(out, fieldnames=list(records[0]), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: _cell(key, value) for key, value in record.items()})


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _cell(key: str, value: object) -> object:
    if key == "failing_checks":
        return "; ".join(
            f"{c['check_name']}: {c['error'] or 'failed'}"
            + (f" (Meta code {c['meta_error_code']})" if c["meta_error_code"] else "")
            for c in value
        )
    if key == "entity_errors":
        return "; ".join(
            " ".join(str(e[k]) for k in ("entity_type", "entity_id", "can_send_message") if e[k])
            + (f" {e['error_code']}" if e["error_code"] else "")
            + (f": {e['possible_solution']}" if e["possible_solution"] else "")
            for e in value
        )
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value
