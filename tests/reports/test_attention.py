"""What needs attention at the end of the period, what changed since the day before, and the
names numbers are shown by: hand-computed on `trouble_history()` (see conftest)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa

from kapso_health.reports.attention_details import ENTITY_COLUMNS, entity_errors
from kapso_health.reports.build import build_reports, consecutive_runs
from kapso_health.reports.html import render_report
from kapso_health.reports.policy import Policy
from kapso_health.tasks.schemas import ENTITIES, TABLES
from kapso_health.tasks.storage import ParquetStore
from tests.reports.conftest import PAYMENT, TOKEN_ERROR, observation

UTC = "UTC"


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


def test_numbers_in_trouble_are_listed_worst_then_longest_first(trouble: dict) -> None:
    attention = trouble["needs_attention"].set_index("config_id")
    assert list(attention.index) == ["acme", "blocked", "limited"]  # down, down, LIMITED
    assert attention.loc["blocked", "problems"] == "down, messaging BLOCKED"
    assert attention.loc["limited", "problems"] == "messaging LIMITED, webhook not verified"
    assert attention.loc["acme", "since"] == at("2026-03-02 09:00")
    assert attention.loc["acme", "last_good_at"] == at("2026-03-02 08:00")
    assert attention.loc["acme", "seconds"] == 15 * 3600  # to the end of 2 March
    assert attention.loc["limited", "since"] == at("2026-03-01 20:00")
    assert attention.loc["limited", "last_good_at"] == at("2026-03-01 19:00")


def test_failing_checks_and_entity_errors_are_those_of_the_newest_observation(
    trouble: dict,
) -> None:
    checks = trouble["attention_checks"]
    acme = checks[checks["config_id"] == "acme"]
    assert list(acme["check_name"]) == ["phone_number_access"]  # not the older failure
    assert acme["error"].iloc[0] == TOKEN_ERROR and acme["meta_error_code"].iloc[0] == 190
    errors = trouble["attention_entity_errors"].set_index("config_id")
    assert set(errors.index) == {"blocked", "limited"}  # the AVAILABLE APP entity is not listed
    assert errors.loc["blocked", "error_code"] == "141006"
    assert errors.loc["blocked", "possible_solution"] == PAYMENT


def test_changes_since_the_day_before(trouble: dict) -> None:
    changes = trouble["changes_since_day_before"]
    assert list(zip(changes["config_id"], changes["kind"], strict=True)) == [
        ("acme", "new incident"),
        ("blocked", "new incident"),
        ("mended", "recovery"),
    ]
    assert changes["what"].iloc[1] == "status healthy → unhealthy; messaging AVAILABLE → BLOCKED"


def test_names_come_from_observations_then_listings_with_the_id_beside(trouble: dict) -> None:
    names = trouble["number_names"].set_index("config_id")["label"]
    assert names["acme"] == "Acme Corp · +1 555-123-4567 · customer cus-42 (acme)"
    assert names["blocked"] == "Blocked Ltd · +44 20 7946 0000 (blocked)"  # listing only
    assert names["good"] == "good"  # nothing known: the id alone


def test_the_page_opens_with_needs_attention_then_changes_then_the_analysis(
    trouble: dict,
) -> None:
    page = render_report("Report", trouble)
    order = [page.index(f"<h2 id={name}") for name in ("needs-attention", "changes", "analysis")]
    assert order == sorted(order) and page.index("<h2") == order[0]
    attention = page[order[0] : order[1]]
    assert "Acme Corp · +1 555-123-4567 · customer cus-42 (acme)" in attention
    assert "Invalid OAuth access token" in attention and "Meta code 190" in attention
    assert PAYMENT in attention and "141006" in attention
    assert attention.index("(acme)") < attention.index("(blocked)") < attention.index("limited")
    assert "Acme Corp" in page[order[2] :]  # the analysis names numbers too


def test_a_number_never_good_in_the_days_read_is_in_trouble_at_least_since_its_first(
    build,
) -> None:
    polls = [
        observation("down", "2026-03-01 06:00", "unhealthy"),
        observation("down", "2026-03-02 06:00", "unhealthy"),
    ]
    tables = build(polls, [pd.Timestamp("2026-03-02", tz=UTC)])
    row = tables["needs_attention"].iloc[0]
    assert (row["config_id"], row["since"], row["since_known"]) == (
        "down",
        at("2026-03-01 06:00"),
        False,
    )
    assert pd.isna(row["last_good_at"])
    assert "at least since 2026-03-01 06:00" in render_report("Report", tables)


def test_entity_errors_come_by_number_and_entity_whatever_order_the_rows_are_read_in() -> None:
    polled = at("2026-03-02 06:00")
    error = [{"error_code": "141006", "error_description": PAYMENT, "possible_solution": None}]
    second = [{"error_code": "131031", "error_description": "Locked", "possible_solution": None}]
    rows = [  # as a multi-threaded scan may hand them over
        ("b", "WABA", "w-2", "BLOCKED", error + second),
        ("a", "PHONE_NUMBER", "p-1", "LIMITED", []),
        ("b", "PHONE_NUMBER", "p-2", "BLOCKED", second),
        ("a", "BUSINESS", "b-1", "BLOCKED", error),
    ]
    names = ["config_id", "entity_type", "entity_id", "can_send_message", "errors"]
    entities = pa.Table.from_pylist(
        [dict(zip(names, row, strict=True)) | {"polled_at": polled} for row in rows],
        schema=pa.schema([ENTITIES.field(name) for name in ENTITY_COLUMNS]),
    )
    keys = pd.DataFrame({"config_id": ["a", "b"], "polled_at": [polled, polled]})
    found = entity_errors(entities, keys)
    codes = found["error_code"].fillna("none")
    assert list(zip(found["config_id"], found["entity_type"], codes, strict=True)) == [
        ("a", "BUSINESS", "141006"),
        ("a", "PHONE_NUMBER", "none"),
        ("b", "PHONE_NUMBER", "131031"),
        ("b", "WABA", "141006"),
        ("b", "WABA", "131031"),
    ]


def test_days_are_read_in_runs_of_consecutive_days() -> None:
    days = [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 4), date(2026, 3, 6)]
    assert consecutive_runs(days) == [
        (date(2026, 3, 1), date(2026, 3, 2)),
        (date(2026, 3, 4), date(2026, 3, 4)),
        (date(2026, 3, 6), date(2026, 3, 6)),
    ]


def test_the_details_of_observations_on_days_apart_are_each_read_once(tmp_path: Path) -> None:
    """Two numbers last observed in trouble on 1 and 3 March (nothing of theirs on 2 March):
    the details of both come from their own days' files, once each; days with checks but no
    entities files read as no entity errors (this once failed the second read)."""
    store = ParquetStore(str(tmp_path))
    last_seen = {"early": "2026-03-01 10:00", "late": "2026-03-03 10:00"}
    for number, at in last_seen.items():
        moment = pd.Timestamp(at, tz="UTC")
        rows = {
            "polls": [observation(number, at, "unhealthy")],
            "checks": [
                {"config_id": number, "polled_at": moment, "check_name": "messaging_health",
                 "passed": False, "error": f"{number} failed"},
            ],
        }  # fmt: skip
        for table, found in rows.items():
            arrow = pa.Table.from_pylist(found, schema=TABLES[table])
            store.write_file(store.partition(table, moment.date()), f"{number}.parquet", arrow)
    tables = build_reports(store, [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)], Policy())
    assert set(tables["needs_attention"]["config_id"]) == set(last_seen)
    checks = tables["attention_checks"]
    assert sorted(zip(checks["config_id"], checks["error"], strict=True)) == [
        ("early", "early failed"),
        ("late", "late failed"),
    ]
    assert tables["attention_entity_errors"].empty
