"""The vision service's gRPC app: servicers wired to the shared bootstrap."""

from __future__ import annotations

import grpc

from lanesight.v1 import vision_pb2, vision_pb2_grpc
from services.common.app import ServiceApp, unimplemented
from services.common.config import LanesightConfig

ISSUE = "issue 5 (vision)"


class VisionServicer(vision_pb2_grpc.VisionServiceServicer):
    """VisionService; RPCs not built yet answer UNIMPLEMENTED and say so."""

    async def Analyze(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Vision.Analyze", ISSUE)

    async def ClassifyImages(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Vision.ClassifyImages", ISSUE)

    async def EnrolProduct(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Vision.EnrolProduct", ISSUE)

    async def GetVisionStats(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Vision.GetVisionStats", ISSUE)


class VisionApp(ServiceApp):
    """The vision service."""

    name = "vision"

    def __init__(self, config: LanesightConfig) -> None:
        self.config = config

    def service_names(self) -> list[str]:
        return [vision_pb2.DESCRIPTOR.services_by_name["VisionService"].full_name]

    def add_to_server(self, server: grpc.aio.Server) -> None:
        vision_pb2_grpc.add_VisionServiceServicer_to_server(VisionServicer(), server)


def create_app(config: LanesightConfig) -> VisionApp:
    """Build the vision service from config."""
    return VisionApp(config)
