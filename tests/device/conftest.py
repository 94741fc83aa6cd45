"""Device test helpers: a small acking FusionService, a VisionService, configs, a running agent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from lanesight.common.app import ServiceApp
from lanesight.common.config import LanesightConfig, PeersConfig, ServerConfig
from lanesight.common.server import RunningServer, start_server
from lanesight.device.app import create_app
from lanesight.device.config import DeviceConfig, OutboxConfig
from lanesight.v1 import fusion_pb2, fusion_pb2_grpc, vision_pb2, vision_pb2_grpc


class FakeFusion(fusion_pb2_grpc.FusionServiceServicer):
    """Acks Ingest by sequence like fusion does (duplicates ignored) and serves commands.

    Its state lives in this object, so it survives a restart of the server around it.
    """

    def __init__(self) -> None:
        self.acked: dict[tuple[str, str], int] = {}
        self.accepted: list = []  # events applied, in order, each sequence once
        self.received = 0  # events received, duplicates included
        self.duplicates = 0
        self.gaps: list[tuple[int, int]] = []
        self.streams = 0
        self.watch_requests: list[fusion_pb2.WatchAlertsRequest] = []
        self.command_acks: list[fusion_pb2.AcknowledgeLaneCommandRequest] = []
        self._watchers: list[asyncio.Queue] = []
        self.on_event = None  # optional callback(event) for benchmarks

    async def Ingest(self, request_iterator, context):
        self.streams += 1
        async for request in request_iterator:
            duplicates = 0
            key = ("", "")
            for event in request.events:
                self.received += 1
                key = (event.store_id, event.lane_id)
                acked = self.acked.get(key, 0)
                if event.sequence <= acked:
                    duplicates += 1
                    continue
                if event.sequence != acked + 1:
                    self.gaps.append((acked, event.sequence))
                self.accepted.append(event)
                self.acked[key] = event.sequence
                if self.on_event is not None:
                    self.on_event(event)
            self.duplicates += duplicates
            yield fusion_pb2.IngestResponse(
                store_id=key[0],
                lane_id=key[1],
                acked_sequence=self.acked.get(key, 0),
                duplicates=duplicates,
            )

    async def WatchAlerts(self, request, context):
        self.watch_requests.append(request)
        queue: asyncio.Queue = asyncio.Queue()
        self._watchers.append(queue)
        try:
            while True:
                command = await queue.get()
                yield fusion_pb2.WatchAlertsResponse(command=command)
        finally:
            self._watchers.remove(queue)

    async def AcknowledgeLaneCommand(self, request, context):
        self.command_acks.append(request)
        return fusion_pb2.AcknowledgeLaneCommandResponse(known=True)

    @property
    def watchers(self) -> int:
        return len(self._watchers)

    def send_command(self, command) -> None:
        for queue in self._watchers:
            queue.put_nowait(command)


class FakeVision(vision_pb2_grpc.VisionServiceServicer):
    """Records the stream config and frames; answers each frame with a zone crossing."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.configs: list[vision_pb2.StreamConfig] = []
        self.frames: list[vision_pb2.Frame] = []
        self.first_messages: list[str] = []
        # How long each answer takes (a busy GPU node).
        self.delay_s = delay_s

    async def Analyze(self, request_iterator, context):
        first = True
        async for request in request_iterator:
            kind = request.WhichOneof("item")
            if first:
                self.first_messages.append(kind)
                first = False
            if kind == "config":
                self.configs.append(request.config)
                continue
            self.frames.append(request.frame)
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            response = vision_pb2.AnalyzeResponse(
                frame_id=request.frame.frame_id, captured_at=request.frame.captured_at
            )
            observation = response.observations.add()
            observation.zone_crossing.camera_id = self.configs[-1].camera_id
            observation.zone_crossing.track_id = f"t{request.frame.frame_id}"
            observation.zone_crossing.zone = 1
            observation.zone_crossing.direction = 1
            yield response


class PeerApp(ServiceApp):
    """A ServiceApp around a fake servicer, so tests use the real server bootstrap."""

    def __init__(self, name: str, servicer, add) -> None:
        self.name = name
        self.servicer = servicer
        self._add = add

    def service_names(self) -> list[str]:
        return []

    def add_to_server(self, server: grpc.aio.Server) -> None:
        self._add(self.servicer, server)


async def start_fake_fusion(fusion: FakeFusion, port: int = 0) -> RunningServer:
    """Serve a FakeFusion on 127.0.0.1 (port 0: any free port)."""
    app = PeerApp("fusion", fusion, fusion_pb2_grpc.add_FusionServiceServicer_to_server)
    config = LanesightConfig(server=ServerConfig(grace_s=0.2))
    return await start_server(app, config, port)


async def start_fake_vision(vision: FakeVision, port: int = 0) -> RunningServer:
    """Serve a FakeVision on 127.0.0.1."""
    app = PeerApp("vision", vision, vision_pb2_grpc.add_VisionServiceServicer_to_server)
    config = LanesightConfig(server=ServerConfig(grace_s=0.2))
    return await start_server(app, config, port)


def unused_address() -> str:
    """A loopback address nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def agent_config(
    tmp_path: Path,
    fusion: str | None = None,
    vision: str | None = None,
    store_id: str = "store-7",
    **device,
) -> LanesightConfig:
    """A config for a test agent: outbox and evidence in tmp_path, fast reconnects, links as given."""
    device.setdefault("lane_id", "lane-3")
    device.setdefault(
        "outbox", OutboxConfig(path=str(tmp_path / "outbox.db"), synchronous="normal")
    )
    device.setdefault("evidence_dir", str(tmp_path / "evidence"))
    device.setdefault("fusion_link", fusion is not None)
    device.setdefault("fusion_commands", False)
    device.setdefault("vision_link", vision is not None)
    device.setdefault("reconnect_initial_s", 0.05)
    device.setdefault("reconnect_max_s", 0.3)
    device.setdefault("link_timeout_s", 2.0)
    peers = PeersConfig(fusion=fusion or unused_address(), vision=vision or unused_address())
    return LanesightConfig(
        store_id=store_id,
        server=ServerConfig(grace_s=0.2),
        peers=peers,
        device=DeviceConfig(**device),
    )


async def start_agent(config: LanesightConfig, frame_sources=None) -> RunningServer:
    """Start the device service (agent + DeviceService) on port 0."""
    return await start_server(create_app(config, frame_sources), config, 0)


@pytest.fixture
async def fake_fusion() -> AsyncIterator[tuple[FakeFusion, RunningServer]]:
    fusion = FakeFusion()
    running = await start_fake_fusion(fusion)
    try:
        yield fusion, running
    finally:
        await running.stop()
