"""`kapso-health plan`: each project's capacity at its budget, without a health request."""

from __future__ import annotations

from kapso_health.tasks.client import KapsoClient
from kapso_health.tasks.plan import Capacity, capacity
from kapso_health.tasks.projects import Project
from kapso_health.tasks.settings import MISSING_KEY, MissingApiKeyError, connection_settings


async def fleet_capacity(
    projects: list[Project],
    per_minute: float | None,
    window_minutes: float | None,
    interval_minutes: float | None,
) -> list[tuple[str, Capacity]]:
    """(project, capacity) for each project: its ids, or the numbers its list endpoint gives
    (listing pages are the only requests; they are outside the health budget)."""
    found = []
    for project in projects:
        count = len(project.ids) if project.ids is not None else await _listed(project)
        found.append((project.name, capacity(count, per_minute, window_minutes, interval_minutes)))
    return found


async def _listed(project: Project) -> int:
    key = project.api_key()
    if key is None:
        raise MissingApiKeyError(f"project {project.name}: {MISSING_KEY}")
    async with KapsoClient(connection_settings(key, project.flavour, project.base_url)) as client:
        return len(await client.list_numbers())
