"""The simulator's HTTP behaviour: Kapso's strict limiter, headers, auth, faults, paging."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from kapso_health.simulator.process import running_simulator
from kapso_health.simulator.server import Faults, SimulatorConfig, SlidingWindow

HEADERS = {"X-API-Key": "any"}


def test_sliding_window_never_allows_more_than_the_limit() -> None:
    window = SlidingWindow(5, 1.0)
    allowed = []
    for step in range(300):
        now = step * 0.01
        if window.wait(now) == 0:
            window.events.append(now)
            allowed.append(now)
    assert all(b - a >= 1.0 for a, b in zip(allowed, allowed[5:], strict=False))
    assert len(allowed) == 15


def test_limiter_answers_429_with_both_header_families_and_retry_after() -> None:
    config = SimulatorConfig(numbers=5, rate_per_second=3, rate_per_minute=60, latency_ms=(0, 0))
    with running_simulator(config) as sim, httpx.Client(headers=HEADERS) as client:
        number = client.get(f"{sim.base_url()}/whatsapp_configs").json()["data"][0]["id"]
        answers = [
            client.get(f"{sim.base_url()}/whatsapp_configs/{number}/health") for _ in range(5)
        ]
        listed = client.get(f"{sim.base_url()}/whatsapp_configs")
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert answers[2].headers["X-Health-RateLimit-Second-Remaining"] == "0"
    assert answers[0].headers["X-Health-RateLimit-Minute-Limit"] == "60"
    assert answers[3].headers["Retry-After"] == "1"
    assert answers[3].json()["error"] == "Rate limit exceeded"
    assert "X-RateLimit-Limit" in listed.headers


def test_missing_key_is_401_and_unknown_id_404() -> None:
    with running_simulator(
        SimulatorConfig(numbers=3, rate_per_second=None, rate_per_minute=None)
    ) as sim:
        assert httpx.get(f"{sim.base_url()}/whatsapp_configs/x/health").status_code == 401
        missing = httpx.get(f"{sim.base_url()}/whatsapp_configs/nope/health", headers=HEADERS)
    assert missing.status_code == 404 and "not found" in missing.json()["error"]


def test_faults_are_injected_and_counted() -> None:
    faults = Faults(server_error=0.3, truncated=0.3)
    config = SimulatorConfig(
        numbers=3, rate_per_second=None, rate_per_minute=None, latency_ms=(0, 0), faults=faults
    )
    with running_simulator(config) as sim, httpx.Client(headers=HEADERS) as client:
        number = client.get(f"{sim.base_url()}/whatsapp_configs").json()["data"][0]["id"]
        codes = [
            client.get(f"{sim.base_url()}/whatsapp_configs/{number}/health").status_code
            for _ in range(60)
        ]
        counts = sim.stats()["counts"]
    assert codes.count(200) + sum(c >= 500 for c in codes) == 60
    assert counts["fault_server_error"] == sum(c >= 500 for c in codes) > 0
    assert counts["fault_truncated"] > 0


def test_clock_can_be_advanced_and_set() -> None:
    with running_simulator(SimulatorConfig(numbers=1)) as sim:
        before = sim.stats()["now"]
        assert sim.advance_clock(86400) - before >= 86400
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        asked = time.time()
        answered = sim.set_clock(at)
        read = sim.stats()["now"]
        done = time.time()
        # from `at`, the clock runs on in real time: never more than has passed since we asked
        rounding = 1e-3  # float seconds, added and subtracted in two processes
        assert at.timestamp() - rounding <= answered <= read
        assert read - at.timestamp() <= done - asked + rounding
