"""Connection settings in one place: endpoints, API key, limits, timeouts, retries."""

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
DEFAULT_STORAGE = "./data"


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


def api_key_from(secret_block: str | None = None) -> ApiKey | None:
    """`KAPSO_API_KEY`, else the named Prefect Secret block, else None."""
    value = os.environ.get(API_KEY_ENV)
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
    return os.environ.get(f"KAPSO_HEALTH_{name.upper()}") or default


@dataclass(frozen=True)
class ConnectionSettings:
    api_key: ApiKey
    base_url: str = DEFAULT_BASE_URLS["legacy"]
    flavour: Flavour = "legacy"
    rate_per_second: float | None = 5.0
    rate_per_minute: float | None = 60.0
    max_in_flight: int = 16
    timeout_seconds: float = 30.0  # Kapso answers `error` itself after 15 s
    max_attempts: int = 4
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
