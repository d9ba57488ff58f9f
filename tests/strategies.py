"""Hypothesis strategies for health bodies: shaped like the API's (any field missing, null or of
the wrong type, unknown checks and enums) or arbitrary JSON."""

from __future__ import annotations

from datetime import UTC

from hypothesis import strategies as st

from kapso_health.tasks import schemas

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
