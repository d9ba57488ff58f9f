"""Client edge cases against respx-mocked responses."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from email.utils import format_datetime

import aiohttp
import httpx
import pytest
import respx

from kapso_health.tasks.client import KapsoAuthError, KapsoClient, KapsoListError, failure_outcome
from kapso_health.tasks.limiter import RateLimiter, retry_after_seconds
from kapso_health.tasks.settings import ApiKey, ConnectionSettings
from kapso_health.tasks.vocabulary import Outcome

BASE = "https://kapso.test/api/v1"
KEY = "sk-test-0123456789abcdef"
pytestmark = pytest.mark.anyio
HEALTHY = {"status": "healthy", "timestamp": "2025-01-15T10:00:00Z", "checks": {}}


def settings(**overrides: object) -> ConnectionSettings:
    values: dict = dict(
        api_key=ApiKey(KEY),
        base_url=BASE,
        rate_per_second=None,
        rate_per_minute=None,
        max_attempts=3,
        backoff_seconds=0.01,
        timeout_seconds=2,
    )
    values.update(overrides)
    return ConnectionSettings(**values)


def client_for(router: respx.MockRouter, **overrides: object) -> KapsoClient:
    return KapsoClient(settings(**overrides), transport=httpx.MockTransport(router.async_handler))


def health_route(router: respx.MockRouter, number: str = "cfg-1") -> respx.Route:
    return router.get(f"{BASE}/whatsapp_configs/{number}/health")


async def poll(router: respx.MockRouter, number: str = "cfg-1", **overrides: object):
    async with client_for(router, **overrides) as client:
        return await client.poll(number)


@pytest.fixture
def router() -> respx.MockRouter:
    return respx.MockRouter(assert_all_called=False)


async def test_sends_the_key_header_and_flattens_nothing_itself(router: respx.MockRouter) -> None:
    route = health_route(router).respond(200, json=HEALTHY)
    result = await poll(router)
    assert result.outcome is Outcome.OK and result.body == HEALTHY and result.attempts == 1
    assert route.calls.last.request.headers["X-API-Key"] == KEY


@pytest.mark.parametrize(
    "headers",
    [
        {
            "Retry-After": "1",
            "X-Health-RateLimit-Second-Limit": "5",
            "X-Health-RateLimit-Second-Remaining": "4",
            "X-Health-RateLimit-Minute-Limit": "30",
            "X-Health-RateLimit-Minute-Remaining": "29",
        },
        {"Retry-After": "1", "X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0"},
    ],
    ids=["health-family", "general-family"],
)
async def test_429_waits_for_retry_after_then_succeeds(
    router: respx.MockRouter, headers: dict, clock
) -> None:
    answers = iter(
        [
            httpx.Response(429, headers=headers, json={"error": "Rate limit exceeded"}),
            httpx.Response(200, json=HEALTHY),
        ]
    )
    sent: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(clock.seconds())
        return next(answers)

    health_route(router).side_effect = answer
    limiter = RateLimiter(per_second=None, per_minute=None, clock=clock, sleep=clock.sleep)
    transport = httpx.MockTransport(router.async_handler)
    async with KapsoClient(settings(), limiter, transport, clock=clock) as client:
        result = await client.poll("cfg-1")
    assert result.outcome is Outcome.OK and result.attempts == 2
    assert sent[1] - sent[0] == 1.0 and clock.slept == [1.0]  # Retry-After: 1, no more
    assert limiter.throttled == 1
    advertised = int(
        headers.get("X-Health-RateLimit-Minute-Limit", headers.get("X-RateLimit-Limit"))
    )
    assert limiter.windows["minute"].limit == advertised


async def test_429_exhausted_is_rate_limited(router: respx.MockRouter) -> None:
    health_route(router).respond(429, headers={"Retry-After": "0"}, json={"error": "x"})
    result = await poll(router)
    assert result.outcome is Outcome.RATE_LIMITED and result.attempts == 3
    assert result.http_status == 429


def test_retry_after_accepts_seconds_and_http_dates(clock) -> None:
    assert retry_after_seconds("7") == 7
    later = format_datetime(clock() + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(later, clock()) == 30
    earlier = format_datetime(clock() - timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds(earlier, clock()) == 0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


async def test_5xx_then_success(router: respx.MockRouter) -> None:
    health_route(router).side_effect = [
        httpx.Response(503, text="<html>Bad gateway</html>"),
        httpx.Response(502, json={"error": {"message": "x"}}),
        httpx.Response(200, json=HEALTHY),
    ]
    result = await poll(router)
    assert (result.outcome, result.attempts, result.http_status) == (Outcome.OK, 3, 200)
    assert result.error is None


async def test_5xx_exhausted_keeps_status_and_error(router: respx.MockRouter) -> None:
    health_route(router).respond(500, json={"error": {"message": "Internal server error"}})
    result = await poll(router)
    assert (result.outcome, result.http_status, result.attempts) == (Outcome.SERVER_ERROR, 500, 3)
    assert "Internal server error" in result.error and "3 attempts" in result.error


async def test_timeouts_are_retried_then_recorded(router: respx.MockRouter) -> None:
    route = health_route(router)
    route.side_effect = httpx.ReadTimeout("slow")
    result = await poll(router)
    assert (result.outcome, result.attempts, route.call_count) == (Outcome.TIMEOUT, 3, 3)
    assert result.http_status is None


async def test_a_hanging_server_is_cut_by_the_client_timeout(router: respx.MockRouter) -> None:
    answers: list[str] = []

    async def hang(request: httpx.Request) -> httpx.Response:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            answers.append("cut")
            raise
        answers.append("answered")
        return httpx.Response(200, json=HEALTHY)

    health_route(router).side_effect = hang
    result = await poll(router, timeout_seconds=0.2, max_attempts=2)
    assert (result.outcome, result.attempts) == (Outcome.TIMEOUT, 2)
    assert answers == ["cut", "cut"]  # each attempt was cut, none waited for an answer


@pytest.mark.parametrize(
    "body", [b'{"status": "healthy", "timest', b"<html>oops</html>", b"[1, 2]"]
)
async def test_invalid_bodies_are_retried_then_recorded(
    router: respx.MockRouter, body: bytes
) -> None:
    health_route(router).respond(200, content=body)
    result = await poll(router)
    assert (result.outcome, result.attempts) == (Outcome.INVALID_BODY, 3)
    assert result.raw == body


async def test_invalid_body_then_valid(router: respx.MockRouter) -> None:
    health_route(router).side_effect = [
        httpx.Response(200, content=b'{"status"'),
        httpx.Response(200, json=HEALTHY),
    ]
    result = await poll(router)
    assert (result.outcome, result.attempts) == (Outcome.OK, 2)


async def test_401_stops_the_whole_run_without_leaking_the_key(router: respx.MockRouter) -> None:
    route = router.get(url__regex=rf"{BASE}/whatsapp_configs/.+/health").respond(
        401, json={"error": f"Invalid or missing API key {KEY}"}
    )
    async with client_for(router) as client:
        first = await client.poll("a")
        second = await client.poll("b")
        with pytest.raises(KapsoAuthError) as raised:
            client.raise_for_auth()
    assert route.call_count == 1  # the second number was never requested
    assert (first.outcome, first.http_status, first.attempts) == (Outcome.UNAUTHORIZED, 401, 1)
    assert (second.outcome, second.http_status, second.attempts) == (Outcome.UNAUTHORIZED, None, 0)
    message = str(raised.value)
    assert KEY not in message and "401" in message and "KAPSO_API_KEY" in message
    assert first.error == second.error == message


async def test_403_is_also_fatal(router: respx.MockRouter) -> None:
    health_route(router).respond(403, json={"error": "Forbidden"})
    async with client_for(router) as client:
        result = await client.poll("cfg-1")
        with pytest.raises(KapsoAuthError, match="403"):
            client.raise_for_auth()
    assert result.outcome is Outcome.UNAUTHORIZED


async def test_401_on_the_list_raises_at_once(router: respx.MockRouter) -> None:
    route = router.get(f"{BASE}/whatsapp_configs").respond(401, json={"error": "nope"})
    async with client_for(router) as client:
        with pytest.raises(KapsoAuthError):
            await client.list_numbers()
    assert route.call_count == 1


async def test_404_is_recorded_once_not_retried(router: respx.MockRouter) -> None:
    route = health_route(router).respond(404, json={"error": "WhatsApp config not found"})
    result = await poll(router)
    assert (result.outcome, result.http_status, route.call_count) == (Outcome.NOT_FOUND, 404, 1)
    assert "not found" in result.error


async def test_ids_are_sent_as_text_and_escaped(router: respx.MockRouter) -> None:
    route = router.get(f"{BASE}/whatsapp_configs/a%2Fb%3F/health").respond(200, json=HEALTHY)
    result = await poll(router, number="a/b?")
    assert result.outcome is Outcome.OK and route.called and result.number_id == "a/b?"


async def test_platform_flavour_url(router: respx.MockRouter) -> None:
    base = "https://kapso.test/platform/v1"
    route = router.get(f"{base}/whatsapp/phone_numbers/0106540352242922/health").respond(
        200, json=HEALTHY
    )
    result = await poll(router, number="0106540352242922", base_url=base, flavour="platform")
    assert route.called and result.number_id == "0106540352242922"


def test_failure_outcome_reads_the_cause_chain() -> None:
    reset = httpx.ConnectTimeout("mapped by the aiohttp transport")
    reset.__cause__ = aiohttp.ServerDisconnectedError()
    slow = httpx.ReadTimeout("read")
    slow.__cause__ = aiohttp.SocketTimeoutError()
    assert failure_outcome(reset) is Outcome.CONNECTION_ERROR
    assert failure_outcome(slow) is Outcome.TIMEOUT
    assert failure_outcome(httpx.ConnectError("refused")) is Outcome.CONNECTION_ERROR
    assert failure_outcome(TimeoutError()) is Outcome.TIMEOUT


def page(items: list[dict], page_no: int | None = None, total_pages: int | None = None) -> dict:
    body: dict = {"data": items}
    if total_pages is not None:
        body["meta"] = {
            "page": page_no,
            "per_page": 100,
            "total_pages": total_pages,
            "total_count": 0,
        }
    return body


async def test_list_stops_at_total_pages_and_deduplicates(router: respx.MockRouter) -> None:
    first = [{"id": f"n{i}"} for i in range(100)]
    second = [{"id": "n99"}, {"id": "n100"}, {"id": 101}, {"no_id": True}, "junk"]
    route = router.get(f"{BASE}/whatsapp_configs")
    route.side_effect = [
        httpx.Response(200, json=page(first, 1, 2)),
        httpx.Response(200, json=page(second, 2, 2)),
        httpx.Response(200, json=page([{"id": "never"}], 3, 2)),
    ]
    async with client_for(router) as client:
        items = await client.list_numbers()
    ids = [str(item["id"]) for item in items]
    assert len(ids) == len(set(ids)) == 102 and "never" not in ids and "101" in ids
    assert route.call_count == 2
    assert route.calls[1].request.url.params["page"] == "2"


async def test_list_without_meta_stops_on_short_page(router: respx.MockRouter) -> None:
    route = router.get(f"{BASE}/whatsapp_configs")
    route.side_effect = [
        httpx.Response(200, json=page([{"id": f"a{i}"} for i in range(100)])),
        httpx.Response(200, json=page([{"id": "b"}])),
    ]
    async with client_for(router) as client:
        assert len(await client.list_numbers()) == 101
    assert route.call_count == 2


async def test_list_without_meta_stops_on_empty_page(router: respx.MockRouter) -> None:
    route = router.get(f"{BASE}/whatsapp_configs")
    route.side_effect = [
        httpx.Response(200, json=page([{"id": f"a{i}"} for i in range(100)])),
        httpx.Response(200, json=page([])),
    ]
    async with client_for(router) as client:
        assert len(await client.list_numbers()) == 100
    assert route.call_count == 2


async def test_list_retries_429_and_5xx_then_fails_clearly(router: respx.MockRouter) -> None:
    route = router.get(f"{BASE}/whatsapp_configs")
    route.side_effect = [
        httpx.Response(429, headers={"Retry-After": "0"}),
        httpx.Response(200, json=page([{"id": "x"}], 1, 1)),
    ]
    async with client_for(router) as client:
        assert [i["id"] for i in await client.list_numbers()] == ["x"]
    route.side_effect = None
    route.respond(500, text="boom")
    async with client_for(router) as client:
        with pytest.raises(KapsoListError, match="server_error"):
            await client.list_numbers()


async def test_limiter_is_shared_so_budgets_hold_across_numbers(
    router: respx.MockRouter, clock
) -> None:
    health_route(router, "x").respond(200, json=HEALTHY)
    limiter = RateLimiter(
        per_second=4,
        per_minute=None,
        max_in_flight=8,
        margin_seconds=0,
        clock=clock,
        sleep=clock.sleep,
    )
    start = clock()
    async with KapsoClient(
        settings(), limiter, httpx.MockTransport(router.async_handler), clock=clock
    ) as client:
        results = await asyncio.gather(*(client.poll("x") for _ in range(9)))
    expected = [start + timedelta(seconds=i // 4) for i in range(9)]  # four per second
    assert limiter.windows["second"].sent == [at.timestamp() for at in expected]
    assert [r.polled_at for r in results] == expected  # first come, first served


async def test_the_default_limiter_reads_the_clients_clock(router: respx.MockRouter, clock) -> None:
    health_route(router).side_effect = [
        httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "x"}),
        httpx.Response(200, json=HEALTHY),
    ]
    transport = httpx.MockTransport(router.async_handler)
    async with KapsoClient(settings(rate_per_second=5), transport=transport, clock=clock) as client:
        result = await client.poll("cfg-1")
    assert result.outcome is Outcome.OK and result.attempts == 2
    assert client.limiter.windows["second"].sent == [clock.seconds()] * 2
    assert client.limiter.paused_until == clock.seconds()


async def test_no_request_starts_after_stop_at_and_no_retry_either(
    router: respx.MockRouter, clock
) -> None:
    route = router.get(url__regex=rf"{BASE}/whatsapp_configs/.+/health")
    route.side_effect = lambda request: (
        httpx.Response(500, text="boom")
        if "cfg-12" in str(request.url)
        else httpx.Response(200, json=HEALTHY)
    )
    transport = httpx.MockTransport(router.async_handler)
    budget = settings(rate_per_second=None, rate_per_minute=15, max_attempts=4)
    async with KapsoClient(budget, transport=transport, clock=clock) as client:
        client.stop_at = clock() + timedelta(seconds=59)  # the 16th unit is free at +60 s
        client.limiter.sleep = clock.sleep
        results = [await client.poll(f"cfg-{i}") for i in range(18)]
    reached = [r for r in results if r is not None]
    # cfg-0..11 take 12 units; cfg-12 fails three times in the last 3, and its 4th attempt
    # would start after stop_at: not made. cfg-13.. never start.
    assert route.call_count == 15 == client.limiter.requests
    assert len(reached) == 13 and results[13:] == [None] * 5
    assert (reached[12].outcome, reached[12].attempts) == (Outcome.SERVER_ERROR, 3)
