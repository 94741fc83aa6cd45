"""The fusion service's gRPC app: servicers wired to the shared bootstrap."""

from __future__ import annotations

import grpc

from lanesight.v1 import fusion_pb2, fusion_pb2_grpc
from services.common.app import ServiceApp, unimplemented
from services.common.config import LanesightConfig

ISSUE = "issue 3 (fusion)"


class FusionServicer(fusion_pb2_grpc.FusionServiceServicer):
    """FusionService; RPCs not built yet answer UNIMPLEMENTED and say so."""

    async def Ingest(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Fusion.Ingest", ISSUE)

    async def WatchAlerts(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Fusion.WatchAlerts", ISSUE)

    async def AcknowledgeAlert(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Fusion.AcknowledgeAlert", ISSUE)

    async def ResolveAlert(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Fusion.ResolveAlert", ISSUE)

    async def UpsertCatalogItems(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Fusion.UpsertCatalogItems", ISSUE)

    async def GetLaneState(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Fusion.GetLaneState", ISSUE)


class FusionApp(ServiceApp):
    """The fusion service."""

    name = "fusion"

    def __init__(self, config: LanesightConfig) -> None:
        self.config = config

    def service_names(self) -> list[str]:
        return [fusion_pb2.DESCRIPTOR.services_by_name["FusionService"].full_name]

    def add_to_server(self, server: grpc.aio.Server) -> None:
        fusion_pb2_grpc.add_FusionServiceServicer_to_server(FusionServicer(), server)


def create_app(config: LanesightConfig) -> FusionApp:
    """Build the fusion service from config."""
    return FusionApp(config)
