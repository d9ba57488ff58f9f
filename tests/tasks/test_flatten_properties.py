"""Property tests: any body, shaped like the API's or arbitrary JSON, flattens and stores."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kapso_health.tasks import schemas
from kapso_health.tasks.flatten import flatten_polls
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.storage import ParquetStore
from kapso_health.tasks.vocabulary import Outcome
from tests.strategies import JSON, SHAPED

BODIES = st.lists(SHAPED | JSON, min_size=1, max_size=8)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies=BODIES)
def test_any_bodies_flatten_to_typed_rows(bodies: list) -> None:
    now = datetime.now(UTC)
    results = [PollResult(f"n{i}", now, Outcome.OK, 200, 1, 1.0, b) for i, b in enumerate(bodies)]
    flat = flatten_polls(results, "prop")
    for name, table in flat.tables().items():
        assert table.schema == schemas.TABLES[name]
    assert flat.polls["config_id"].to_pylist() == [r.number_id for r in results]
    expected_checks = sum(
        len(b["checks"])
        for b in bodies
        if isinstance(b, dict) and isinstance(b.get("checks"), dict)
    )
    assert flat.checks.num_rows == expected_checks


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(bodies=BODIES)
def test_any_bodies_store_and_read_back(tmp_path: Path, bodies: list) -> None:
    store = ParquetStore(str(tmp_path / uuid.uuid4().hex))  # one store per example
    now = datetime.now(UTC)
    results = [PollResult(f"n{i}", now, Outcome.OK, 200, 1, 1.0, b) for i, b in enumerate(bodies)]
    flat = flatten_polls(results, "prop")
    for name, table in flat.tables().items():
        store.write(name, table, "prop", "c0")
    for name, table in flat.tables().items():
        assert store.read_arrow(name).num_rows == table.num_rows
