"""A Kapso look-alike HTTP server on loopback: both API flavours, rate limits, faults, a clock."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiohttp import web

from kapso_health.simulator.fleet import Fleet

LEGACY = "/api/v1"
PLATFORM = "/platform/v1"


FAULT_KINDS = (
    "server_error",
    "timeout",
    "malformed",
    "truncated",
    "reset",
    "burst_429",
    "unauthorized",
)


@dataclass
class Faults:
    """Probability per health request of each injected fault."""

    server_error: float = 0.0
    timeout: float = 0.0
    malformed: float = 0.0
    truncated: float = 0.0
    reset: float = 0.0
    burst_429: float = 0.0
    unauthorized: float = 0.0
    hang_seconds: float = 40.0
    burst_seconds: float = 1.0


@dataclass
class SimulatorConfig:
    numbers: int = 50
    seed: int = 7
    api_key: str | None = None  # None: any non-empty key is accepted
    rate_per_second: float | None = 5.0  # Kapso's health limits per project; None turns one off
    rate_per_minute: float | None = 60.0
    general_per_minute: int = 1000
    latency_ms: tuple[float, float] = (20.0, 80.0)
    faults: Faults = field(default_factory=Faults)


class SlidingWindow:
    """At most `limit` events in any `seconds`-long window (strict: never over, however timed)."""

    def __init__(self, limit: float | None, seconds: float) -> None:
        self.limit = None if limit is None else int(limit)
        self.seconds = seconds
        self.events: deque[float] = deque()

    def wait(self, now: float) -> float:
        """0 when an event may happen now, else the seconds until one may."""
        if self.limit is None:
            return 0.0
        while self.events and self.events[0] <= now - self.seconds:
            self.events.popleft()
        if len(self.events) < self.limit:
            return 0.0
        return self.events[-self.limit] + self.seconds - now

    def remaining(self) -> int:
        return 0 if self.limit is None else max(0, self.limit - len(self.events))


class HealthLimiter:
    """Kapso's health limiter of one project: a per-second and a per-minute window."""

    def __init__(self, per_second: float | None, per_minute: float | None) -> None:
        self.windows = {
            "Second": SlidingWindow(per_second, 1.0),
            "Minute": SlidingWindow(per_minute, 60.0),
        }

    def wait(self, now: float) -> float:
        """0 when a health request may go now, else the seconds until one may."""
        return max(window.wait(now) for window in self.windows.values())

    def take(self, now: float) -> None:
        for window in self.windows.values():
            if window.limit is not None:
                window.events.append(now)

    def headers(self) -> dict[str, str]:
        headers = {}
        for label, window in self.windows.items():
            if window.limit is not None:
                headers[f"X-Health-RateLimit-{label}-Limit"] = str(window.limit)
                headers[f"X-Health-RateLimit-{label}-Remaining"] = str(window.remaining())
        return headers


class Simulator:
    """The request handlers and their shared state (limiter windows, clock, counters)."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.fleet = Fleet(config.numbers, config.seed)
        self.rng = random.Random(config.seed)
        self.limiter = HealthLimiter(config.rate_per_second, config.rate_per_minute)
        self.general: dict[int, int] = {}
        self.clock_offset = 0.0
        self.burst_until = 0.0
        self.stats: Counter[str] = Counter()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(f"{LEGACY}/whatsapp_configs", self.list_numbers)
        app.router.add_get(f"{LEGACY}/whatsapp_configs/{{id}}/health", self.health)
        app.router.add_get(f"{PLATFORM}/whatsapp/phone_numbers", self.list_numbers)
        app.router.add_get(f"{PLATFORM}/whatsapp/phone_numbers/{{id}}/health", self.health)
        app.router.add_get("/_sim/stats", self.get_stats)
        app.router.add_post("/_sim/clock", self.advance_clock)
        return app

    def now(self) -> float:
        return time.time() + self.clock_offset

    async def list_numbers(self, request: web.Request) -> web.StreamResponse:
        self.stats["list_requests"] += 1
        if (denied := self._auth(request)) is not None:
            return denied
        minute = int(time.monotonic() // 60)
        used = self.general.get(minute, 0) + 1
        self.general = {minute: used}
        headers = {
            "X-RateLimit-Limit": str(self.config.general_per_minute),
            "X-RateLimit-Remaining": str(max(0, self.config.general_per_minute - used)),
        }
        if used > self.config.general_per_minute:
            return self._json(
                429,
                {"error": "Rate limit exceeded"},
                {**headers, "Retry-After": str(60 - int(time.monotonic() % 60))},
            )
        page = _int(request.query.get("page"), 1, 1, 10**6)
        per_page = _int(request.query.get("per_page"), 20, 1, 100)
        flavour = "platform" if request.path.startswith(PLATFORM) else "legacy"
        body = self.fleet.list_page(flavour, page, per_page)
        if flavour == "platform":
            meta = body["meta"]
            headers.update(
                {
                    "X-Total": str(meta["total_count"]),
                    "X-Page": str(page),
                    "X-Total-Pages": str(meta["total_pages"]),
                    "X-Per-Page": str(per_page),
                }
            )
        return self._json(200, body, headers)

    async def health(self, request: web.Request) -> web.StreamResponse:
        self.stats["health_requests"] += 1
        faults = self.config.faults
        if (denied := self._auth(request)) is not None:
            return denied
        if self._roll(faults.unauthorized, "unauthorized"):
            return self._json(401, {"error": "Invalid or missing API key"})
        limited = self._rate_limit()
        if limited is not None:
            return limited
        headers = self.limiter.headers()
        low, high = self.config.latency_ms
        await asyncio.sleep(self.rng.uniform(low, high) / 1000)
        if self._roll(faults.reset, "reset"):
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        hung = self._roll(faults.timeout, "timeout")
        if hung:  # the client gives up meanwhile; no second fault on the same request
            await asyncio.sleep(faults.hang_seconds)
        if not hung and self._roll(faults.server_error, "server_error"):
            status = self.rng.choice((500, 502, 503, 504))
            if self.rng.random() < 0.5:
                return self._reply(
                    status, b"<html><body>Bad gateway</body></html>", headers, "text/html"
                )
            return self._json(status, {"error": {"message": "Internal server error"}}, headers)
        if not hung and self._roll(faults.malformed, "malformed"):
            return self._reply(200, b"<html>upstream error</html>", headers, "text/html")
        number = self.fleet.find(request.match_info["id"])
        flavour = "platform" if request.path.startswith(PLATFORM) else "legacy"
        if number is None or number.id_for(flavour) != request.match_info["id"]:
            return self._json(404, {"error": "WhatsApp config not found"}, headers)
        if number.profile == "deleted":
            return self._json(404, {"error": "Phone number not found"}, headers)
        payload = orjson.dumps(self.fleet.health(number, flavour, self.now()))
        if not hung and self._roll(faults.truncated, "truncated"):
            payload = payload[: len(payload) // 2]
        return self._reply(200, payload, headers)

    async def get_stats(self, request: web.Request) -> web.StreamResponse:
        body = {"counts": dict(self.stats), "config": asdict(self.config), "now": self.now()}
        body["config"].pop("api_key", None)
        return self._json(200, body)

    async def advance_clock(self, request: web.Request) -> web.StreamResponse:
        """Move simulated time by `{"seconds": N}` or set it to `{"at": unix_seconds}`.

        Histories then build without waiting; the clock runs on in real time from there.
        """
        body = await request.json()
        if "at" in body:
            self.clock_offset = float(body["at"]) - time.time()
        else:
            self.clock_offset += float(body.get("seconds", 0))
        return self._json(200, {"now": self.now()})

    def _auth(self, request: web.Request) -> web.StreamResponse | None:
        key = request.headers.get("X-API-Key")
        if not key or (self.config.api_key is not None and key != self.config.api_key):
            return self._json(401, {"error": "Invalid or missing API key"})
        return None

    def _rate_limit(self) -> web.StreamResponse | None:
        now = time.monotonic()
        if now < self.burst_until or self._roll(self.config.faults.burst_429, "burst_429"):
            self.burst_until = max(self.burst_until, now + self.config.faults.burst_seconds)
            wait = self.burst_until - now
        else:
            wait = self.limiter.wait(now)
        if wait > 0:
            headers = {**self.limiter.headers(), "Retry-After": str(max(1, math.ceil(wait)))}
            return self._json(
                429,
                {
                    "error": "Rate limit exceeded",
                    "message": "Too many health checks for this project",
                },
                headers,
            )
        self.limiter.take(now)
        return None

    def _roll(self, probability: float, fault: str) -> bool:
        if probability > 0 and self.rng.random() < probability:
            self.stats[f"fault_{fault}"] += 1
            return True
        return False

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        return self._reply(status, orjson.dumps(body), headers or {})

    def _reply(
        self,
        status: int,
        payload: bytes,
        headers: dict[str, str],
        content_type: str = "application/json",
    ) -> web.Response:
        self.stats[f"status_{status}"] += 1
        return web.Response(status=status, body=payload, headers=headers, content_type=content_type)


def _int(text: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(text))) if text is not None else default
    except ValueError:
        return default
