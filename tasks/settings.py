"""Settings in one place: every default, the endpoints, the API key, limits, timeouts, retries.

The flows' parameters, the command line's options and the deployments all take their
defaults from the constants here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

Flavour = Literal["legacy", "platform"]

DEFAULT_BASE_URLS: dict[str, str] = {
    "legacy": "https://app.kapso.ai/api/v1",
    "platform": "https://api.kapso.ai/platform/v1",
}
HEALTH_PATHS: dict[str, str] = {
    "legacy": "/whatsapp_configs/{id}/health",
    "platform": "/whatsapp/phone_numbers/{id}/health",
}
LIST_PATHS: dict[str, str] = {
    "legacy": "/whatsapp_configs",
    "platform": "/whatsapp/phone_numbers",
}
API_KEY_ENV = "KAPSO_API_KEY"
DEFAULT_STORAGE = "./data"  # unless the Variable kapso_health_storage or KAPSO_HEALTH_STORAGE says
DEMO_STORAGE = "./demo-data"  # the demo's simulated history never mixes with a real one
DEMO_DAYS = 2  # whole UTC days the demo simulates, ending yesterday
DEMO_EVERY_MINUTES = 15  # its simulated poll interval
RATE_PER_SECOND = 5.0  # Kapso's health-check limits per project
RATE_PER_MINUTE = 60.0
MAX_IN_FLIGHT = 16
TIMEOUT_SECONDS = 30.0  # Kapso answers `error` itself after 15 s: wait longer than that
MAX_ATTEMPTS = 4
CHUNK_SIZE = 500  # numbers per Prefect task run (a task run costs milliseconds)
MAX_GAP_MINUTES = 30  # the report's fixed max gap, when one is asked for (--max-gap-minutes)
# By default an observation holds for its number's own cadence: CADENCE_GAP_FACTOR x the
# time-weighted median interval between the number's observations that day and the day before
# (the interval a moment of those days falls in, so a spell of closer polls while a rolling run
# watches the number does not shorten it), clamped to
# [CADENCE_GAP_MIN_MINUTES, CADENCE_GAP_MAX_MINUTES]. The floor is the fixed gap: a number polled
# every 15 minutes (1.5 x 15 = 22.5) reports as it always did, one missed poll still covered, and
# a number-day without two observations to measure gets it too. The ceiling: an observation
# older than 3 hours says little about the number now (at 60/min a project of up to 7,200
# numbers is polled at least every 2 hours, 1.5 x 2 h = 3 h); a slower cadence shows unknown time.
CADENCE_GAP_FACTOR = 1.5
CADENCE_GAP_MIN_MINUTES = MAX_GAP_MINUTES
CADENCE_GAP_MAX_MINUTES = 180
# The report's engine (DuckDB) spills to disk beyond this much memory; the report's own tables
# come on top (BENCHMARKS.md, `report`, has the peaks measured).
REPORT_MEMORY_LIMIT = "1GB"
REPORT_ROWS_PER_BATCH = 4_000_000  # polls rows the engine works on at once (whole numbers)
REPORT_WRITERS = 8  # report files (one per table and day) written at once
GLOBAL_LIMIT_NAME = "kapso-health-api"
SCHEDULE_MINUTES = 15.0  # the scheduled collection's interval (prefect.yaml: */15)
# Its rolling window: the interval less 15 s, so runs never overlap. A rolling run's last
# request starts LAST_REQUEST_SECONDS (or the request timeout, if shorter) before its window
# ends and may take no longer than what is left: Kapso answers within 15 s (an `error` body
# when its check takes longer), and the run ends inside its window having used ~96% of the
# interval's budget.
WINDOW_MINUTES = 14.75
LAST_REQUEST_SECONDS = 20.0


class ApiKey:
    """The project key; it never shows itself in a repr, a log line or an exception."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value or not value.strip():
            raise ValueError("the Kapso API key is empty")
        self._value = value.strip()

    def reveal(self) -> str:
        return self._value

    def scrub(self, text: str) -> str:
        """`text` with every occurrence of the key replaced."""
        return text.replace(self._value, "[redacted]")

    def __repr__(self) -> str:
        return "ApiKey('[redacted]')"

    __str__ = __repr__

    def __reduce__(self) -> tuple:
        raise TypeError("an ApiKey is not serialised; pass the Secret block name instead")


class MissingApiKeyError(RuntimeError):
    """Neither KAPSO_API_KEY nor a Prefect Secret block gave an API key."""


MISSING_KEY = (
    f"no Kapso API key: set {API_KEY_ENV}, or create a Prefect Secret block holding it and "
    "pass its name (--api-key-secret; the flows' parameter api_key_secret)"
)


def require_api_key(secret_block: str | None = None) -> ApiKey:
    """`api_key_from`, or MissingApiKeyError saying how to give one."""
    key = api_key_from(secret_block)
    if key is None:
        raise MissingApiKeyError(MISSING_KEY)
    return key


def api_key_from(secret_block: str | None = None, env: str | None = API_KEY_ENV) -> ApiKey | None:
    """The environment variable `env` (`KAPSO_API_KEY`), else the named Prefect Secret block,
    else None."""
    value = os.environ.get(env) if env else None
    if value and value.strip():
        return ApiKey(value)
    if secret_block:
        from prefect.blocks.system import Secret

        return ApiKey(Secret.load(secret_block, _sync=True).get())  # also inside async flows
    return None


def configured(name: str, given: str | None, default: str | None = None) -> str | None:
    """A non-secret setting: the flow parameter if given, else the Prefect Variable
    `kapso_health_<name>`, else the environment variable `KAPSO_HEALTH_<NAME>`, else `default`.
    """
    if given:
        return given
    from prefect.variables import Variable

    value = Variable.get(f"kapso_health_{name}", default=None, _sync=True)
    if value:
        return str(value)
    return env_setting(name) or default


def env_setting(name: str) -> str | None:
    """A non-secret setting from the environment alone (`KAPSO_HEALTH_<NAME>`), no Prefect."""
    return os.environ.get(f"KAPSO_HEALTH_{name.upper()}") or None


@dataclass(frozen=True)
class ConnectionSettings:
    api_key: ApiKey
    base_url: str = DEFAULT_BASE_URLS["legacy"]
    flavour: Flavour = "legacy"
    rate_per_second: float | None = RATE_PER_SECOND
    rate_per_minute: float | None = RATE_PER_MINUTE
    max_in_flight: int = MAX_IN_FLIGHT
    timeout_seconds: float = TIMEOUT_SECONDS
    max_attempts: int = MAX_ATTEMPTS
    backoff_seconds: float = 0.5
    backoff_cap_seconds: float = 30.0

    def __post_init__(self) -> None:
        if self.flavour not in DEFAULT_BASE_URLS:
            raise ValueError(f"flavour must be 'legacy' or 'platform', not {self.flavour!r}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base URL must start with http:// or https://: {self.base_url!r}")
        if self.max_in_flight < 1 or self.max_attempts < 1 or self.timeout_seconds <= 0:
            raise ValueError("max_in_flight, max_attempts and timeout_seconds must be positive")

    def health_url(self, number_id: str) -> str:
        from urllib.parse import quote

        return self.base_url.rstrip("/") + HEALTH_PATHS[self.flavour].format(
            id=quote(number_id, safe="")
        )

    def list_url(self) -> str:
        return self.base_url.rstrip("/") + LIST_PATHS[self.flavour]


def connection_settings(
    api_key: ApiKey,
    flavour: Flavour = "legacy",
    base_url: str | None = None,
    rate_per_second: float = RATE_PER_SECOND,
    rate_per_minute: float = RATE_PER_MINUTE,
    max_in_flight: int = MAX_IN_FLIGHT,
    timeout_seconds: float = TIMEOUT_SECONDS,
    max_attempts: int = MAX_ATTEMPTS,
) -> ConnectionSettings:
    """Settings from the options users give: a rate of 0 turns that limit off, and the base
    URL defaults to Kapso's for the flavour."""
    return ConnectionSettings(
        api_key=api_key,
        base_url=base_url or DEFAULT_BASE_URLS.get(flavour, DEFAULT_BASE_URLS["legacy"]),
        flavour=flavour,
        rate_per_second=rate_per_second or None,
        rate_per_minute=rate_per_minute or None,
        max_in_flight=max_in_flight,
        timeout_seconds=timeout_seconds,
        max_attempts=max_attempts,
    )
