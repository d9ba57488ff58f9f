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

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
TIMESTAMPS = st.one_of(
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat()),
    st.just("2025-01-15T10:00:00Z"),
    st.just("2025-01-10T08:15:30.123Z"),
    JSON,
)
ENUM = (
    st.sampled_from(
        [
            "GREEN",
            "YELLOW",
            "RED",
            "NA",
            "UNKNOWN",
            "AVAILABLE",
            "LIMITED",
            "BLOCKED",
            "CONNECTED",
            "DISCONNECTED",
            "PURPLE",
        ]
    )
    | JSON
)


def optional(**fields: st.SearchStrategy) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({}, optional=fields)


ENTITY = optional(
    entity_type=ENUM,
    id=JSON,
    can_send_message=ENUM,
    additional_info=JSON,
    errors=st.lists(
        optional(error_code=JSON, error_description=JSON, possible_solution=JSON), max_size=2
    )
    | JSON,
)
DETAILS = optional(
    quality_rating=ENUM,
    verified_name=JSON,
    id=JSON,
    status=ENUM,
    can_send_message=ENUM,
    entities=st.lists(ENTITY | JSON, max_size=4) | JSON,
    app_id=JSON,
    subscribed=JSON,
    subscribed_fields=JSON,
    verified_at=TIMESTAMPS,
)
CHECK = (
    optional(
        passed=st.booleans() | st.none() | JSON,
        details=DETAILS | JSON,
        error=st.text(max_size=40) | JSON,
        overall_status=ENUM,
    )
    | JSON
)
CHECK_NAMES = st.sampled_from(list(schemas.KNOWN_CHECKS)) | st.text(max_size=12)
SHAPED = optional(
    status=st.sampled_from(["healthy", "degraded", "unhealthy", "error"]) | JSON,
    timestamp=TIMESTAMPS,
    retry_after=TIMESTAMPS,
    error=JSON,
    checks=st.dictionaries(CHECK_NAMES, CHECK, max_size=7) | JSON,
)
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
