"""kapso-health: Prefect flows that keep a Parquet history of Kapso WhatsApp number health.

For notebooks and scripts, the history is one object::

    from kapso_health import History

    history = History("./data")  # or "s3://bucket/kapso"; default: $KAPSO_HEALTH_STORAGE
    polls = history.read("polls", "2026-03-01", "2026-03-07")
    daily = history.report("availability_daily", "2026-03-01")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kapso_health.history import History

__all__ = ["History"]


def __getattr__(name: str) -> Any:
    # Lazy: `import kapso_health.flows.cli` should not pay for pandas, pyarrow and fsspec.
    if name == "History":
        from kapso_health.history import History

        return History
    raise AttributeError(f"module 'kapso_health' has no attribute {name!r}")
