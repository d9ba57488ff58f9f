"""A real S3 server on loopback for the tests: moto's server mode over HTTP, s3fs clients.

`MotoServer` starts `python -m moto.server` on 127.0.0.1 and a free port; `s3_environment`
is what a client (this process or a child) needs to reach it; `count_s3_calls` counts the
S3 operations an s3fs filesystem sends (PUT, COPY, ...), to prove no file is written twice.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


class MotoServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://{HOST}:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.endpoint}/moto-api/").status_code < 500:
                    return
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("moto's S3 server did not start")
            time.sleep(0.1)

    def environment(self) -> dict[str, str]:
        """Credentials are moto's dummies: any key works."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def new_bucket(self) -> str:
        """A fresh bucket; returns its URL."""
        import s3fs

        name = f"kapso-{uuid.uuid4().hex[:12]}"
        s3fs.S3FileSystem(skip_instance_cache=True).mkdir(name)
        return f"s3://{name}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def count_s3_calls(fs: Any) -> Iterator[Counter[str]]:
    """Count every S3 operation `fs` (an s3fs filesystem) sends while the block runs."""
    calls: Counter[str] = Counter()
    real = fs._call_s3

    async def counted(method: str, *args: Any, **kwargs: Any) -> Any:
        calls[method] += 1
        return await real(method, *args, **kwargs)

    fs._call_s3 = counted
    try:
        yield calls
    finally:
        del fs._call_s3
