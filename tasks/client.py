"""The Kapso health client: one shared async HTTP client per run, retries, outcomes per number."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from kapso_health.tasks.clock import Clock, utc_now
from kapso_health.tasks.flatten import body_error
from kapso_health.tasks.limiter import RateLimiter, SharedBudget, retry_after_seconds
from kapso_health.tasks.poll import PollResult
from kapso_health.tasks.settings import ConnectionSettings
from kapso_health.tasks.vocabulary import Outcome

LIST_PAGE_SIZE = 100
PREFLIGHT_ATTEMPTS = 2  # the first answer comes fast: one retry for a blip, not four
MAX_LIST_PAGES = 10_000
RETRIED = {
    Outcome.RATE_LIMITED,
    Outcome.SERVER_ERROR,
    Outcome.TIMEOUT,
    Outcome.CONNECTION_ERROR,
    Outcome.INVALID_BODY,
}


class KapsoAuthError(RuntimeError):
    """Kapso refused the API key (401/403): nothing else in the run can succeed."""


class KapsoListError(RuntimeError):
    """The list endpoint could not be read, so the numbers to poll are unknown."""


class KapsoClient:
    """`async with KapsoClient(settings) as client:` then `poll(id)` and `list_numbers()`."""

    def __init__(
        self,
        settings: ConnectionSettings,
        limiter: RateLimiter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = utc_now,
        shared: SharedBudget | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.limiter = limiter or RateLimiter(
            settings.rate_per_second,
            settings.rate_per_minute,
            settings.max_in_flight,
            shared=shared,
            clock=clock,
        )
        self._http = httpx.AsyncClient(
            transport=transport
            or AiohttpTransport(client=lambda: _aiohttp_session(settings.max_in_flight)),
            headers={"X-API-Key": settings.api_key.reveal(), "Accept": "application/json"},
            timeout=httpx.Timeout(settings.timeout_seconds),
            follow_redirects=False,
        )
        self.auth_failure: KapsoAuthError | None = None  # set by the first 401/403
        self.refused = asyncio.Event()  # set with it: polls waiting for their slot stop waiting
        self.stop_at: datetime | None = None  # a rolling run's last start: no new polls after
        self.deadline: datetime | None = None  # its window's end: no request outlives it
        self.attempt_outcomes: Counter[str] = Counter()  # every health request's outcome

    async def __aenter__(self) -> KapsoClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def poll(self, number_id: str) -> PollResult | None:
        """Poll one number's health, retrying transient failures; never raises for a number.

        After a 401/403 (`auth_failure`), every poll resolves at once as `unauthorized`
        without a request: the run stops, and every number still gets its row. No request
        starts at or after `stop_at` (a rolling run's window): a number not reached by then
        has no result (None), and a retry that would start later is not made.
        """
        result = PollResult(number_id, self.clock(), Outcome.OK)
        url = self.settings.health_url(number_id)
        for attempt in range(1, self.settings.max_attempts + 1):
            if self.auth_failure is not None:
                return self._unauthorized(result)
            async with self.limiter.slot(until=self.stop_at) as sent_at:
                if self.auth_failure is not None:
                    return self._unauthorized(result)
                if sent_at is None:  # the run's window closes before a budget unit is free
                    if attempt == 1:
                        return None
                    break
                if attempt == 1:
                    result.polled_at = self.clock()  # when it left, not when it queued
                response = await self._send(url, result)
                if response is not None:
                    self.limiter.observe(sent_at, response.status_code, response.headers)
            result.attempts = attempt
            if response is not None:
                self._classify(response, result)
            self.attempt_outcomes[result.outcome.value] += 1
            if result.outcome not in RETRIED or attempt == self.settings.max_attempts:
                break
            if result.outcome is not Outcome.RATE_LIMITED:  # a 429 already paused the limiter
                await asyncio.sleep(self._backoff(attempt))
        if result.outcome in RETRIED:
            result.error = self.settings.api_key.scrub(
                f"{result.error} (after {result.attempts} attempt"
                f"{'s' if result.attempts > 1 else ''})"
            )
        return result

    async def list_numbers(
        self, progress: Callable[[int], None] | None = None
    ) -> list[dict[str, Any]]:
        """Every number of the project from the list endpoint, de-duplicated by id."""
        items: dict[str, dict[str, Any]] = {}
        for page in range(1, MAX_LIST_PAGES + 1):
            body = await self._list_page(page)
            data = body.get("data")
            if not isinstance(data, list):
                raise KapsoListError(f"page {page} of the number list has no 'data' list")
            for item in data:
                if isinstance(item, dict) and item.get("id") not in (None, ""):
                    items.setdefault(str(item["id"]), item)
            if progress:
                progress(len(items))
            if _last_page(body.get("meta"), page, len(data)):
                break
        return list(items.values())

    async def check_access(self) -> None:
        """One cheap request before anything else: the first list page with one item. Raises
        KapsoAuthError (the key is refused) or KapsoListError (the API cannot be read, after
        PREFLIGHT_ATTEMPTS tries), with the messages the run itself would give."""
        await self._list_page(1, probe=True)

    async def _list_page(self, page: int, probe: bool = False) -> dict[str, Any]:
        """One page of the number list, retried. A `probe` asks for one item, tries
        PREFLIGHT_ATTEMPTS times, and takes a 429 as an answer (the key was accepted)."""
        params = {"page": page, "per_page": 1 if probe else LIST_PAGE_SIZE}
        result = PollResult("list", self.clock(), Outcome.OK)
        attempts = PREFLIGHT_ATTEMPTS if probe else self.settings.max_attempts
        for attempt in range(1, attempts + 1):
            response = await self._send(self.settings.list_url(), result, params)
            if response is not None:
                self._classify(response, result)
                self.raise_for_auth()
                if response.status_code == 429 and probe:
                    return {}
                if response.status_code == 429:
                    await asyncio.sleep(
                        retry_after_seconds(response.headers.get("retry-after"), self.clock())
                        or self._backoff(attempt)
                    )
                    continue
            if result.outcome is Outcome.OK and isinstance(result.body, dict):
                return result.body
            if result.outcome not in RETRIED or attempt == attempts:
                break
            await asyncio.sleep(self._backoff(attempt))
        raise KapsoListError(
            self.settings.api_key.scrub(
                f"could not read page {page} of the number list: {result.outcome.value}"
                f" ({result.error or 'no detail'}) after {attempt} attempts"
            )
        )

    async def _send(
        self, url: str, result: PollResult, params: dict[str, Any] | None = None
    ) -> httpx.Response | None:
        """One request; a transport failure is recorded on `result` and gives None."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout()):
                response = await self._http.get(url, params=params)
        except (httpx.HTTPError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            result.latency_ms = (time.perf_counter() - started) * 1000
            result.outcome = failure_outcome(exc)
            result.http_status = None
            result.body = result.raw = None
            result.error = f"{result.outcome.value}: {type(exc).__name__}"
            return None
        result.latency_ms = (time.perf_counter() - started) * 1000
        return response

    def _timeout(self) -> float:
        """The request timeout, cut to what is left of a rolling run's window."""
        if self.deadline is None:
            return self.settings.timeout_seconds
        left = (self.deadline - self.clock()).total_seconds()
        return max(0.001, min(self.settings.timeout_seconds, left))

    def _classify(self, response: httpx.Response, result: PollResult) -> None:
        status = response.status_code
        result.http_status = status
        result.raw = response.content
        try:
            result.body = orjson.loads(result.raw)
        except orjson.JSONDecodeError:
            result.body = None
        if status in (401, 403):
            reason = body_error(result.body) or response.reason_phrase
            self.auth_failure = self.auth_failure or KapsoAuthError(
                self.settings.api_key.scrub(
                    f"Kapso refused the API key (HTTP {status}: {reason}). Check KAPSO_API_KEY or "
                    "the Secret block; the run stopped without polling further."
                )
            )
            self.refused.set()
            result.outcome, result.error = Outcome.UNAUTHORIZED, str(self.auth_failure)
            return
        if status == 200 and isinstance(result.body, dict):
            result.outcome, result.error = Outcome.OK, None
            return
        result.outcome = _status_outcome(status)
        detail = body_error(result.body) if isinstance(result.body, dict) else None
        if status == 200:
            detail = "the body is not a JSON object"
        result.error = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"

    def raise_for_auth(self) -> None:
        """Raise the 401/403 failure, if one happened."""
        if self.auth_failure is not None:
            raise self.auth_failure

    def _unauthorized(self, result: PollResult) -> PollResult:
        assert self.auth_failure is not None
        result.outcome, result.error = Outcome.UNAUTHORIZED, str(self.auth_failure)
        return result

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        ceiling = self.settings.backoff_seconds * 2 ** (attempt - 1)
        return random.uniform(0, min(self.settings.backoff_cap_seconds, ceiling))


def _aiohttp_session(max_connections: int) -> aiohttp.ClientSession:
    """The aiohttp session under httpx, without aiohttp's silent re-send.

    aiohttp re-sends a request once when a kept-alive connection drops; that request would
    spend rate budget outside the limiter and the attempt count, so it is switched off (no
    public option exists; the integration test's request count checks that this holds).
    """
    connector = aiohttp.TCPConnector(limit=max_connections, ssl=httpx.create_ssl_context())
    session = aiohttp.ClientSession(connector=connector)
    session._retry_connection = False
    return session


def failure_outcome(exc: BaseException) -> Outcome:
    """Timeout or connection error, judged by the whole cause chain (the aiohttp transport
    reports a dropped connection as `httpx.ConnectTimeout`)."""
    chain = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(e, TimeoutError) for e in chain):
        return Outcome.TIMEOUT
    if any(isinstance(e, aiohttp.ClientConnectionError | OSError) for e in chain):
        return Outcome.CONNECTION_ERROR
    return Outcome.TIMEOUT if isinstance(exc, httpx.TimeoutException) else Outcome.CONNECTION_ERROR


def _status_outcome(status: int) -> Outcome:
    if status == 200:
        return Outcome.INVALID_BODY
    if status == 429:
        return Outcome.RATE_LIMITED
    if status >= 500:
        return Outcome.SERVER_ERROR
    return Outcome.NOT_FOUND  # 404, and any other 4xx that refuses this number


def _last_page(meta: Any, page: int, count: int) -> bool:
    """Stop at `meta.total_pages`; without usable meta, on an empty or short page."""
    if isinstance(meta, dict) and isinstance(meta.get("total_pages"), int):
        return page >= meta["total_pages"] or count == 0
    return count < LIST_PAGE_SIZE
