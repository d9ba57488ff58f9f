"""Child processes of the reliability tests talk to the session's Prefect server."""

from __future__ import annotations

import os

from prefect.settings import PREFECT_API_URL


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a `kapso-health` child: no Kapso key unless given, this session's
    Prefect server (so the child starts none of its own), quiet logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KAPSO_"))}
    return env | {
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        **extra,
    }
