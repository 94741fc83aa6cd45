"""FusionService over gRPC: a thin translation between protobuf and the fusion engine."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc
from lanesight.common.auth import (
    authorize_all_stores,
    authorize_store,
    authorize_stores,
    caller_may_access_store,
    caller_may_feed_lane,
    current_caller,
)
from lanesight.common.money import is_known_currency
from lanesight.common.sharding import SHARD_METADATA_KEY
from lanesight.fusion import events as ev
from lanesight.fusion import metrics
from lanesight.fusion.alerts import Disposition
from lanesight.fusion.catalog import CatalogError
from lanesight.fusion.convert import (
    alert_to_pb,
    catalog_item_from_pb,
    events_from_pb,
)
from lanesight.fusion.validation import StreamError, check_batch
from lanesight.fusion.watch import Gap, WatchFilter
from lanesight.v1 import alerts_pb2, fusion_pb2, fusion_pb2_grpc

if TYPE_CHECKING:
    from lanesight.fusion.app import FusionApp

log = logging.getLogger(__name__)


class FusionServicer(fusion_pb2_grpc.FusionServiceServicer):
    """FusionService: ingest, watch, acknowledge, resolve, catalog upsert, lane state."""

    def __init__(self, app: FusionApp) -> None:
        self.app = app

    async def Ingest(self, request_iterator, context: grpc.aio.ServicerContext):
        lane_key: tuple[str, str] | None = None
        try:
            async for response in self._ingest(request_iterator, context):
                if lane_key is None and response.lane_id:
                    lane_key = (response.store_id, response.lane_id)
                    metrics.lanes_active.add(1)
                yield response
        finally:
            if lane_key is not None:
                metrics.lanes_active.add(-1)

    async def _ingest(self, request_iterator, context: grpc.aio.ServicerContext):
        lane_key: tuple[str, str] | None = None
        async for request in request_iterator:
            events = events_from_pb(request.events)
            try:
                check_batch(events, lane_key)
            except StreamError as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            if events and lane_key is None:
                lane_key = events[0].lane_key
                # check_batch pins every event of the stream to this lane, so this one
                # check covers each event's store (no per-event cost on the hot path).
                if not caller_may_access_store(lane_key[0]):
                    await context.abort(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"events for store {lane_key[0]!r}: this caller may not feed that store",
                    )
                if not caller_may_feed_lane(lane_key[1]):
                    await context.abort(
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"events[0].lane_id: this caller's token is not bound to lane"
                        f" {lane_key[1]!r}",
                    )
                owner = self.app.owner_of(lane_key)
                if owner is not None:
                    # The owner's index also in trailing metadata: an agent follows it.
                    await context.abort(
                        grpc.StatusCode.FAILED_PRECONDITION,
                        f"lane {lane_key[0]}/{lane_key[1]} belongs to fusion replica {owner}",
                        trailing_metadata=((SHARD_METADATA_KEY, str(owner)),),
                    )
            await self.app.wait_for_forward_room()
            result = self.app.ingest(events, request.events)
            # Acknowledged means durable: ack only what is committed for reporting.
            await self.app.durable()
            response = fusion_pb2.IngestResponse(
                acked_sequence=result.acked_sequence,
                duplicates=result.duplicates,
                missing_events=result.gap_events,
            )
            if lane_key is not None:
                response.store_id, response.lane_id = lane_key
                if not events:
                    response.acked_sequence = self.app.acked_sequence(lane_key)
            for rejection in result.rejections:
                response.rejections.add(
                    event_id=rejection.event_id,
                    sequence=rejection.sequence,
                    field=rejection.field,
                    message=rejection.message,
                )
            yield response

    async def WatchAlerts(self, request, context: grpc.aio.ServicerContext):
        store_ids = await authorize_stores(context, request.store_ids)
        watch_filter = WatchFilter(
            store_ids=frozenset(store_ids),
            lane_ids=frozenset(request.lane_ids),
            types=frozenset(int(t) for t in request.types),
            min_severity=int(request.min_severity),
            include_commands=request.include_commands,
            include_updates=request.include_updates,
        )
        watcher = self.app.subscribe(watch_filter)
        metrics.watchers.add(1)
        try:
            # Tell the client the watch is in place before anything is published to it.
            await context.send_initial_metadata(())
            while (message := await watcher.next()) is not None:
                if isinstance(message, Gap):
                    metrics.watch_missed.add(message.missed)
                    yield fusion_pb2.WatchAlertsResponse(
                        gap=fusion_pb2.WatchGap(missed=message.missed)
                    )
                else:
                    yield message
        finally:
            metrics.watchers.add(-1)
            self.app.unsubscribe(watcher)

    async def AcknowledgeAlert(self, request, context: grpc.aio.ServicerContext):
        if not request.alert_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "alert_id: is required")
        await self._authorize_alert(request.alert_id, context)
        if self.app.restored_alert(request.alert_id) is not None:
            restored = self.app.settle_restored(request.alert_id, _attendant(request.attendant_id))
            await self.app.durable()
            return fusion_pb2.AcknowledgeAlertResponse(alert=restored)
        try:
            alert = self.app.acknowledge(request.alert_id, _attendant(request.attendant_id))
        except KeyError:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"alert_id: no alert {request.alert_id!r}"
            )
        await self.app.durable()
        return fusion_pb2.AcknowledgeAlertResponse(alert=alert_to_pb(alert))

    async def ResolveAlert(self, request, context: grpc.aio.ServicerContext):
        if not request.alert_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "alert_id: is required")
        if request.disposition == alerts_pb2.DISPOSITION_UNSPECIFIED:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "disposition: must not be DISPOSITION_UNSPECIFIED",
            )
        try:
            disposition = Disposition(request.disposition)
        except ValueError:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"disposition: unknown value {request.disposition}",
            )
        recovered = None
        if request.HasField("amount_recovered"):
            money = request.amount_recovered
            if not is_known_currency(money.currency_code):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"amount_recovered.currency_code: {money.currency_code!r} is not an ISO"
                    " 4217 currency code",
                )
            if money.amount_minor < 0:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    "amount_recovered.amount_minor: must not be negative",
                )
            recovered = ev.Money(money.amount_minor, money.currency_code)
        await self._authorize_alert(request.alert_id, context)
        if self.app.restored_alert(request.alert_id) is not None:
            restored = self.app.settle_restored(
                request.alert_id,
                _attendant(request.attendant_id),
                disposition,
                _note(request.note, request.attendant_id),
                recovered,
            )
            await self.app.durable()
            return fusion_pb2.ResolveAlertResponse(alert=restored)
        try:
            alert = self.app.resolve(
                request.alert_id,
                disposition,
                _attendant(request.attendant_id),
                _note(request.note, request.attendant_id),
                recovered,
            )
        except KeyError:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"alert_id: no alert {request.alert_id!r}"
            )
        await self.app.durable()
        return fusion_pb2.ResolveAlertResponse(alert=alert_to_pb(alert))

    async def _authorize_alert(self, alert_id: str, context: grpc.aio.ServicerContext) -> None:
        """NOT_FOUND for an unknown alert, PERMISSION_DENIED for another store's."""
        alert = self.app.alert(alert_id) or self.app.restored_alert(alert_id)
        if alert is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"alert_id: no alert {alert_id!r}")
        assert alert is not None  # context.abort raised above
        await authorize_store(context, alert.store_id)

    async def UpsertCatalogItems(self, request, context: grpc.aio.ServicerContext):
        # An empty store id is the chain-wide catalog: only chain-wide callers may change it.
        if request.store_id:
            await authorize_store(context, request.store_id)
        else:
            await authorize_all_stores(context)
        items = []
        for i, msg in enumerate(request.items):
            try:
                items.append(catalog_item_from_pb(msg))
            except ValueError:
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"items[{i}].unit_of_measure: unknown value {msg.unit_of_measure}",
                )
        try:
            inserted, updated = self.app.upsert_catalog(request.store_id, items)
        except CatalogError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return fusion_pb2.UpsertCatalogItemsResponse(inserted=inserted, updated=updated)

    async def GetLaneState(self, request, context: grpc.aio.ServicerContext):
        lane_ref = request.lane
        if not lane_ref.store_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "lane.store_id: is required")
        if not lane_ref.lane_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "lane.lane_id: is required")
        await authorize_store(context, lane_ref.store_id)
        state = self.app.lane_state((lane_ref.store_id, lane_ref.lane_id))
        if state is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"lane: no events from {lane_ref.store_id}/{lane_ref.lane_id} yet",
            )
        return fusion_pb2.GetLaneStateResponse(state=state)

    async def AcknowledgeLaneCommand(self, request, context: grpc.aio.ServicerContext):
        for name in ("command_id", "store_id", "lane_id"):
            if not getattr(request, name):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name}: is required")
        await authorize_store(context, request.store_id)
        known = self.app.acknowledge_command(
            request.store_id, request.lane_id, request.command_id, request.done, request.detail
        )
        return fusion_pb2.AcknowledgeLaneCommandResponse(known=known)


def _attendant(attendant_id: str) -> str:
    """Who acknowledged or resolved: the caller's token identity when auth is on (a request
    field never replaces it), else the attendant the request names."""
    caller = current_caller()
    return caller.name if caller is not None else attendant_id


def _note(note: str, attendant_id: str) -> str:
    """The resolution note, with the attendant the request names when that is not the
    caller's identity (a shared device token resolving for a named attendant)."""
    caller = current_caller()
    if caller is None or not attendant_id or attendant_id == caller.name:
        return note
    named = f"attendant_id: {attendant_id}"
    return f"{note} ({named})" if note else named
