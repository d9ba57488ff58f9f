"""Several Kapso projects in one collection: the projects file (TOML or YAML) and its checks.

```toml
[[project]]
name = "acme"                       # letters, digits, '_' and '-'; goes into every row
api_key_secret = "kapso-key-acme"   # a Prefect Secret block, or:
# api_key_env = "KAPSO_KEY_ACME"    # an environment variable of the worker
flavour = "platform"                # optional, default legacy
base_url = "https://..."            # optional, default Kapso's for the flavour
ids_file = "acme-numbers.txt"       # optional (relative to this file), or ids = [...]
global_limit = "kapso-acme"         # optional Prefect global rate limit of this project
```

The YAML form is a list under `projects:` with the same keys. Each project has its own key,
its own rate budget (Kapso counts per project) and its own capacity.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kapso_health.tasks.fetch import clean_ids, read_ids_file
from kapso_health.tasks.schemas import DEFAULT_PROJECT
from kapso_health.tasks.settings import API_KEY_ENV, DEFAULT_BASE_URLS, ApiKey, api_key_from

PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
SETTINGS = frozenset(
    {"name", "api_key_secret", "api_key_env", "flavour", "base_url", "ids", "ids_file"}
    | {"global_limit"}
)


@dataclass(frozen=True)
class Project:
    """One Kapso project to poll: its name, where its key is, its API and its numbers."""

    name: str
    api_key_secret: str | None = None
    api_key_env: str | None = None
    flavour: str = "legacy"
    base_url: str | None = None
    ids: list[str] | None = None  # None: every number the list endpoint gives
    global_limit: str | None = None

    def api_key(self) -> ApiKey | None:
        """The key from the named environment variable, else the Secret block."""
        return api_key_from(self.api_key_secret, env=self.api_key_env)


def chosen_projects(
    projects_file: str | None,
    api_key_secret: str | None,
    flavour: str,
    base_url: str | None,
    ids: list[str] | None,
    global_limit: str | None = None,
) -> list[Project]:
    """The projects of a run: the projects file's, or the one project the options describe
    (options that the file states per project are an error beside it)."""
    if not projects_file:
        return [single_project(api_key_secret, flavour, base_url, ids, global_limit)]
    if ids or base_url:
        raise ProjectsFileError(
            f"the projects file {projects_file!r} names each project's numbers and URL: "
            "pass ids and base_url without it, or in it"
        )
    return read_projects(projects_file)


def single_project(
    api_key_secret: str | None,
    flavour: str,
    base_url: str | None,
    ids: list[str] | None,
    global_limit: str | None = None,
) -> Project:
    """The one project of a run without a projects file: key from KAPSO_API_KEY, else the
    Secret block."""
    return Project(
        DEFAULT_PROJECT,
        api_key_secret=api_key_secret,
        api_key_env=API_KEY_ENV,
        flavour=flavour,
        base_url=base_url,
        ids=ids,
        global_limit=global_limit,
    )


class ProjectsFailedError(RuntimeError):
    """One or more projects of a several-project run failed (the others were collected)."""


class ProjectsFileError(ValueError):
    """The projects file cannot be used; the message says which project and what to fix."""


def read_projects(path: str | Path) -> list[Project]:
    """The projects of a TOML (`[[project]]`) or YAML (`projects:` list) file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ProjectsFileError(f"cannot read the projects file {str(path)!r}: {exc}") from exc
    if path.suffix in (".yaml", ".yml"):
        import yaml

        entries = (yaml.safe_load(text) or {}).get("projects")
    else:
        try:
            entries = tomllib.loads(text).get("project")
        except tomllib.TOMLDecodeError as exc:
            raise ProjectsFileError(f"{path}: not valid TOML: {exc}") from exc
    if not isinstance(entries, list) or not entries:
        raise ProjectsFileError(
            f"{path}: no projects (TOML: [[project]] tables; YAML: a `projects:` list)"
        )
    projects = [_project(entry, path.parent, index) for index, entry in enumerate(entries, 1)]
    names = [project.name for project in projects]
    if len(set(names)) != len(names):
        raise ProjectsFileError(f"{path}: project names must be unique: {names}")
    return projects


def _project(entry: Any, base: Path, index: int) -> Project:
    if not isinstance(entry, dict):
        raise ProjectsFileError(f"project {index} is not a table of settings")
    name = str(entry.get("name", ""))
    where = f"project {name or index}"
    if not PROJECT_NAME.match(name):
        raise ProjectsFileError(
            f"{where}: `name` must be letters, digits, '_' or '-' (at most 64), not {name!r}"
        )
    unknown = set(entry) - SETTINGS
    if unknown:
        raise ProjectsFileError(f"{where}: unknown settings {sorted(unknown)}")
    if bool(entry.get("api_key_secret")) == bool(entry.get("api_key_env")):
        raise ProjectsFileError(f"{where}: give exactly one of api_key_secret and api_key_env")
    flavour = entry.get("flavour", "legacy")
    if flavour not in DEFAULT_BASE_URLS:
        raise ProjectsFileError(f"{where}: flavour must be 'legacy' or 'platform'")
    ids = entry.get("ids")
    if entry.get("ids_file"):
        try:
            listed = read_ids_file((base / entry["ids_file"]).read_text())
        except OSError as exc:
            raise ProjectsFileError(f"{where}: cannot read its ids_file: {exc}") from exc
        ids = [*(ids or []), *listed]
    try:
        ids = clean_ids(ids) if ids is not None else None
    except ValueError as exc:
        raise ProjectsFileError(f"{where}: {exc}") from exc
    return Project(
        name=name,
        api_key_secret=entry.get("api_key_secret"),
        api_key_env=entry.get("api_key_env"),
        flavour=flavour,
        base_url=entry.get("base_url"),
        ids=ids,
        global_limit=entry.get("global_limit"),
    )
