"""The device service's gRPC app: the lane agent behind DeviceService."""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from lanesight.common.app import ServiceApp
from lanesight.common.config import LanesightConfig
from lanesight.device import metrics
from lanesight.device.agent import LaneAgent
from lanesight.device.camera.sources import FrameSource
from lanesight.device.servicer import DeviceServicer
from lanesight.v1 import device_pb2, device_pb2_grpc


class DeviceApp(ServiceApp):
    """The device service: one lane agent."""

    name = "device"

    def __init__(
        self, config: LanesightConfig, frame_sources: Mapping[str, FrameSource] | None = None
    ) -> None:
        self.config = config
        self.agent = LaneAgent(config, frame_sources)

    def service_names(self) -> list[str]:
        return [device_pb2.DESCRIPTOR.services_by_name["DeviceService"].full_name]

    def add_to_server(self, server: grpc.aio.Server) -> None:
        device_pb2_grpc.add_DeviceServiceServicer_to_server(DeviceServicer(self.agent), server)

    async def start(self) -> None:
        metrics.watch(self.agent)
        await self.agent.start()

    async def begin_shutdown(self) -> None:
        if self.agent.commands is not None:
            self.agent.commands.close_subscribers()
        if self.agent.suggester is not None:
            self.agent.suggester.close_subscribers()

    async def stop(self) -> None:
        metrics.unwatch(self.agent)
        await self.agent.stop()


def create_app(
    config: LanesightConfig, frame_sources: Mapping[str, FrameSource] | None = None
) -> DeviceApp:
    """Build the device service from config; frame_sources plugs Python cameras in by camera id."""
    return DeviceApp(config, frame_sources)
