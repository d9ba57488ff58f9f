"""The report layer is pure: importing it loads neither Prefect nor the storage layer."""

from __future__ import annotations

import subprocess
import sys

REPORT_MODULES = (
    "availability",
    "build",
    "engine",
    "html",
    "policy",
    "quality",
    "rollup",
    "schemas",
    "timeline",
)


def test_reports_import_neither_prefect_nor_storage() -> None:
    imports = "; ".join(f"import kapso_health.reports.{name}" for name in REPORT_MODULES)
    check = (
        f"{imports}; import sys; "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] == 'prefect' or m.startswith(('kapso_health.tasks.storage', "
        "'kapso_health.flows', 'fsspec'))))"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
