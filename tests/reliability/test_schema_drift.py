"""Schema drift: a history written before a new check name and new fields, and after."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from kapso_health.flows.report import write_reports
from kapso_health.reports.timeline import Policy
from kapso_health.tasks.flatten import flatten_polls
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.storage import ParquetStore
from kapso_health.tasks.vocabulary import Outcome

OLD_DAY = date(2026, 6, 1)
NEW_DAY = OLD_DAY + timedelta(days=1)
NEWER_COLUMNS = ["phone_status", "passed_webhook_verified", "webhook_verified_at"]


def body(at: datetime, with_new_check: bool) -> dict:
    checks = {"phone_number_access": {"passed": True}, "messaging_health": {"passed": True}}
    if with_new_check:
        checks["calling_readiness"] = {"passed": False, "error": "not enabled"}
    return {"status": "healthy", "timestamp": at.isoformat(), "checks": checks}


def test_old_and_new_history_read_as_one_and_reports_include_the_new_check(
    any_root: str, figures
) -> None:
    store = ParquetStore(any_root)
    for day, new in ((OLD_DAY, False), (NEW_DAY, True)):
        start = datetime.combine(day, datetime.min.time(), UTC)
        for step in range(8):
            at = start + timedelta(hours=3 * step)
            results = [
                PollResult(n, at, Outcome.OK, 200, 1, 5.0, body(at, new)) for n in ("A", "B")
            ]
            flat = flatten_polls(results, f"r{day:%d}{step}").tables()
            polls = flat["polls"]
            if not new:  # written by an older version that had no such columns yet
                polls = polls.drop_columns(NEWER_COLUMNS)
            store.write("polls", polls, f"r{day:%d}{step}", "c0")
            store.write("checks", flat["checks"], f"r{day:%d}{step}", "c0")
    both = store.read("polls", OLD_DAY, NEW_DAY)
    assert len(both) == 32
    old = both[both["polled_at"].dt.date == OLD_DAY]
    assert old[NEWER_COLUMNS].isna().all().all()  # missing columns read as null
    tables, _ = write_reports(any_root, [OLD_DAY, NEW_DAY], Policy())
    rates = tables["check_pass_rates"]
    new_check = rates[rates["check_name"] == "calling_readiness"]
    assert set(new_check["day"].dt.date) == {NEW_DAY}
    assert (new_check["pass_rate"] == 0.0).all() and (new_check["failed"] == 8).all()
    availability = tables["availability_daily"]
    assert set(availability["day"].dt.date) == {OLD_DAY, NEW_DAY}
    assert (availability["polls_up"] == 8).all()
    figures(
        "Schema drift: a history from before and after a new check and new fields reads as one",
        polls_rows=len(both),
        columns_missing_from_older_files=len(NEWER_COLUMNS),
        new_check_in_report_days=len(new_check),
        **{"on_s3" if any_root.startswith("s3://") else "on_local_disk": "passed"},
    )
