"""Reliability tests record their figures; a run can write them up as docs/reliability.md.

KAPSO_HEALTH_RELIABILITY_DOC=docs/reliability.md .venv/bin/python -m pytest tests/reliability
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.children import child_env

COMMAND = (
    "KAPSO_HEALTH_RELIABILITY_DOC=docs/reliability.md .venv/bin/python -m pytest tests/reliability"
)
FIGURES: dict[str, dict[str, Any]] = {}


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[..., None]:
    """`figures(claim, **numbers)`: what this test proved, with its numbers. The cases of a
    parametrised test share one entry (their test's name), each adding its numbers in turn;
    a number given as `{case: value}` gathers every case's value on one line."""

    def record(claim: str, **numbers: Any) -> None:
        entry = FIGURES.setdefault(request.node.originalname, {"claim": claim})
        for key, value in numbers.items():
            known = entry.get(key)
            both = isinstance(value, dict) and isinstance(known, dict)
            entry[key] = {**known, **value} if both else value

    return record


@pytest.fixture
def cli_env() -> Callable[[Path, dict[str, str]], dict[str, str]]:
    """Children of the reliability tests talk to the session's Prefect server (`child_env`)."""
    return lambda cwd, extra: child_env(**extra)


@pytest.fixture(scope="session", autouse=True)
def reliability_doc() -> Iterator[None]:
    yield
    target = os.environ.get("KAPSO_HEALTH_RELIABILITY_DOC")
    if target and FIGURES:
        Path(target).write_text(render(FIGURES))


def render(found: dict[str, dict[str, Any]]) -> str:
    lines = [
        "# Reliability",
        "",
        "What the history promises (nothing lost, nothing doubled, always readable; bad input "
        "gets a recorded outcome; the API key never leaks), each point proved by a test in "
        "`tests/reliability/` with the figures of its last run. Regenerate this page with:",
        "",
        f"    {COMMAND}",
        "",
        f"Last run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}.",
        "",
    ]
    for name, entry in sorted(found.items()):
        entry = dict(entry)
        lines += [f"## {entry.pop('claim')}", "", f"Test: `{name}`", ""]
        lines += [f"- {key.replace('_', ' ')}: {_text(value)}" for key, value in entry.items()]
        lines.append("")
    return "\n".join(lines)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(
            f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in value.items()
        )
    return f"{value:,}" if isinstance(value, int) else str(value)
