"""A small FusionService for the security tests: it scopes every request to its store
exactly the way the real servicers are expected to, via lanesight.common.auth."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
from lanesight.common.app import ServiceApp
from lanesight.common.auth import (
    authorize_all_stores,
    authorize_store,
    authorize_stores,
    caller_may_access_store,
    current_caller,
)
from lanesight.common.config import LanesightConfig
from lanesight.common.server import RunningServer, start_server
from lanesight.v1 import alerts_pb2, fusion_pb2, fusion_pb2_grpc

#: alert id -> store id of the alerts this servicer knows.
ALERTS = {"alert-a1": "store-a", "alert-b1": "store-b"}


class ScopedFusionServicer(fusion_pb2_grpc.FusionServiceServicer):
    """Answers from fixed data; every RPC checks the store first, as production code must."""

    async def Ingest(self, request_iterator, context: grpc.aio.ServicerContext):
        async for request in request_iterator:
            for event in request.events:
                if not caller_may_access_store(event.store_id):
                    await context.abort(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"event {event.event_id} is for a store this caller may not feed",
                    )
            last = request.events[-1] if request.events else None
            yield fusion_pb2.IngestResponse(
                store_id=last.store_id if last else "",
                lane_id=last.lane_id if last else "",
                acked_sequence=last.sequence if last else 0,
            )

    async def WatchAlerts(self, request, context: grpc.aio.ServicerContext):
        store_ids = await authorize_stores(context, request.store_ids)
        visible = sorted(s for s in set(ALERTS.values()) if not store_ids or s in store_ids)
        caller = current_caller()
        for alert_id, store_id in sorted(ALERTS.items()):
            if store_id in visible:
                yield fusion_pb2.WatchAlertsResponse(
                    alert=alerts_pb2.Alert(
                        alert_id=alert_id,
                        store_id=store_id,
                        acknowledged_by=caller.name if caller else "",
                    )
                )

    async def ResolveAlert(self, request, context: grpc.aio.ServicerContext):
        store_id = ALERTS.get(request.alert_id)
        if store_id is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such alert")
        await authorize_store(context, store_id)
        caller = current_caller()
        return fusion_pb2.ResolveAlertResponse(
            alert=alerts_pb2.Alert(
                alert_id=request.alert_id,
                store_id=store_id,
                resolved_by=caller.name if caller else request.attendant_id,
            )
        )

    async def UpsertCatalogItems(self, request, context: grpc.aio.ServicerContext):
        # An empty store id is the chain-wide catalog: only chain-wide tokens may change it.
        if request.store_id:
            await authorize_store(context, request.store_id)
        else:
            await authorize_all_stores(context)
        return fusion_pb2.UpsertCatalogItemsResponse(inserted=len(request.items))

    async def GetLaneState(self, request, context: grpc.aio.ServicerContext):
        await authorize_store(context, request.lane.store_id)
        return fusion_pb2.GetLaneStateResponse(state=fusion_pb2.LaneState(lane=request.lane))


class ScopedFusionApp(ServiceApp):
    """The test servicer as a ServiceApp for the shared bootstrap."""

    name = "fusion"

    def service_names(self) -> list[str]:
        return [fusion_pb2.DESCRIPTOR.services_by_name["FusionService"].full_name]

    def add_to_server(self, server: grpc.aio.Server) -> None:
        fusion_pb2_grpc.add_FusionServiceServicer_to_server(ScopedFusionServicer(), server)


def make_config(
    tmp_path: Path,
    tls: Mapping[str, Any] | None = None,
    auth: Mapping[str, Any] | None = None,
    **top: Any,
) -> LanesightConfig:
    """A validated config for a loopback server with the given tls/auth sections."""
    data: dict[str, Any] = {"store_id": "store-a", **top}
    data["tls"] = {"mode": "plaintext", **(tls or {})}
    data["auth"] = dict(auth or {})
    return LanesightConfig.model_validate(data)


@asynccontextmanager
async def running_fusion(config: LanesightConfig) -> AsyncIterator[RunningServer]:
    """The scoped fusion on a free loopback port, stopped afterwards."""
    running = await start_server(ScopedFusionApp(), config, port=0)
    try:
        yield running
    finally:
        await running.stop()
