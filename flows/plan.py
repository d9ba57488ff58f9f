"""`kapso-health plan`: each project's capacity at its budget, without a health request."""

from __future__ import annotations

import argparse

from kapso_health.tasks.client import KapsoClient
from kapso_health.tasks.plan import Capacity, capacity
from kapso_health.tasks.projects import Project, read_projects, single_project
from kapso_health.tasks.settings import MISSING_KEY, MissingApiKeyError, connection_settings


async def fleet_capacity(
    args: argparse.Namespace, ids: list[str] | None
) -> list[tuple[str, Capacity]]:
    """(project, capacity) for the projects file, or for the ids or listed numbers of one
    project. Listing pages are the only requests (they are outside the health budget)."""
    projects = (
        read_projects(args.projects)
        if args.projects
        else [single_project(args.api_key_secret, args.flavour, args.base_url, ids)]
    )
    return [(project.name, await _capacity(project, args)) for project in projects]


async def _capacity(project: Project, args: argparse.Namespace) -> Capacity:
    count = len(project.ids) if project.ids is not None else await _listed(project)
    per_minute = args.rate_per_minute or None
    return capacity(count, per_minute, args.window_minutes, args.interval_minutes)


async def _listed(project: Project) -> int:
    """How many numbers the project's list endpoint gives."""
    key = project.api_key()
    if key is None:
        raise MissingApiKeyError(f"project {project.name}: {MISSING_KEY}")
    async with KapsoClient(connection_settings(key, project.flavour, project.base_url)) as client:
        return len(await client.list_numbers())
