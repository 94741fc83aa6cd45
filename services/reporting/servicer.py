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
from lanesight.reporting.importer import StoreNotAllowed, import_poslog
from lanesight.reporting.ingest_checks import CheckedRequest, IngestChecker, Refused
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
# bound, so a sender faster than the database is held back by gRPC flow control. With
# check workers, one more than there are workers, so each has a request while the
# database stores another.
INGEST_READ_AHEAD = 2


# What the reader hands over: a checked request, a refusal, a worker's check under way,
# the exception that ended reading, or None at the end of the stream.
_Checked = CheckedRequest | Refused | asyncio.Future | BaseException | None


async def _read_ingest(
    context: grpc.aio.ServicerContext, checker: IngestChecker, checked: asyncio.Queue
) -> None:
    """Read IngestRecords requests (serialized: ``ingest_checks`` parses them) and queue
    each checked, or its check under way in a worker, until the end of the stream or the
    first refusal."""
    while True:
        try:
            request = await context.read()
            if request is grpc.aio.EOF:
                await checked.put(None)
                return
            if checker.in_workers:
                check = asyncio.ensure_future(checker.check(request))
                try:
                    await checked.put(check)
                except BaseException:
                    check.cancel()  # the stream ends: its result is not wanted
                    raise
                continue
            result = await checker.check(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the handler raises it in its own task
            await checked.put(exc)
            return
        await checked.put(result)
        if isinstance(result, Refused):
            return


def _scope_refusal(sender_id: str, checked: CheckedRequest) -> Refused | None:
    """Log the events the validator refused, and refuse the request when a record names
    a store out of the caller's scope (at the first such record)."""
    refused_at = None
    for store_id, first in checked.stores:  # in record order
        if not caller_may_access_store(store_id):
            refused_at = (store_id, first)
            break
    for sequence, field, message in checked.refused:
        if refused_at is not None and sequence >= refused_at[1]:
            break
        log.warning(
            "data-quality: record %d from %s refused: %s: %s", sequence, sender_id, field, message
        )
    if refused_at is None:
        return None
    store_id, first = refused_at
    return Refused(
        "PERMISSION_DENIED",
        f"record {first}: store {store_id!r} is out of this caller's scope",
    )


def add_servicer(servicer: ReportingServicer, server: grpc.aio.Server) -> None:
    """Register the servicer as the generated code does, but with IngestRecords taking its
    requests serialized: ``ingest_checks`` parses them where it checks them (in a worker
    process when there are any), so the event loop never parses them."""

    class _Capture:
        service = ""
        handlers: dict[str, grpc.RpcMethodHandler] = {}

        def add_generic_rpc_handlers(self, _handlers) -> None:
            pass

        def add_registered_method_handlers(self, service, handlers) -> None:
            self.service, self.handlers = service, handlers

    capture = _Capture()
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(servicer, capture)
    handlers = dict(capture.handlers)
    ingest = handlers["IngestRecords"]
    handlers["IngestRecords"] = grpc.stream_stream_rpc_method_handler(
        ingest.stream_stream,
        request_deserializer=None,
        response_serializer=ingest.response_serializer,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(capture.service, handlers),)
    )
    server.add_registered_method_handlers(capture.service, handlers)


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
        checker = self.app.ingest_checker
        checker.start()
        # A task reads and checks requests ahead of the one being stored (a bounded few):
        # fusion's forwarder keeps several in flight. Checked in worker processes, they
        # overlap the database's work; checked here, only its commit overlaps much while
        # the checks hold the GIL (docs/reporting.md, "Metrics").
        ahead = max(INGEST_READ_AHEAD, checker.workers + 1)
        checked: asyncio.Queue[_Checked] = asyncio.Queue(maxsize=ahead)
        reader = asyncio.create_task(_read_ingest(context, checker, checked))
        shutdown = asyncio.ensure_future(self.app.shutting_down.wait())
        take: asyncio.Future | None = None
        try:
            while True:
                take = asyncio.ensure_future(checked.get())
                request = await self._unless_shutdown(take, shutdown, context)
                if isinstance(request, asyncio.Future):  # checked in a worker
                    try:
                        request = await self._unless_shutdown(request, shutdown, context)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        request = exc
                if request is None:
                    return
                if isinstance(request, CheckedRequest):
                    sender_id = request.sender_id
                    refusal = _scope_refusal(sender_id, request)
                    if refusal is not None:
                        request = refusal
                if isinstance(request, Refused):
                    await context.abort(grpc.StatusCode[request.code], request.details)
                elif isinstance(request, BaseException):
                    raise request
                else:
                    records = request.records
                    previous = await store.acked_sequence(sender_id)
                    started = time.perf_counter()
                    acked = await store.ingest_fed(sender_id, records)
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
            # Checks queued and not taken: cancelled (a worker's result is not wanted).
            while not checked.empty():
                left = checked.get_nowait()
                if isinstance(left, asyncio.Future):
                    left.cancel()

    @staticmethod
    async def _unless_shutdown(
        future: asyncio.Future, shutdown: asyncio.Future, context: grpc.aio.ServicerContext
    ):
        """The future's result, or the stream ended with UNAVAILABLE when the service starts
        shutting down first."""
        await asyncio.wait({future, shutdown}, return_when=asyncio.FIRST_COMPLETED)
        if not future.done():
            future.cancel()
            await context.abort(
                grpc.StatusCode.UNAVAILABLE,
                "reporting is shutting down; reconnect and resend unacknowledged records",
            )
        return future.result()

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
