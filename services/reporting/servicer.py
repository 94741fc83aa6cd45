"""ReportingService over gRPC: protobuf in and out, the store and reports do the work."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc
from lanesight.common.auth import authorize_stores, caller_may_access_store
from lanesight.reporting import convert, metrics, model
from lanesight.reporting.exports import export_report
from lanesight.reporting.facts import REJECTED_KIND
from lanesight.reporting.importer import StoreNotAllowed, import_poslog
from lanesight.reporting.localtime import now_ms
from lanesight.reporting.model import InvalidArgument
from lanesight.reporting.poslog import PosLogError
from lanesight.v1 import reporting_pb2, reporting_pb2_grpc

if TYPE_CHECKING:
    from lanesight.reporting.app import ReportingApp

log = logging.getLogger(__name__)

EXPORT_CHUNK_BYTES = 64 * 1024
# IngestRecords requests read and checked while an earlier one is stored (each up to the
# sender's batch, 500 records from fusion): enough to keep the database busy, and a
# bound, so a sender faster than the database is held back by gRPC flow control.
INGEST_READ_AHEAD = 2


@dataclasses.dataclass(frozen=True, slots=True)
class _Refused:
    """A request that ends the stream: the status and details to abort with."""

    code: grpc.StatusCode
    details: str


# What the reader hands over: a checked request (sender id, records), a refusal, the
# exception that ended reading, or None at the end of the stream.
_Checked = tuple[str, list[model.IngestRecord]] | _Refused | BaseException | None


async def _read_ingest(context: grpc.aio.ServicerContext, checked: asyncio.Queue) -> None:
    """Read IngestRecords requests and queue each checked, until the end of the stream or
    the first refusal."""
    while True:
        try:
            request = await context.read()
        except Exception as exc:  # the handler raises it in its own task
            await checked.put(exc)
            return
        if request is grpc.aio.EOF:
            await checked.put(None)
            return
        result = _check_ingest(request)
        await checked.put(result)
        if isinstance(result, _Refused):
            return


def _check_ingest(
    request: reporting_pb2.IngestRecordsRequest,
) -> tuple[str, list[model.IngestRecord]] | _Refused:
    """A request's records, validated (a refused event becomes a data-quality record), or
    why the stream ends: a missing sender, sequences out of order, a store out of scope."""
    sender_id = request.sender_id
    if not sender_id:
        return _Refused(grpc.StatusCode.INVALID_ARGUMENT, "sender_id: required")
    fed = request.records
    sequences = [r.record_sequence for r in fed]
    if any(b <= a for a, b in zip(sequences, sequences[1:], strict=False)):
        return _Refused(
            grpc.StatusCode.INVALID_ARGUMENT,
            "records: record_sequence must increase within a request",
        )
    now = time.time_ns() // 1_000_000  # one clock for the request's validation
    # The payload fields are the projector's to extract, behind the ack.
    records = [convert.record_from_proto(r, now, with_data=False) for r in fed]
    allowed: dict[str, bool] = {}  # a request's records come from a store or a few
    for record in records:
        item = record.event or record.alert
        if item is None:
            continue
        may = allowed.get(item.store_id)
        if may is None:
            may = allowed[item.store_id] = caller_may_access_store(item.store_id)
        if not may:
            return _Refused(
                grpc.StatusCode.PERMISSION_DENIED,
                f"record {record.record_sequence}: store {item.store_id!r} is out of this"
                " caller's scope",
            )
        if record.event is not None and record.event.kind == REJECTED_KIND:
            # Stored as a data-quality incident and acked: never resent forever.
            log.warning(
                "data-quality: record %d from %s refused: %s: %s",
                record.record_sequence,
                sender_id,
                record.event.data["field"],
                record.event.data["message"],
            )
    return sender_id, records


class ReportingServicer(reporting_pb2_grpc.ReportingServiceServicer):
    """ReportingService: ingest, reports, exports and POSLog import."""

    def __init__(self, app: ReportingApp) -> None:
        self.app = app

    async def _ready(self, context: grpc.aio.ServicerContext):
        if self.app.store is None or self.app.reports is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "reporting is starting")
        return self.app.store, self.app.reports

    async def _filter(
        self, message: reporting_pb2.ReportFilter, context: grpc.aio.ServicerContext
    ) -> model.ReportFilter:
        """The request's filter narrowed to the caller's stores; PERMISSION_DENIED when it
        names a store out of scope. InvalidArgument for a bad filter."""
        store_ids = await authorize_stores(context, message.store_ids)
        return dataclasses.replace(convert.filter_from_proto(message), store_ids=tuple(store_ids))

    async def IngestRecords(self, request_iterator, context: grpc.aio.ServicerContext):
        store, _ = await self._ready(context)
        # A task reads and checks requests ahead of the one being stored (a bounded few):
        # fusion's forwarder keeps several in flight, and the next one's checks can run
        # while the database stores this one (only its commit overlaps much while the
        # checks hold the GIL on this thread: docs/reporting.md, "Metrics").
        checked: asyncio.Queue[_Checked] = asyncio.Queue(maxsize=INGEST_READ_AHEAD)
        reader = asyncio.create_task(_read_ingest(context, checked))
        shutdown = asyncio.ensure_future(self.app.shutting_down.wait())
        take: asyncio.Future | None = None
        try:
            while True:
                take = asyncio.ensure_future(checked.get())
                await asyncio.wait({take, shutdown}, return_when=asyncio.FIRST_COMPLETED)
                if not take.done():
                    take.cancel()
                    await context.abort(
                        grpc.StatusCode.UNAVAILABLE,
                        "reporting is shutting down; reconnect and resend unacknowledged records",
                    )
                request = take.result()
                if request is None:
                    return
                if isinstance(request, _Refused):
                    await context.abort(request.code, request.details)
                elif isinstance(request, BaseException):
                    raise request
                else:
                    sender_id, records = request
                    previous = await store.acked_sequence(sender_id)
                    started = time.perf_counter()
                    acked = await store.ingest(sender_id, records)
                    stored_s = time.perf_counter() - started
                    await context.write(
                        reporting_pb2.IngestRecordsResponse(acked_record_sequence=acked)
                    )
                    # After the ack: the lag histogram takes a value per event.
                    metrics.record_ingest(records, previous, stored_s)
        finally:
            shutdown.cancel()
            if take is not None:
                take.cancel()
            reader.cancel()
            await asyncio.wait({reader})

    async def ListAlerts(self, request, context):
        _, reports = await self._ready(context)
        try:
            alerts, info = await reports.list_alerts(
                await self._filter(request.filter, context),
                convert.state_from_proto(request.state),
                convert.page_from_proto(request.page),
            )
        except InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return reporting_pb2.ListAlertsResponse(
            alerts=[convert.alert_to_proto(a) for a in alerts], page=convert.page_to_proto(info)
        )

    async def GetShrinkReport(self, request, context):
        _, reports = await self._ready(context)
        try:
            rows, info = await reports.shrink(
                await self._filter(request.filter, context),
                convert.dimensions_from_proto(request.group_by),
                convert.page_from_proto(request.page),
            )
        except InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return reporting_pb2.GetShrinkReportResponse(
            rows=[convert.shrink_row_to_proto(r) for r in rows], page=convert.page_to_proto(info)
        )

    async def GetAlertQualityReport(self, request, context):
        _, reports = await self._ready(context)
        try:
            rows, transactions, info = await reports.alert_quality(
                await self._filter(request.filter, context), convert.page_from_proto(request.page)
            )
        except InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return reporting_pb2.GetAlertQualityReportResponse(
            rows=[convert.quality_row_to_proto(r) for r in rows],
            transactions=transactions,
            page=convert.page_to_proto(info),
        )

    async def GetLaneHealthReport(self, request, context):
        _, reports = await self._ready(context)
        try:
            rows, keyed, info = await reports.lane_health(
                await self._filter(request.filter, context), convert.page_from_proto(request.page)
            )
        except InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return reporting_pb2.GetLaneHealthReportResponse(
            rows=[convert.lane_row_to_proto(r) for r in rows],
            keyed_items=[convert.keyed_item_to_proto(i) for i in keyed],
            page=convert.page_to_proto(info),
        )

    async def GetPosExceptionReport(self, request, context):
        _, reports = await self._ready(context)
        try:
            rows, info = await reports.pos_exceptions(
                await self._filter(request.filter, context),
                convert.page_from_proto(request.page),
                request.outlier_z,
            )
        except InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return reporting_pb2.GetPosExceptionReportResponse(
            rows=[convert.pos_row_to_proto(r) for r in rows], page=convert.page_to_proto(info)
        )

    async def ExportReport(
        self, request, context
    ) -> AsyncIterator[reporting_pb2.ExportReportResponse]:
        _, reports = await self._ready(context)
        try:
            exported = await export_report(
                reports,
                convert.report_kind_from_proto(request.kind),
                convert.export_format_from_proto(request.format),
                await self._filter(request.filter, context),
                convert.dimensions_from_proto(request.group_by),
                now_ms(),
            )
        except InvalidArgument as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        data = exported.data
        for offset in range(0, max(len(data), 1), EXPORT_CHUNK_BYTES):
            chunk = reporting_pb2.ExportReportResponse(
                chunk=data[offset : offset + EXPORT_CHUNK_BYTES]
            )
            if offset == 0:
                chunk.content_type = exported.content_type
                chunk.filename = exported.filename
            yield chunk

    async def ImportPosLog(self, request, context):
        store, _ = await self._ready(context)
        if request.default_store_id and not caller_may_access_store(request.default_store_id):
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED,
                f"default_store_id: store {request.default_store_id!r} is out of this caller's"
                " scope",
            )
        try:
            result = await import_poslog(
                store,
                io.BytesIO(request.xml),
                request.filename or "<request>",
                request.default_store_id,
                allow_store=caller_may_access_store,
            )
        except PosLogError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"xml: {exc}")
        except StoreNotAllowed as exc:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"xml: {exc}; nothing imported")
        return reporting_pb2.ImportPosLogResponse(
            transactions=result.transactions,
            duplicates=result.duplicates,
            skipped_elements=result.skipped_elements,
        )
