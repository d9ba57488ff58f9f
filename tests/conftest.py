"""Shared test settings: async tests run on asyncio through anyio's pytest plugin; one Prefect
test harness (a real local server on SQLite) for every flow test that asks for it."""

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    # Startup took 12-15 s on these machines; a loaded CI machine needs more.
    with prefect_test_harness(server_startup_timeout=180):
        yield
