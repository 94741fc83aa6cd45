"""The device service's gRPC app: servicers wired to the shared bootstrap."""

from __future__ import annotations

import grpc

from lanesight.v1 import device_pb2, device_pb2_grpc
from services.common.app import ServiceApp, unimplemented
from services.common.config import LanesightConfig

ISSUE = "issue 4 (device)"


class DeviceServicer(device_pb2_grpc.DeviceServiceServicer):
    """DeviceService; RPCs not built yet answer UNIMPLEMENTED and say so."""

    async def SubmitPosEvents(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Device.SubmitPosEvents", ISSUE)

    async def GetDeviceStatus(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Device.GetDeviceStatus", ISSUE)

    async def ExecuteLaneCommand(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Device.ExecuteLaneCommand", ISSUE)

    async def WatchLaneCommands(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Device.WatchLaneCommands", ISSUE)


class DeviceApp(ServiceApp):
    """The device service."""

    name = "device"

    def __init__(self, config: LanesightConfig) -> None:
        self.config = config

    def service_names(self) -> list[str]:
        return [device_pb2.DESCRIPTOR.services_by_name["DeviceService"].full_name]

    def add_to_server(self, server: grpc.aio.Server) -> None:
        device_pb2_grpc.add_DeviceServiceServicer_to_server(DeviceServicer(), server)


def create_app(config: LanesightConfig) -> DeviceApp:
    """Build the device service from config."""
    return DeviceApp(config)
