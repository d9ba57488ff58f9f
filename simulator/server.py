"""A Kapso look-alike HTTP server on loopback: both API flavours, rate limits, faults, a clock."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from aiohttp import web

from kapso_health.simulator.fleet import Fleet

LEGACY = "/api/v1"
PLATFORM = "/platform/v1"


UNAUTHORISED = {"error": "Invalid or missing API key"}

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
class Project:
    """One Kapso project: its keys share its fleet and its health limiter."""

    name: str
    keys: tuple[str, ...]  # empty: any non-empty key (only in the single-project form)
    numbers: int = 50
    seed: int = 7  # its fleet's ids; projects need different seeds
    rate_per_second: float | None = 5.0  # Kapso's health limits per project; None turns one off
    rate_per_minute: float | None = 60.0
    general_per_minute: int = 1000  # per key, fixed minute window (list requests)


@dataclass
class SimulatorConfig:
    """One project built from the first six fields, unless `projects` is given (then they are
    ignored: each project carries its own fleet, keys and limits)."""

    numbers: int = 50
    seed: int = 7
    api_key: str | None = None  # None: any non-empty key is accepted
    rate_per_second: float | None = 5.0
    rate_per_minute: float | None = 60.0
    general_per_minute: int = 1000
    latency_ms: tuple[float, float] = (20.0, 80.0)
    faults: Faults = field(default_factory=Faults)
    projects: list[Project] = field(default_factory=list)

    def all_projects(self) -> list[Project]:
        """The projects served, checked: distinct names, keys and seeds (so distinct ids)."""
        if not self.projects:
            keys = () if self.api_key is None else (self.api_key,)
            return [
                Project(
                    name="default",  # Kapso's project, not the history's column
                    keys=keys,
                    numbers=self.numbers,
                    seed=self.seed,
                    rate_per_second=self.rate_per_second,
                    rate_per_minute=self.rate_per_minute,
                    general_per_minute=self.general_per_minute,
                )
            ]
        keys = [key for project in self.projects for key in project.keys]
        for what, values in (
            ("name", [project.name for project in self.projects]),
            ("key", keys),
            ("seed", [project.seed for project in self.projects]),
        ):
            if len(set(values)) != len(values):
                raise ValueError(f"simulator projects need distinct {what}s")
        if not all(project.keys for project in self.projects) or not all(keys):
            raise ValueError("every simulator project needs at least one non-empty key")
        return self.projects


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


class ProjectState:
    """A project's fleet, limiters and counters."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self.fleet = Fleet(project.numbers, project.seed)
        self.limiter = HealthLimiter(project.rate_per_second, project.rate_per_minute)
        self.general: dict[str, tuple[int, int]] = {}  # key: (minute, requests in it)
        self.burst_until = 0.0  # an injected burst of 429s lasts this long
        self.stats: Counter[str] = Counter()

    def count_general(self, key: str, minute: int) -> int:
        """Requests of `key` in this fixed minute, this one included."""
        last, used = self.general.get(key, (minute, 0))
        used = used + 1 if last == minute else 1
        self.general[key] = (minute, used)
        return used


class Simulator:
    """The request handlers and their shared state (projects, clock, counters)."""

    def __init__(
        self,
        config: SimulatorConfig,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`clock` (epoch seconds) is what the bodies are of; `monotonic` times the limiters.
        The fleet-day benchmark passes its event loop's simulated time for both."""
        self.config = config
        self.clock = clock
        self.monotonic = monotonic
        self.projects = [ProjectState(project) for project in config.all_projects()]
        self.by_key = {key: state for state in self.projects for key in state.project.keys}
        self.rng = random.Random(config.seed)
        self.clock_offset = 0.0
        self.stats: Counter[str] = Counter()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_count_per_project])
        app.router.add_get(f"{LEGACY}/whatsapp_configs", self.list_numbers)
        app.router.add_get(f"{LEGACY}/whatsapp_configs/{{id}}/health", self.health)
        app.router.add_get(f"{PLATFORM}/whatsapp/phone_numbers", self.list_numbers)
        app.router.add_get(f"{PLATFORM}/whatsapp/phone_numbers/{{id}}/health", self.health)
        app.router.add_get("/_sim/stats", self.get_stats)
        app.router.add_post("/_sim/clock", self.advance_clock)
        return app

    def now(self) -> float:
        return self.clock() + self.clock_offset

    async def list_numbers(self, request: web.Request) -> web.StreamResponse:
        self.stats["list_requests"] += 1
        if (state := self._project(request, "list_requests")) is None:
            return self._json(401, UNAUTHORISED)
        limit = state.project.general_per_minute
        used = state.count_general(request.headers["X-API-Key"], int(self.monotonic() // 60))
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(max(0, limit - used)),
        }
        if used > limit:
            return self._json(
                429,
                {"error": "Rate limit exceeded"},
                {**headers, "Retry-After": str(60 - int(self.monotonic() % 60))},
            )
        page = _int(request.query.get("page"), 1, 1, 10**6)
        per_page = _int(request.query.get("per_page"), 20, 1, 100)
        flavour = "platform" if request.path.startswith(PLATFORM) else "legacy"
        body = state.fleet.list_page(flavour, page, per_page)
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
        if (state := self._project(request, "health_requests")) is None:
            return self._json(401, UNAUTHORISED)
        if self._roll(faults.unauthorized, "unauthorized"):
            return self._json(401, UNAUTHORISED)
        limited = self._rate_limit(state)
        if limited is not None:
            return limited
        headers = state.limiter.headers()
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
        number = state.fleet.find(request.match_info["id"])
        flavour = "platform" if request.path.startswith(PLATFORM) else "legacy"
        if number is None or number.id_for(flavour) != request.match_info["id"]:
            return self._json(404, {"error": "WhatsApp config not found"}, headers)
        if number.profile == "deleted":
            return self._json(404, {"error": "Phone number not found"}, headers)
        payload = orjson.dumps(state.fleet.health(number, flavour, self.now()))
        if not hung and self._roll(faults.truncated, "truncated"):
            payload = payload[: len(payload) // 2]
        return self._reply(200, payload, headers)

    async def get_stats(self, request: web.Request) -> web.StreamResponse:
        config = asdict(self.config)
        config.pop("api_key", None)
        for project in config["projects"]:
            project.pop("keys")
        body = {
            "counts": dict(self.stats),
            "projects": {s.project.name: dict(s.stats) for s in self.projects},
            "config": config,
            "now": self.now(),
        }
        return self._json(200, body)

    async def advance_clock(self, request: web.Request) -> web.StreamResponse:
        """Move simulated time by `{"seconds": N}` or set it to `{"at": unix_seconds}`.

        Histories then build without waiting; the clock runs on in real time from there.
        """
        body = await request.json()
        if "at" in body:
            self.clock_offset = float(body["at"]) - self.clock()
        else:
            self.clock_offset += float(body.get("seconds", 0))
        return self._json(200, {"now": self.now()})

    def _project(self, request: web.Request, counter: str) -> ProjectState | None:
        """The project the request's key belongs to (None: answer 401), counting the request."""
        key = request.headers.get("X-API-Key")
        state = self.by_key.get(key) if key else None
        if state is None and key and not self.projects[0].project.keys:
            state = self.projects[0]  # the single-project form without a key: any key
        if state is not None:
            state.stats[counter] += 1
            request[PROJECT_OF_REQUEST] = state  # for _count_per_project
        return state

    def _rate_limit(self, state: ProjectState) -> web.StreamResponse | None:
        now, limiter = self.monotonic(), state.limiter
        if now < state.burst_until or self._roll(self.config.faults.burst_429, "burst_429"):
            state.burst_until = max(state.burst_until, now + self.config.faults.burst_seconds)
            wait = state.burst_until - now
        else:
            wait = limiter.wait(now)
        if wait > 0:
            headers = {**limiter.headers(), "Retry-After": str(max(1, math.ceil(wait)))}
            return self._json(
                429,
                {
                    "error": "Rate limit exceeded",
                    "message": "Too many health checks for this project",
                },
                headers,
            )
        limiter.take(now)
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


PROJECT_OF_REQUEST = web.RequestKey("project", ProjectState)  # set once the key is known


@web.middleware
async def _count_per_project(request: web.Request, handler: Any) -> web.StreamResponse:
    """Count each answer's status in the stats of the project that asked (once it is known)."""
    response = await handler(request)
    if (state := request.get(PROJECT_OF_REQUEST)) is not None:
        state.stats[f"status_{response.status}"] += 1
    return response


def _int(text: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(high, max(low, int(text))) if text is not None else default
    except ValueError:
        return default


@asynccontextmanager
async def serving(simulator: Simulator, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """`async with serving(simulator) as url:` the simulator on a free port of the running
    loop (any loop, the simulated-time one included); `url` is its root (no API prefix)."""
    runner = web.AppRunner(simulator.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
