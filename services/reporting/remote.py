"""The report and import commands against a running reporting service over gRPC."""

from __future__ import annotations

import sys

import grpc
from lanesight.common.channels import open_channel
from lanesight.reporting import convert
from lanesight.reporting.exports import ReportBundle
from lanesight.reporting.model import InvalidArgument, PosLogImportResult, ReportFilter
from lanesight.reporting.render import REPORT_KINDS, describe_import, render_text
from lanesight.reporting.tables import alerts_table, csv_to_text, keyed_table, to_csv, to_text
from lanesight.v1 import common_pb2, reporting_pb2, reporting_pb2_grpc

_KIND_VALUES = {
    "shrink": reporting_pb2.REPORT_KIND_SHRINK,
    "alert_quality": reporting_pb2.REPORT_KIND_ALERT_QUALITY,
    "lane_health": reporting_pb2.REPORT_KIND_LANE_HEALTH,
    "pos_exceptions": reporting_pb2.REPORT_KIND_POS_EXCEPTIONS,
    "alerts": reporting_pb2.REPORT_KIND_ALERTS,
    "store_comparison": reporting_pb2.REPORT_KIND_STORE_COMPARISON,
    "all": reporting_pb2.REPORT_KIND_ALL,
}


async def _pages(call, request, deadline_s: float):
    """Every response of a paged RPC."""
    token = ""
    while True:
        request.page.CopyFrom(common_pb2.PageRequest(page_size=1000, page_token=token))
        response = await call(request, timeout=deadline_s)
        yield response
        token = response.page.next_page_token
        if not token:
            return


async def remote_report(args, config, f: ReportFilter, group_by: list[str], deadline_s: float):
    """The bytes the report command prints, fetched from the service."""
    kind = REPORT_KINDS[args.report]
    fmt = getattr(args, "format", "html")
    keyed_only = getattr(args, "keyed_items", False)
    message_filter = convert.filter_to_proto(f)
    async with open_channel(args.reporting, config) as channel:
        stub = reporting_pb2_grpc.ReportingServiceStub(channel)
        try:
            if kind == "alerts":
                request = reporting_pb2.ListAlertsRequest(
                    filter=message_filter, state=convert.state_to_proto(args.state or "unspecified")
                )
                alerts = [
                    convert.alert_from_proto(a)
                    async for response in _pages(stub.ListAlerts, request, deadline_s)
                    for a in response.alerts
                ]
                return (to_csv if fmt == "csv" else to_text)(alerts_table(alerts)).encode()
            if kind in ("all", "store_comparison") or (fmt == "csv" and not keyed_only):
                request = reporting_pb2.ExportReportRequest(
                    kind=_KIND_VALUES[kind],
                    format=reporting_pb2.EXPORT_FORMAT_HTML
                    if kind == "all"
                    else reporting_pb2.EXPORT_FORMAT_CSV,
                    filter=message_filter,
                    group_by=convert.dimensions_to_proto(group_by),
                )
                chunks = [r.chunk async for r in stub.ExportReport(request, timeout=deadline_s)]
                if kind == "store_comparison" and fmt != "csv":
                    return csv_to_text(b"".join(chunks).decode()).encode()
                return b"".join(chunks)
            bundle = await _bundle(stub, kind, message_filter, f, group_by, deadline_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise InvalidArgument("request", exc.details() or "") from None
            raise SystemExit(f"error: {exc.code().name}: {exc.details()}") from None
    if fmt == "csv":
        return to_csv(keyed_table(bundle.keyed)).encode()
    return render_text(bundle, kind, keyed_only).encode()


async def _bundle(stub, kind, message_filter, f, group_by, deadline_s) -> ReportBundle:
    bundle = ReportBundle(f, group_by or [])
    if kind == "shrink":
        request = reporting_pb2.GetShrinkReportRequest(
            filter=message_filter, group_by=convert.dimensions_to_proto(group_by)
        )
        bundle.shrink = [
            convert.shrink_row_from_proto(r)
            async for response in _pages(stub.GetShrinkReport, request, deadline_s)
            for r in response.rows
        ]
    elif kind == "alert_quality":
        request = reporting_pb2.GetAlertQualityReportRequest(filter=message_filter)
        bundle.quality = []
        async for response in _pages(stub.GetAlertQualityReport, request, deadline_s):
            bundle.quality.extend(convert.quality_row_from_proto(r) for r in response.rows)
            bundle.transactions = response.transactions
    elif kind == "lane_health":
        request = reporting_pb2.GetLaneHealthReportRequest(filter=message_filter)
        bundle.lanes = []
        async for response in _pages(stub.GetLaneHealthReport, request, deadline_s):
            bundle.lanes.extend(convert.lane_row_from_proto(r) for r in response.rows)
            bundle.keyed = [convert.keyed_item_from_proto(i) for i in response.keyed_items]
    elif kind == "pos_exceptions":
        request = reporting_pb2.GetPosExceptionReportRequest(filter=message_filter)
        bundle.pos = [
            convert.pos_row_from_proto(r)
            async for response in _pages(stub.GetPosExceptionReport, request, deadline_s)
            for r in response.rows
        ]
    return bundle


async def remote_import(args, config, deadline_s: float) -> int:
    """Send each file to ImportPosLog; returns the exit code."""
    failures = 0
    async with open_channel(args.reporting, config) as channel:
        stub = reporting_pb2_grpc.ReportingServiceStub(channel)
        for path in args.files:
            try:
                response = await stub.ImportPosLog(
                    reporting_pb2.ImportPosLogRequest(
                        filename=str(path), xml=path.read_bytes(), default_store_id=args.store
                    ),
                    timeout=deadline_s,
                )
            except (OSError, grpc.aio.AioRpcError) as exc:
                failures += 1
                detail = exc.details() if isinstance(exc, grpc.aio.AioRpcError) else exc
                print(f"error: {path}: {detail}", file=sys.stderr)
                continue
            result = PosLogImportResult(
                response.transactions, response.duplicates, dict(response.skipped_elements)
            )
            print(describe_import(str(path), result))
    return 1 if failures else 0
