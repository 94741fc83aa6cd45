"""Shared test helpers: repo paths, polling, and running services as real processes."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from lanesight.common.config import data_dir

REPO_ROOT = Path(__file__).resolve().parent.parent
# The data folder: $LANESIGHT_DATA_DIR, default ../shared/data.
SHARED_DATA = data_dir()
LANESIGHT = [sys.executable, "-m", "lanesight"]
_SERVING = re.compile(r"lanesight (\w+) serving on ([\d.]+):(\d+)")


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder (real images and POSLog files)."""
    return SHARED_DATA


async def assert_eventually(
    check: Callable[[], object], timeout_s: float = 10.0, interval_s: float = 0.05
) -> object:
    """Poll an (optionally async) check until it returns truthy or raise AssertionError."""
    deadline = time.monotonic() + timeout_s
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
        except AssertionError as exc:
            last_error = exc
        await asyncio.sleep(interval_s)
    raise AssertionError(f"condition not met within {timeout_s}s") from last_error


class ServiceProcess:
    """A `lanesight serve` child process and the port it reported."""

    def __init__(self, proc: subprocess.Popen, service: str, port: int, seen: list[str]) -> None:
        self.proc = proc
        self.service = service
        self.port = port
        self.output = seen
        # Keep draining the pipe so a chatty child never blocks on a full pipe.
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _read_rest(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def terminate(self, timeout_s: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=timeout_s)


def start_service_process(
    service: str,
    cwd: Path,
    config: Path | None = None,
    env: dict[str, str] | None = None,
    startup_timeout_s: float = 60.0,
) -> ServiceProcess:
    """Start `lanesight serve <service> --port 0` and wait for its 'serving on' line."""
    args = [*LANESIGHT, "serve", service, "--port", "0"]
    if config is not None:
        args += ["--config", str(config)]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env["PYTHONPATH"] = str(REPO_ROOT)
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + startup_timeout_s
    seen: list[str] = []
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        match = _SERVING.search(line)
        if match and match.group(1) == service:
            return ServiceProcess(proc, service, int(match.group(3)), seen)
    proc.kill()
    proc.wait()
    raise AssertionError(f"{service} did not start:\n{''.join(seen[-40:])}")


@contextmanager
def running_services(
    services: list[str], cwd: Path, config: Path | None = None
) -> Iterator[dict[str, ServiceProcess]]:
    """Run several services as processes; always stop them."""
    started: dict[str, ServiceProcess] = {}
    try:
        for name in services:
            started[name] = start_service_process(name, cwd, config)
        yield started
    finally:
        for proc in started.values():
            if proc.proc.poll() is None:
                proc.proc.kill()
                proc.proc.wait()
