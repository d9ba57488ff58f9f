"""Run the simulator in a child process and talk to its control endpoints."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import httpx

from kapso_health.simulator.server import LEGACY, PLATFORM, SimulatorConfig


@dataclass(frozen=True)
class RunningSimulator:
    url: str

    def base_url(self, flavour: str = "legacy") -> str:
        return self.url + (PLATFORM if flavour == "platform" else LEGACY)

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_sim/stats", timeout=10).json()

    def advance_clock(self, seconds: float) -> float:
        return self._clock({"seconds": seconds})

    def set_clock(self, at: datetime) -> float:
        return self._clock({"at": at.timestamp()})

    def _clock(self, body: dict[str, float]) -> float:
        return httpx.post(f"{self.url}/_sim/clock", json=body, timeout=10).json()["now"]


@contextmanager
def running_simulator(config: SimulatorConfig | None = None) -> Iterator[RunningSimulator]:
    """Start `python -m kapso_health.simulator` on a free loopback port; stop it on exit."""
    config_json = json.dumps(asdict(config or SimulatorConfig()))
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kapso_health.simulator",
            "--port",
            "0",
            "--config-json",
            config_json,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        if not first.startswith("Kapso simulator listening on "):
            raise RuntimeError(f"the simulator did not start (it printed {first!r})")
        yield RunningSimulator(first.rsplit(" ", 1)[1].strip())
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
