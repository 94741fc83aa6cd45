"""The reporting service's gRPC app: servicers wired to the shared bootstrap."""

from __future__ import annotations

import grpc

from lanesight.v1 import reporting_pb2, reporting_pb2_grpc
from services.common.app import ServiceApp, unimplemented
from services.common.config import LanesightConfig

ISSUE = "issue 6 (reporting)"


class ReportingServicer(reporting_pb2_grpc.ReportingServiceServicer):
    """ReportingService; RPCs not built yet answer UNIMPLEMENTED and say so."""

    async def IngestRecords(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Reporting.IngestRecords", ISSUE)

    async def ListAlerts(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Reporting.ListAlerts", ISSUE)

    async def GetShrinkReport(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Reporting.GetShrinkReport", ISSUE)

    async def GetAlertQualityReport(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Reporting.GetAlertQualityReport", ISSUE)

    async def GetLaneHealthReport(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Reporting.GetLaneHealthReport", ISSUE)

    async def GetPosExceptionReport(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Reporting.GetPosExceptionReport", ISSUE)

    async def ExportReport(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Reporting.ExportReport", ISSUE)

    async def ImportPosLog(self, request, context: grpc.aio.ServicerContext):
        await unimplemented(context, "Reporting.ImportPosLog", ISSUE)


class ReportingApp(ServiceApp):
    """The reporting service."""

    name = "reporting"

    def __init__(self, config: LanesightConfig) -> None:
        self.config = config

    def service_names(self) -> list[str]:
        return [reporting_pb2.DESCRIPTOR.services_by_name["ReportingService"].full_name]

    def add_to_server(self, server: grpc.aio.Server) -> None:
        reporting_pb2_grpc.add_ReportingServiceServicer_to_server(ReportingServicer(), server)


def create_app(config: LanesightConfig) -> ReportingApp:
    """Build the reporting service from config."""
    return ReportingApp(config)
