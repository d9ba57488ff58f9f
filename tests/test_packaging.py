"""The wheel installs under its own namespace: a user's `tasks.py` and `flows/` package beside
it neither shadow it nor are shadowed by it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import textwrap
from datetime import date
from pathlib import Path

import pytest

from kapso_health.simulator.history import write_day

REPO = Path(__file__).resolve().parents[1]
NOT_SHIPPED = (".*", "build", "data", "demo-data", "bench", "tests", "*.egg-info", "__pycache__")

pytestmark = pytest.mark.integration


def test_wheel_beside_a_users_tasks_and_flows_reads_the_history(tmp_path: Path) -> None:
    source = tmp_path / "source"  # setuptools builds inside the source tree: not in the repo's
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp_path / "dist", source],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("kapso_health-*.whl")
    fresh = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", fresh], check=True)
    site = subprocess.run(
        [
            fresh / "bin" / "python",
            "-c",
            "import sysconfig; print(sysconfig.get_paths()['purelib'])",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # The dependencies come from this environment (a path entry: its editable install of
    # kapso-health is not activated there); the package itself only from the wheel.
    Path(site, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [fresh / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", wheel],
        check=True,
        capture_output=True,
    )
    user = tmp_path / "user-project"
    (user / "flows").mkdir(parents=True)
    (user / "tasks.py").write_text("WHO = 'the user'\n")
    (user / "flows" / "__init__.py").write_text("WHO = 'the user'\n")
    root = tmp_path / "history"
    rows = write_day(str(root), 5, date(2026, 2, 1), seed=3)
    check = textwrap.dedent(
        f"""
        import flows, tasks
        from kapso_health import History
        import kapso_health.tasks.storage as storage
        assert tasks.WHO == flows.WHO == "the user"
        assert "site-packages" in storage.__file__, storage.__file__
        print(len(History({str(root)!r}).read("polls")))
        """
    )
    done = subprocess.run(
        [fresh / "bin" / "python", "-c", check], cwd=user, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == rows > 0
