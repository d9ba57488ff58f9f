"""The engine's report equals the pandas report it replaced, on a generated history: every
table, every row, every value.

The pandas implementation is kept as it was under `tests/reports/reference/` (the oracle). The
history is the simulator's fleet written through flatten and the store (`simulator.history`):
hourly state drift, every profile (deleted numbers, token back-off, odd body shapes), 1 % of
polls timing out, ratings and phone statuses changing, days left uncompacted (96 files each),
and bodies polled twice (Kapso's cache repeats), one crossing midnight. Text, counts, flags and
ids are compared exactly; fractions and seconds to 1e-9 relative (the engine sums integer
microseconds, pandas sums float seconds: the last bits may differ); times to the microsecond
(the engine keeps a cadence gap to whole microseconds, pandas to nanoseconds).
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kapso_health.reports.build import build_reports
from kapso_health.reports.policy import Policy
from kapso_health.simulator.history import FIRST_DAY, write_day
from kapso_health.tasks.schemas import TABLES
from kapso_health.tasks.storage import ParquetStore
from tests.reports.reference import build as reference

NUMBERS, DAYS = 80, 4
KEYS = {
    "availability_daily": ["config_id", "day"],
    "quality_daily": ["config_id", "day"],
    "incidents": ["incident_id", "day"],
    "quality_transitions": ["config_id", "field", "at"],
    "check_pass_rates": ["config_id", "day", "check_name"],
    "needs_attention": ["config_id"],
    "changes_since_day_before": ["config_id"],
    "fleet_daily": ["day"],
    "project_daily": ["day", "project"],
    "customer_daily": ["day", "customer_id"],
    "waba_daily": ["day", "business_account_id"],
    "attention_checks": ["config_id", "check_name", "error"],
    "attention_entity_errors": ["config_id", "entity_type", "entity_id", "error_code"],
    "number_names": ["config_id"],
}


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> ParquetStore:
    root = str(tmp_path_factory.mktemp("history"))
    for offset in range(DAYS):
        write_day(root, NUMBERS, FIRST_DAY + timedelta(days=offset), compact=False, seed=5)
    store = ParquetStore(root)
    _repeat_some_bodies(store, FIRST_DAY + timedelta(days=1))
    return store


def _repeat_some_bodies(store: ParquetStore, day: date) -> None:
    """Poll some bodies again with the same `checked_at` (Kapso's cache): those of 01:00-02:00
    90 s later, those of the day's last round 15 minutes later, on the next day."""
    polls = store.read("polls", day, day)
    hour, minute = polls["polled_at"].dt.hour, polls["polled_at"].dt.minute
    again = polls[(hour.eq(1) | (hour.eq(23) & minute.ge(45))) & polls["outcome"].eq("ok")]
    for name in ("polls", "checks"):
        rows = store.read(name, day, day)
        rows = rows.merge(again[["config_id", "polled_at"]], on=["config_id", "polled_at"])
        late = rows["polled_at"].dt.hour.eq(23)
        shift = pd.to_timedelta(late.map({True: "15min", False: "90s"}))
        rows = rows.assign(polled_at=rows["polled_at"] + shift, run_id="repeat")
        table = pa.Table.from_pandas(rows, schema=TABLES[name], preserve_index=False)
        store.write(name, table, "repeat", "c00000")


def _days(first: int, count: int) -> list[date]:
    return [FIRST_DAY + timedelta(days=first + n) for n in range(count)]


CASES = {
    "one day, fixed 30 min": (_days(1, 1), {}),
    "two days, each number's cadence": (_days(1, 2), {"max_gap": None}),
    "first day, degraded counts as down": (_days(0, 1), {"degraded_counts_as_up": False}),
    "last day, nothing read after it": (_days(DAYS - 1, 1), {}),
}


@pytest.mark.parametrize("batches", [1, 3])
@pytest.mark.parametrize("case", CASES)
def test_every_table_equals_the_pandas_report(
    history: ParquetStore, case: str, batches: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    days, policy = CASES[case]
    rows = NUMBERS * 96 * (len(days) + 2)  # about the polls rows read
    monkeypatch.setattr("kapso_health.reports.build.REPORT_ROWS_PER_BATCH", rows // batches)
    new = build_reports(history, days, Policy(**policy))
    old = reference.build_reports(history, days, Policy(**policy))
    assert set(new) == set(old) == set(KEYS)
    assert len(old["availability_daily"]) == NUMBERS * len(days)  # deleted ones too (404s)
    assert len(old["incidents"]) > 0 and len(old["quality_transitions"]) > 0
    assert old["check_pass_rates"]["passed"].sum() > 0
    assert len(old["needs_attention"]) > 0 and len(old["changes_since_day_before"]) > 0
    for name, keys in KEYS.items():
        _assert_same(name, new[name], old[name], keys)


def _assert_same(name: str, new: pd.DataFrame, old: pd.DataFrame, keys: list[str]) -> None:
    assert sorted(new.columns) == sorted(old.columns), name
    assert len(new) == len(old), name
    new, old = (_ordered(frame, keys) for frame in (new, old))
    for column in old.columns:
        a, b = new[column], old[column]
        where = f"{name}.{column}"
        assert (a.isna().to_numpy() == b.isna().to_numpy()).all(), where
        if pd.api.types.is_integer_dtype(b):  # counts stay integers, not decimals or floats
            assert pd.api.types.is_integer_dtype(a), where
        a, b = a[b.notna()], b[b.notna()]
        if pd.api.types.is_datetime64_any_dtype(b):
            gap = (pd.to_datetime(a, utc=True) - pd.to_datetime(b, utc=True)).abs()
            assert (gap <= pd.Timedelta(microseconds=1)).all(), where
        elif pd.api.types.is_float_dtype(b) or pd.api.types.is_float_dtype(a):
            assert np.allclose(a.astype(float), b.astype(float), rtol=1e-9, atol=1e-6), where
        else:
            assert [_plain(v) for v in a] == [_plain(v) for v in b], where


def _ordered(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    text = frame[keys].astype("string").fillna("")
    order = np.lexsort([text[key].to_numpy() for key in reversed(keys)])
    return frame.iloc[order].reset_index(drop=True)


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
