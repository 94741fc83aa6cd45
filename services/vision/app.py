"""The vision service's gRPC app: the engine and servicer wired to the shared bootstrap."""

from __future__ import annotations

import grpc
from lanesight.common.app import ServiceApp
from lanesight.common.config import LanesightConfig
from lanesight.v1 import vision_pb2, vision_pb2_grpc
from lanesight.vision import metrics
from lanesight.vision.engine import VisionEngine
from lanesight.vision.servicer import VisionServicer


class VisionApp(ServiceApp):
    """The vision service: lane streams, still-image classification, enrolment, statistics."""

    name = "vision"

    def __init__(self, config: LanesightConfig, engine: VisionEngine | None = None) -> None:
        self.config = config
        self.engine = engine or VisionEngine(config.vision)

    def service_names(self) -> list[str]:
        return [vision_pb2.DESCRIPTOR.services_by_name["VisionService"].full_name]

    def add_to_server(self, server: grpc.aio.Server) -> None:
        vision_pb2_grpc.add_VisionServiceServicer_to_server(
            VisionServicer(self.engine, self.config.store_id), server
        )

    async def start(self) -> None:
        """Load and warm up the model before health reports SERVING."""
        metrics.watch(self.engine)
        await self.engine.start()

    async def begin_shutdown(self) -> None:
        """End every lane stream so the server can stop within its grace period."""
        self.engine.end_streams()

    async def stop(self) -> None:
        metrics.unwatch(self.engine)
        await self.engine.stop()


def create_app(config: LanesightConfig) -> VisionApp:
    """Build the vision service from config."""
    return VisionApp(config)
