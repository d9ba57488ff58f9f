"""Bad input: over 10,000 bodies, shaped like the API's (any field missing, null or of the wrong
type, unknown checks and enums) and arbitrary JSON, through flattening and storage."""

from __future__ import annotations

import uuid
from collections import Counter
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

BATCHES = st.lists(SHAPED | JSON, min_size=36, max_size=60)
EXAMPLES = 320


def test_ten_thousand_bodies_flatten_and_store_without_drift(tmp_path: Path, figures) -> None:
    seen: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(bodies=BATCHES)
    def flatten_and_store(bodies: list) -> None:
        store = ParquetStore(str(tmp_path / uuid.uuid4().hex))  # one store per example
        now = datetime.now(UTC)
        results = [
            PollResult(f"n{i}", now, Outcome.OK, 200, 1, 1.0, body, raw=repr(body).encode())
            for i, body in enumerate(bodies)
        ]
        flat = flatten_polls(results, "prop")  # never raises
        tables = flat.tables()
        for name, table in tables.items():
            assert table.schema == schemas.TABLES[name]  # no drift, whatever came in
            store.write(name, table, "prop", "c0")
        polls = store.read_arrow("polls")
        assert sorted(polls["config_id"].to_pylist()) == sorted(r.number_id for r in results)
        assert store.read_arrow("raw").num_rows == len(bodies)
        for name, table in tables.items():
            back = store.read_arrow(name)
            assert back.schema == schemas.TABLES[name] and back.num_rows == table.num_rows
        seen["bodies"] += len(bodies)
        seen["shaped"] += sum(isinstance(b, dict) for b in bodies)
        seen["check_rows"] += flat.checks.num_rows
        seen["entity_rows"] += flat.entities.num_rows

    flatten_and_store()
    assert seen["bodies"] >= 10_000
    figures(
        "Bad input: over 10,000 generated bodies flatten and store, schemas never drift",
        bodies=seen["bodies"],
        objects_shaped_like_the_api=seen["shaped"],
        other_json_values=seen["bodies"] - seen["shaped"],
        check_rows=seen["check_rows"],
        entity_rows=seen["entity_rows"],
        exceptions=0,
        bodies_without_a_polls_row=0,
    )
