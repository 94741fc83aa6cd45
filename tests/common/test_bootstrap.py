"""The shared bootstrap: health, reflection, graceful SIGTERM for every service."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from lanesight.common.cli import create_app
from lanesight.common.config import load_config
from lanesight.common.server import start_server

from tests.conftest import start_service_process

SERVICES = {
    "device": "lanesight.v1.DeviceService",
    "vision": "lanesight.v1.VisionService",
    "fusion": "lanesight.v1.FusionService",
    "reporting": "lanesight.v1.ReportingService",
}


async def _list_services(channel: grpc.aio.Channel) -> set[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def requests():
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    async for response in stub.ServerReflectionInfo(requests(), timeout=10):
        return {s.name for s in response.list_services_response.service}
    return set()


@pytest.mark.parametrize("service", list(SERVICES))
async def test_in_process_health_and_reflection(service, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative default paths (stores, outboxes) land in tmp
    config = load_config(None, environ={})
    running = await start_server(create_app(service, config), config, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in ("", SERVICES[service]):
                reply = await health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            names = await _list_services(channel)
            assert SERVICES[service] in names
            assert "grpc.health.v1.Health" in names
            assert "grpc.reflection.v1alpha.ServerReflection" in names
    finally:
        await running.stop()
        await running.stop()  # shutdown is idempotent


@pytest.mark.parametrize("service", list(SERVICES))
async def test_sigterm_drains_and_exits_zero_within_grace(service, tmp_path):
    """SIGTERM → health NOT_SERVING (seen by a watcher) → server.stop(grace) → exit 0."""
    config = tmp_path / "lanesight.toml"
    config.write_text("[server]\ngrace_s = 3.0\n")
    proc = start_service_process(service, cwd=tmp_path, config=config)
    try:
        async with grpc.aio.insecure_channel(proc.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICES[service]))
            first = await asyncio.wait_for(watch.read(), 10)
            assert first.status == health_pb2.HealthCheckResponse.SERVING
            started = time.monotonic()
            proc.proc.terminate()
            statuses = []
            try:
                while True:
                    message = await asyncio.wait_for(watch.read(), 10)
                    if message is grpc.aio.EOF:
                        break
                    statuses.append(message.status)
            except grpc.aio.AioRpcError:
                pass  # the stream is cancelled when the grace period ends
            assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses
        code = await asyncio.to_thread(proc.proc.wait, 20)
        elapsed = time.monotonic() - started
        assert code == 0, "".join(proc.output[-30:])
        assert elapsed < 3.0 + 4.0, f"took {elapsed:.1f}s for a 3s grace"
    finally:
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait()
