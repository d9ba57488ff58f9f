"""The deployments' pull step (prefect.yaml): the directory a worker runs the flows from.

Each worker runs the flows from its own copy of this project: the directory in its
environment's `KAPSO_HEALTH_PROJECT_DIR` (a container image's copy, another machine's
checkout), else the one prefect.yaml names (the directory `prefect deploy` was run in, which
Prefect fills in at deploy time). Relative paths the flows are given (`./data`, a projects
file) are then the worker's own.
"""

from __future__ import annotations

import os

from kapso_health.tasks.settings import env_setting


def project_directory(directory: str) -> dict[str, str]:
    """Change to the worker's copy of the project; returns it as `directory`, the output
    Prefect's own `set_working_directory` step gives (later steps can use it)."""
    chosen = env_setting("project_dir") or directory
    os.chdir(chosen)
    print(f"kapso-health: running the flows from {os.getcwd()}", flush=True)
    return {"directory": os.getcwd()}
