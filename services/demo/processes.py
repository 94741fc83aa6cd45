"""Start lanesight services as child processes, wait until healthy, stop them cleanly."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

log = logging.getLogger(__name__)
_SERVING = re.compile(r"lanesight (\w+) serving on ([\w.:-]+):(\d+)")
# The attendant console's web address (printed before its serving line).
_WEB = re.compile(r"lanesight console web on (\S+)")


@dataclass
class ServiceProcess:
    """One `lanesight serve` child process."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path
    port: int = 0
    output_tail: list[str] = field(default_factory=list)
    #: The web address, for a service that serves one (the console).
    url: str = ""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class ServiceGroup:
    """The services of one demo run, started in order and stopped in reverse."""

    def __init__(self, config_path: Path, work_dir: Path) -> None:
        self.config_path = config_path
        self.work_dir = work_dir
        self.services: dict[str, ServiceProcess] = {}
        self._pumps: list[asyncio.Task] = []

    async def start(
        self,
        name: str,
        service: str | None = None,
        config_path: Path | None = None,
        env: dict[str, str] | None = None,
        timeout_s: float = 60.0,
        health_service: str | None = None,
    ) -> ServiceProcess:
        """Start `lanesight serve SERVICE` as NAME; wait for its serving line and health."""
        service = service or name
        log_path = self.work_dir / f"{name}.log"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "lanesight",
            "serve",
            service,
            "--config",
            str(config_path or self.config_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=full_env,
            start_new_session=True,  # Ctrl-C reaches only the demo, which stops children itself
        )
        proc = ServiceProcess(name, process, log_path)
        self.services[name] = proc
        ready = asyncio.get_running_loop().create_future()
        self._pumps.append(asyncio.create_task(self._pump(proc, ready)))
        try:
            await asyncio.wait_for(ready, timeout_s)
        except TimeoutError:
            raise RuntimeError(
                f"{name} did not start within {timeout_s:.0f}s; see {log_path}"
            ) from None
        if health_service is None:
            health_service = f"lanesight.v1.{service.capitalize()}Service"
        await wait_healthy(proc.address, health_service)
        return proc

    async def _pump(self, service: ServiceProcess, ready: asyncio.Future) -> None:
        assert service.process.stdout is not None
        with service.log_path.open("w", encoding="utf-8") as sink:
            async for raw in service.process.stdout:
                line = raw.decode(errors="replace")
                sink.write(line)
                sink.flush()
                service.output_tail = [*service.output_tail[-200:], line]
                web = _WEB.search(line)
                if web:
                    service.url = web.group(1)
                match = _SERVING.search(line)
                if match and not ready.done():
                    service.port = int(match.group(3))
                    ready.set_result(service.port)
        if not ready.done():
            ready.set_exception(
                RuntimeError(f"{service.name} exited early; see {service.log_path}")
            )

    async def stop_all(self, timeout_s: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every service in reverse start order; kill what outlives the timeout."""
        codes: dict[str, int | None] = {}
        for name in reversed(list(self.services)):
            proc = self.services[name].process
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), timeout_s)
                except TimeoutError:
                    log.warning("%s did not stop within %.0fs; killing it", name, timeout_s)
                    proc.kill()
                    await proc.wait()
                    # Its last words (a service slow to stop dumps its threads' stacks).
                    await asyncio.sleep(0.2)
                    tail = "".join(self.services[name].output_tail[-200:])
                    print(f"{name} did not stop within {timeout_s:.0f}s; its log ends:\n{tail}")
            codes[name] = proc.returncode
        for pump in self._pumps:
            pump.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        return codes


async def wait_healthy(address: str, service: str, timeout_s: float = 30.0) -> None:
    """Wait until the standard health service reports SERVING for service."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(
            health_pb2.HealthCheckRequest(service=service),
            timeout=timeout_s,
            wait_for_ready=True,
        )
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            raise RuntimeError(f"{service} at {address} is {reply.status}")
