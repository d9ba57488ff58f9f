"""A seeded fleet of WhatsApp numbers and the health bodies Kapso would return for them.

Pure and deterministic: the body of a number depends only on the seed, the number, the API
flavour and the (simulated) time, so every process that builds the same fleet agrees.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from random import Random
from typing import Any

CACHE_SECONDS = 180  # Kapso repeats a number's result for 3 minutes
BACKOFF_SECONDS = 300  # first step of Kapso's backoff after token errors
EPISODE_SECONDS = 3600  # a number's state can change once an hour
QUALITY_SECONDS = 6 * 3600  # and its quality rating every six hours

# Long-run profile of a number: its usual state, with hourly drift around it.
PROFILES = (
    ("healthy", 0.70),
    ("limited", 0.06),
    ("webhook_unverified", 0.04),
    ("blocked", 0.04),
    ("disconnected", 0.03),
    ("token_backoff", 0.03),
    ("check_error", 0.03),
    ("odd_shapes", 0.04),
    ("connection_unknown", 0.02),
    ("deleted", 0.01),
)
QUALITY = (("GREEN", 0.82), ("YELLOW", 0.10), ("RED", 0.05), ("NA", 0.02), ("UNKNOWN", 0.01))
TROUBLED_PHONE_STATUS = ("FLAGGED", "RESTRICTED", "RATE_LIMITED")
TOKEN_ERROR = (
    'Meta Graph API error: {status} - {{"error" => {{"message" => "Invalid OAuth access token",'
    ' "type" => "OAuthException", "code" => 190, "fbtrace_id" => "AbCdEf"}}}}'
)


@dataclass(frozen=True, slots=True)
class Number:
    index: int
    config_id: str
    phone_number_id: str
    profile: str
    offset: int
    name: str
    display_phone_number: str
    business_account_id: str
    customer_id: str | None
    is_coexistence: bool

    def id_for(self, flavour: str) -> str:
        return self.phone_number_id if flavour == "platform" else self.config_id


class Fleet:
    """N numbers with stable ids, attributes and profiles drawn from `seed`."""

    def __init__(self, size: int, seed: int = 7) -> None:
        self.seed = seed
        rng = Random(seed)
        self.numbers = [_draw_number(rng, index) for index in range(size)]
        self._by_id = {n.config_id: n for n in self.numbers}
        self._by_id.update({n.phone_number_id: n for n in self.numbers})

    def find(self, number_id: str) -> Number | None:
        return self._by_id.get(number_id)

    def list_page(self, flavour: str, page: int, per_page: int) -> dict[str, Any]:
        """One page of the list endpoint, `{"data": [...], "meta": {...}}`."""
        listed = [n for n in self.numbers if n.profile != "deleted"]
        total_pages = max(1, math.ceil(len(listed) / per_page))
        chunk = listed[(page - 1) * per_page : page * per_page]
        items = [_platform_item(n) if flavour == "platform" else _legacy_item(n) for n in chunk]
        meta = {
            "page": page,
            "per_page": per_page,
            "total_pages": total_pages,
            "total_count": len(listed),
        }
        return {"data": items, "meta": meta}

    def health(self, number: Number, flavour: str, now: float) -> dict[str, Any]:
        """The body Kapso returns for `number` at epoch time `now` (cached per 3 minutes)."""
        state = self._state(number, now)
        period = BACKOFF_SECONDS if state == "token_backoff" else CACHE_SECONDS
        checked = (now + number.offset) // period * period - number.offset
        rng = Random(_seed(self.seed, number.index, int(checked), 1))
        quality = _pick(
            Random(_seed(self.seed, number.index, int(checked // QUALITY_SECONDS), 2)), QUALITY
        )
        return _body(number, flavour, state, checked, quality, rng)

    def _state(self, number: Number, now: float) -> str:
        """Usual profile most hours; healthy numbers have bad hours, troubled ones recover."""
        episode = int((now + number.offset) // EPISODE_SECONDS)
        roll = Random(_seed(self.seed, number.index, episode, 3)).random()
        if number.profile in ("deleted", "token_backoff", "odd_shapes", "connection_unknown"):
            return number.profile
        if number.profile == "healthy":
            drift = (
                ("limited", 0.03),
                ("webhook_unverified", 0.01),
                ("blocked", 0.01),
                ("disconnected", 0.005),
                ("check_error", 0.01),
            )
            for state, share in drift:
                if roll < share:
                    return state
                roll -= share
            return "healthy"
        return "healthy" if roll < 0.15 else number.profile


def _seed(*parts: int) -> int:
    value = 0
    for part in parts:
        value = (value * 1_000_003 + part) % (2**61 - 1)
    return value


def _pick(rng: Random, weighted: tuple[tuple[str, float], ...]) -> str:
    roll = rng.random()
    for value, share in weighted:
        if roll < share:
            return value
        roll -= share
    return weighted[0][0]


def _draw_number(rng: Random, index: int) -> Number:
    phone_number_id = str(rng.randrange(10**14, 10**16))
    return Number(
        index=index,
        config_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        phone_number_id=phone_number_id,
        profile=_pick(rng, PROFILES),
        offset=rng.randrange(CACHE_SECONDS * 20),
        name=f"Line {index:05d}",
        display_phone_number=f"+1 555-{rng.randrange(1000):03d}-{rng.randrange(10000):04d}",
        business_account_id=str(10**14 + index // 5),
        customer_id=None if rng.random() < 0.1 else f"cus-{index // 20:04d}",
        is_coexistence=rng.random() < 0.1,
    )


def _iso(epoch: float, millis: bool) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}Z" if millis else f"{text}Z"


def _legacy_item(n: Number) -> dict[str, Any]:
    return {
        "id": n.config_id,
        "name": n.name,
        "display_name": n.name,
        "phone_number_id": n.phone_number_id,
        "business_account_id": n.business_account_id,
        "customer_id": n.customer_id,
        "kind": "production",
        "display_phone_number": n.display_phone_number,
        "is_coexistence": n.is_coexistence,
        "webhook_verified_at": "2025-01-10T08:15:30.000Z",
        "created_at": "2024-06-01T00:00:00.000Z",
        "updated_at": "2025-01-10T08:15:30.000Z",
    }


def _platform_item(n: Number) -> dict[str, Any]:
    return {
        "id": n.phone_number_id,
        "internal_id": n.config_id,
        "name": n.name,
        "display_name": n.name,
        "display_phone_number": n.display_phone_number,
        "verified_name": f"Acme {n.index}",
        "business_account_id": n.business_account_id,
        "customer_id": n.customer_id,
        "is_coexistence": n.is_coexistence,
        "quality_rating": "GREEN",
        "status": "CONNECTED",
        "throughput_tier": "TIER_10K",
        "whatsapp_business_manager_messaging_limit": 1000 if n.index % 2 else "TIER_1K",
        "webhook_verified_at": "2025-01-10T08:15:30Z",
        "created_at": "2024-06-01T00:00:00Z",
        "updated_at": "2025-01-10T08:15:30Z",
    }


def _body(
    number: Number, flavour: str, state: str, checked: float, quality: str, rng: Random
) -> dict[str, Any]:
    platform = flavour == "platform"
    timestamp = _iso(checked, millis=not platform)
    if state == "check_error":
        return {
            "status": "error",
            "error": "Service temporarily unavailable",
            "timestamp": timestamp,
        }
    if state == "token_backoff":
        return _token_backoff_body(number, platform, timestamp, checked)
    phone_status = "CONNECTED"
    if quality in ("YELLOW", "RED") and rng.random() < 0.3:
        phone_status = rng.choice(TROUBLED_PHONE_STATUS)
    if state == "disconnected":
        phone_status = "DISCONNECTED"
    checks: dict[str, Any] = {
        "phone_number_access": _access(number, platform, quality, phone_status)
    }
    if platform:
        connection = {"connection_unknown": "UNKNOWN", "disconnected": "DISCONNECTED"}
        connection_status = connection.get(state, "CONNECTED")
        passed = None if connection_status == "UNKNOWN" else connection_status == "CONNECTED"
        checks["phone_number_connection"] = {
            "passed": passed,
            "details": {"status": connection_status},
        }
    checks["messaging_health"] = _messaging(number, platform, state, rng)
    checks["webhook_subscription"] = _webhook(platform)
    checks["webhook_verified"] = _verified(state != "webhook_unverified", platform)
    if number.is_coexistence:
        checks["token_validity"] = {"passed": True, "details": {"expires_at": None}}
    if state == "odd_shapes":
        checks["webhook_subscription"] = {"passed": True, "details": None}
        checks["webhook_verified"] = {"passed": True, "details": {}}
        checks["business_verification"] = {
            "passed": False,
            "error": 'Meta Graph API error: 400 - {"code" => 100}',
        }
    status = _overall(state, phone_status)
    return {"status": status, "timestamp": timestamp, "checks": checks}


def _overall(state: str, phone_status: str) -> str:
    if state in ("blocked", "disconnected") or phone_status == "DISCONNECTED":
        return "unhealthy"
    if state in ("limited", "webhook_unverified"):
        return "degraded"
    return "healthy"


def _access(number: Number, platform: bool, quality: str, phone_status: str) -> dict[str, Any]:
    details: dict[str, Any] = {
        "verified_name": f"Acme {number.index}",
        "display_phone_number": number.display_phone_number,
        "quality_rating": quality,
        "id": number.phone_number_id,
    }
    if platform:
        details.update(status=phone_status, throughput_tier="TIER_10K")
    return {"passed": True, "details": details}


def _messaging(number: Number, platform: bool, state: str, rng: Random) -> dict[str, Any]:
    overall = {"limited": "LIMITED", "blocked": "BLOCKED"}.get(state, "AVAILABLE")
    entity_ids = (
        number.phone_number_id,
        number.business_account_id,
        "104996122399160",
        "1234567890123456",
    )
    types = ("PHONE_NUMBER", "WABA", "BUSINESS", "APP")
    entities = [
        {"entity_type": t, "id": i, "can_send_message": "AVAILABLE"}
        for t, i in zip(types, entity_ids, strict=True)
    ]
    if rng.random() < 0.1:
        entities = entities[:1]  # Meta sometimes sends a partial list
    if overall == "LIMITED":
        entities[0].update(
            can_send_message="LIMITED",
            additional_info=[
                "Payment method issue: business-initiated messages are blocked.",
                "Replies inside the 24-hour window still work.",
            ],
        )
    if overall == "BLOCKED":
        entities = entities[:3] if len(entities) >= 3 else entities
        entities[0].update(
            can_send_message="LIMITED",
            additional_info=["Your WhatsApp Business Account is blocked."],
        )
        waba = {
            "entity_type": "WABA",
            "id": number.business_account_id,
            "can_send_message": "BLOCKED",
            "errors": [
                {
                    "error_code": "141006",
                    "error_description": "There is an error with the payment method.",
                    "possible_solution": "Add a valid payment method in Business Manager.",
                }
            ],
        }
        entities = [entities[0], waba, *entities[2:]]
    check: dict[str, Any] = {
        "passed": overall == "AVAILABLE",
        "details": {"can_send_message": overall, "entities": entities},
    }
    if platform or rng.random() < 0.5:  # legacy sometimes omits overall_status
        check["overall_status"] = overall
    return check


def _webhook(platform: bool) -> dict[str, Any]:
    if platform:
        details = {
            "app_id": "1234567890123456",
            "subscribed": True,
            "subscribed_fields": ["messages"],
        }
    else:
        details = {"app_id": 1234567890123456, "subscribed": True, "subscribed_fields": None}
    return {"passed": True, "details": details}


def _verified(verified: bool, platform: bool) -> dict[str, Any]:
    if not verified:
        return {
            "passed": False,
            "details": {"verified_at": None, "message": "Webhook not yet verified by Meta"},
        }
    at = "2025-01-10T08:15:30Z" if platform else "2025-01-10T08:15:30.123Z"
    return {"passed": True, "details": {"verified_at": at, "message": "Webhook verified"}}


def _token_backoff_body(
    number: Number, platform: bool, timestamp: str, checked: float
) -> dict[str, Any]:
    failed = {"passed": False, "error": TOKEN_ERROR.format(status=400)}
    body: dict[str, Any] = {
        "status": "unhealthy",
        "timestamp": timestamp,
        "checks": {
            "phone_number_access": failed,
            "messaging_health": failed,
            "webhook_subscription": {"passed": False, "error": TOKEN_ERROR.format(status=401)},
            "webhook_verified": _verified(True, platform),
        },
    }
    if platform:
        body["retry_after"] = _iso(checked + BACKOFF_SECONDS, millis=False)
    return body
