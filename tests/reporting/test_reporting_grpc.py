"""ReportingService over a real gRPC server on port 0: ingest, resume, paging, errors, export."""

from __future__ import annotations

import asyncio
import csv
import io
import time

import grpc
import pytest
from lanesight.common.server import start_server
from lanesight.fusion.config import FusionConfig
from lanesight.fusion.forwarder import ReportingForwarder
from lanesight.reporting import convert, servicer
from lanesight.reporting.app import create_app
from lanesight.v1 import alerts_pb2, common_pb2, reporting_pb2, reporting_pb2_grpc

from tests.conftest import assert_eventually
from tests.reporting.reporting_builders import (
    G1,
    T0_MS,
    Lane,
    as_records,
    count,
    crafted_records,
    item,
    query,
    service_config,
)

R = reporting_pb2


async def ingest(stub, sender: str, records, expect: int) -> None:
    call = stub.IngestRecords(timeout=30)
    await call.write(R.IngestRecordsRequest(sender_id=sender, records=records))
    assert (await call.read()).acked_record_sequence == expect
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF


async def counts(config) -> tuple[int, int]:
    return await count(config, "events"), await count(config, "alert_revisions")


@pytest.fixture
async def served(tmp_path):
    """A running service holding the crafted dataset, and a stub to it."""
    config = service_config(tmp_path)
    running = await start_server(create_app(config), config, port=0)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    stub = reporting_pb2_grpc.ReportingServiceStub(channel)
    records = crafted_records()
    await ingest(stub, "fusion-1", records, len(records))
    yield stub
    await channel.close()
    await running.stop()


async def test_ingest_resumes_after_a_restart_without_gaps_or_duplicates(tmp_path):
    config = service_config(tmp_path)
    records = crafted_records()
    events_total = sum(1 for r in records if r.HasField("event"))
    running = await start_server(create_app(config), config, port=0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = reporting_pb2_grpc.ReportingServiceStub(channel)
        call = stub.IngestRecords(timeout=30)
        await call.write(R.IngestRecordsRequest(sender_id="fusion-1", records=records[:20]))
        assert (await call.read()).acked_record_sequence == 20
        await call.write(R.IngestRecordsRequest(sender_id="fusion-1", records=records[20:30]))
        assert (await call.read()).acked_record_sequence == 30
        await call.done_writing()
        assert await call.read() is grpc.aio.EOF
    await running.stop()
    assert (await counts(config.reporting))[0] == 30

    running = await start_server(create_app(config), config, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = reporting_pb2_grpc.ReportingServiceStub(channel)
            call = stub.IngestRecords(timeout=30)
            # A hello without records learns where reporting stands.
            await call.write(R.IngestRecordsRequest(sender_id="fusion-1"))
            assert (await call.read()).acked_record_sequence == 30
            # The sender resends from before the ack (it never saw it): stored once.
            await call.write(R.IngestRecordsRequest(sender_id="fusion-1", records=records[25:]))
            assert (await call.read()).acked_record_sequence == len(records)
            await call.done_writing()
            assert await call.read() is grpc.aio.EOF
    finally:
        await running.stop()
    assert (await counts(config.reporting)) == (events_total, 7)


async def test_out_of_range_events_become_data_quality_issues_not_a_blocked_feed(tmp_path):
    config = service_config(tmp_path)
    lane = Lane("s1", "1")
    now_ms = time.time_ns() // 1_000_000
    good = lane.event(now_ms, "t", item_added=item("1", gtin=G1))
    far_future = lane.event(now_ms, "t", item_added=item("2", gtin=G1))
    far_future.lane_time.seconds = 10**12  # the year 33658
    huge_sequence = lane.event(now_ms, "t", item_added=item("3", gtin=G1))
    huge_sequence.sequence = 2**64 - 1
    after = lane.event(now_ms + 1, "t", item_added=item("4", gtin=G1))
    records = as_records([good, far_future, huge_sequence, after])
    running = await start_server(create_app(config), config, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = reporting_pb2_grpc.ReportingServiceStub(channel)
            await ingest(stub, "fusion-1", records, 4)
            await ingest(stub, "fusion-1", records, 4)  # resent: stored once
    finally:
        await running.stop()
    items = await query(config.reporting, "SELECT line_id FROM items ORDER BY line_id")
    issues = await query(config.reporting, "SELECT kind FROM lane_incidents")
    events = await count(config.reporting, "events")
    assert items == [("1",), ("4",)]
    assert issues == [("data_quality_rejected",)] * 2
    assert events == 4


async def test_shutdown_ends_ingest_streams_with_unavailable(tmp_path):
    config = service_config(tmp_path)
    running = await start_server(create_app(config), config, port=0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = reporting_pb2_grpc.ReportingServiceStub(channel)
        call = stub.IngestRecords(timeout=30)
        await call.write(R.IngestRecordsRequest(sender_id="fusion-1"))
        assert (await call.read()).acked_record_sequence == 0
        stopping = asyncio.create_task(running.stop())
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await call.read()
        assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
        await asyncio.wait_for(stopping, 30)


async def test_requests_sent_ahead_of_their_acks_are_stored_in_order_until_a_bad_one(tmp_path):
    """A sender keeps several requests in flight; each is acked in order, and a refused
    one ends the stream after everything before it is stored and acked."""
    config = service_config(tmp_path)
    lane = Lane("s1", "1")
    events = [lane.event(T0_MS + n, "t", item_added=item(str(n), gtin=G1)) for n in range(40)]
    records = as_records(events)
    out_of_order = [records[31], records[30]]
    running = await start_server(create_app(config), config, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            call = reporting_pb2_grpc.ReportingServiceStub(channel).IngestRecords(timeout=30)
            for request in (records[0:10], records[10:20], records[20:30], out_of_order):
                await call.write(R.IngestRecordsRequest(sender_id="fusion-1", records=request))
            await call.write(R.IngestRecordsRequest(sender_id="fusion-1", records=records[32:]))
            assert [(await call.read()).acked_record_sequence for _ in range(3)] == [10, 20, 30]
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await call.read()
            assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "record_sequence must increase" in failure.value.details()
    finally:
        await running.stop()
    assert await count(config.reporting, "events") == 30
    assert await query(config.reporting, "SELECT acked_sequence FROM ingest_senders") == [(30,)]


async def test_fusions_forwarder_feeds_reporting_with_several_requests_in_flight(tmp_path):
    """The real sender: fusion's forwarder sends batch after batch without waiting for
    acks; everything is stored once, without gaps, and acked to the last record."""
    config = service_config(tmp_path)
    lane = Lane("s1", "1")
    events = [lane.event(T0_MS + n, f"t{n // 10}", item_added=item(str(n))) for n in range(95)]
    running = await start_server(create_app(config), config, port=0)
    sending = config.model_copy(
        update={"fusion": FusionConfig(forward_batch_max=10, sender_id="fusion-7")}
    )
    forwarder = ReportingForwarder(sending, f"127.0.0.1:{running.port}")
    try:
        forwarder.add_events(events[:50])
        forwarder.add_events(events[50:])
        last = forwarder.next_sequence - 1
        await forwarder.start()
        await assert_eventually(lambda: forwarder.pending == 0, timeout_s=30, interval_s=0.01)
        assert forwarder.acked == last
    finally:
        await forwarder.stop()
        await running.stop()
    assert await count(config.reporting, "events") == 95
    assert await count(config.reporting, "ingest_gaps") == 0
    assert await query(
        config.reporting, "SELECT sender_id, acked_sequence FROM ingest_senders"
    ) == [("fusion-7", last)]


async def test_ingest_rejects_a_request_without_sender(served):
    call = served.IngestRecords(timeout=30)
    await call.write(R.IngestRecordsRequest(records=crafted_records()[:1]))
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call.read()
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sender_id" in failure.value.details()


async def test_reports_page_with_tokens(served):
    request = R.GetShrinkReportRequest(
        group_by=[R.SHRINK_DIMENSION_HOUR_OF_DAY], page=common_pb2.PageRequest(page_size=1)
    )
    keys = []
    while True:
        response = await served.GetShrinkReport(request, timeout=10)
        assert response.page.total_size == 3
        keys += [tuple(r.keys) for r in response.rows]
        if not response.page.next_page_token:
            break
        request.page.page_token = response.page.next_page_token
    assert keys == [("09",), ("10",), ("11",)]

    request = R.ListAlertsRequest(page=common_pb2.PageRequest(page_size=2))
    pages = []
    while True:
        response = await served.ListAlerts(request, timeout=10)
        pages.append([a.alert_id for a in response.alerts])
        assert response.page.total_size == 5
        if not response.page.next_page_token:
            break
        request.page.page_token = response.page.next_page_token
    assert pages == [["A4", "A3"], ["A5", "A2"], ["A1"]]


async def test_reports_over_grpc_carry_the_figures(served):
    lane = await served.GetLaneHealthReport(R.GetLaneHealthReportRequest(), timeout=10)
    row = lane.rows[0]
    assert (row.lane.store_id, row.lane.lane_id) == ("s1", "1")
    assert (row.items_entered, row.items_weighed, row.scanner_no_reads) == (7, 1, 1)
    assert row.camera_unhealthy_seconds == 150 and row.health_score == pytest.approx(66.9)
    assert [k.item_code for k in lane.keyed_items] == ["05012345678900"]
    quality = await served.GetAlertQualityReport(R.GetAlertQualityReportRequest(), timeout=10)
    assert quality.transactions == 4
    missed = next(r for r in quality.rows if r.type == alerts_pb2.ALERT_TYPE_MISSED_SCAN)
    assert (missed.rule, missed.precision) == ("missed_scan_v1", 0.5)
    shrink = await served.GetShrinkReport(
        R.GetShrinkReportRequest(group_by=[R.SHRINK_DIMENSION_STORE]), timeout=10
    )
    assert [
        (tuple(r.keys), r.amount_at_risk.currency_code, r.amount_at_risk.amount_minor)
        for r in shrink.rows
    ] == [(("s1",), "USD", 750), (("s2",), "EUR", 1000)]
    pos = await served.GetPosExceptionReport(R.GetPosExceptionReportRequest(), timeout=10)
    assert sum(r.voids for r in pos.rows) == 2
    alerts = await served.ListAlerts(
        R.ListAlertsRequest(state=alerts_pb2.ALERT_STATE_OPEN), timeout=10
    )
    assert [a.alert_id for a in alerts.alerts] == ["A4"]
    assert alerts.alerts[0].amount_at_risk.currency_code == "EUR"


def _bad_range():
    f = R.ReportFilter()
    f.range.start.CopyFrom(convert.ms_ts(T0_MS + 1000))
    f.range.end.CopyFrom(convert.ms_ts(T0_MS))
    return f


@pytest.mark.parametrize(
    ("rpc", "request_", "field"),
    [
        ("GetShrinkReport", R.GetShrinkReportRequest(filter=_bad_range()), "filter.range"),
        (
            "GetAlertQualityReport",
            R.GetAlertQualityReportRequest(filter=_bad_range()),
            "filter.range",
        ),
        ("GetLaneHealthReport", R.GetLaneHealthReportRequest(filter=_bad_range()), "filter.range"),
        (
            "GetPosExceptionReport",
            R.GetPosExceptionReportRequest(filter=_bad_range()),
            "filter.range",
        ),
        ("ListAlerts", R.ListAlertsRequest(filter=_bad_range()), "filter.range"),
        (
            "GetShrinkReport",
            R.GetShrinkReportRequest(page=common_pb2.PageRequest(page_size=-1)),
            "page.page_size",
        ),
        (
            "GetLaneHealthReport",
            R.GetLaneHealthReportRequest(page=common_pb2.PageRequest(page_size=5000)),
            "page.page_size",
        ),
        (
            "GetShrinkReport",
            R.GetShrinkReportRequest(filter=R.ReportFilter(types=[99])),
            "filter.types",
        ),
        ("GetShrinkReport", R.GetShrinkReportRequest(group_by=[42]), "group_by"),
        (
            "GetShrinkReport",
            R.GetShrinkReportRequest(group_by=[R.SHRINK_DIMENSION_LANE, R.SHRINK_DIMENSION_LANE]),
            "group_by",
        ),
        ("ListAlerts", R.ListAlertsRequest(state=9), "state"),
        (
            "ListAlerts",
            R.ListAlertsRequest(page=common_pb2.PageRequest(page_token="not-a-token")),
            "page.page_token",
        ),
        (
            "GetPosExceptionReport",
            R.GetPosExceptionReportRequest(page=common_pb2.PageRequest(page_token="%%%")),
            "page.page_token",
        ),
        ("GetPosExceptionReport", R.GetPosExceptionReportRequest(outlier_z=-1), "outlier_z"),
    ],
)
async def test_invalid_argument_names_the_field(served, rpc, request_, field):
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await getattr(served, rpc)(request_, timeout=10)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.value.details().startswith(field)


async def test_a_token_for_another_query_is_refused(served):
    first = await served.GetShrinkReport(
        R.GetShrinkReportRequest(
            group_by=[R.SHRINK_DIMENSION_HOUR_OF_DAY], page=common_pb2.PageRequest(page_size=1)
        ),
        timeout=10,
    )
    token = first.page.next_page_token
    assert token
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await served.GetShrinkReport(
            R.GetShrinkReportRequest(
                group_by=[R.SHRINK_DIMENSION_LANE],
                page=common_pb2.PageRequest(page_size=1, page_token=token),
            ),
            timeout=10,
        )
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page.page_token" in failure.value.details()


async def test_export_streams_chunks(served, monkeypatch):
    monkeypatch.setattr(servicer, "EXPORT_CHUNK_BYTES", 1024)
    chunks = [
        c
        async for c in served.ExportReport(
            R.ExportReportRequest(kind=R.REPORT_KIND_ALL, format=R.EXPORT_FORMAT_HTML), timeout=30
        )
    ]
    assert len(chunks) > 3
    assert chunks[0].content_type.startswith("text/html") and chunks[0].filename.endswith(".html")
    assert all(not c.content_type for c in chunks[1:])
    page = b"".join(c.chunk for c in chunks).decode()
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>")
    csv_chunks = [
        c
        async for c in served.ExportReport(
            R.ExportReportRequest(
                kind=R.REPORT_KIND_SHRINK,
                format=R.EXPORT_FORMAT_CSV,
                group_by=[R.SHRINK_DIMENSION_LANE],
            ),
            timeout=30,
        )
    ]
    text = b"".join(c.chunk for c in csv_chunks).decode()
    assert text.splitlines()[0] == "lane,currency,alerts,amount_at_risk,amount_recovered"
    assert "s2/1,EUR,1,10.00,0.00" in text.splitlines()
    stores = [
        c
        async for c in served.ExportReport(
            R.ExportReportRequest(
                kind=R.REPORT_KIND_STORE_COMPARISON,
                format=R.EXPORT_FORMAT_CSV,
                filter=R.ReportFilter(store_ids=["s1"]),
            ),
            timeout=30,
        )
    ]
    rows = list(csv.DictReader(io.StringIO(b"".join(c.chunk for c in stores).decode())))
    assert [(r["store"], r["transactions"], r["precision"]) for r in rows] == [
        ("s1", "4", "0.7500")
    ]
    assert rows[0]["previous_transactions"] == ""  # an open-ended period has no previous


@pytest.mark.parametrize(
    ("kind", "fmt", "field"),
    [
        (R.REPORT_KIND_ALL, R.EXPORT_FORMAT_CSV, "format"),
        (R.REPORT_KIND_UNSPECIFIED, R.EXPORT_FORMAT_CSV, "kind"),
        (R.REPORT_KIND_SHRINK, R.EXPORT_FORMAT_UNSPECIFIED, "format"),
    ],
)
async def test_export_refuses_bad_kinds_and_formats(served, kind, fmt, field):
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        async for _ in served.ExportReport(
            R.ExportReportRequest(kind=kind, format=fmt), timeout=10
        ):
            pass
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.value.details().startswith(field)


async def test_cli_report_against_a_running_service(tmp_path):
    import argparse

    from lanesight.reporting.model import ReportFilter as DomainFilter
    from lanesight.reporting.remote import remote_report

    config = service_config(tmp_path)
    running = await start_server(create_app(config), config, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = reporting_pb2_grpc.ReportingServiceStub(channel)
            records = crafted_records()
            await ingest(stub, "fusion-1", records, len(records))

        def args(report: str, **extra) -> argparse.Namespace:
            defaults = {"format": "table", "keyed_items": False, "state": None}
            return argparse.Namespace(
                report=report, reporting=f"127.0.0.1:{running.port}", **{**defaults, **extra}
            )

        lane = (await remote_report(args("lane-health"), config, DomainFilter(), [], 10)).decode()
        assert "66.9" in lane and "05012345678900" in lane
        csv_text = await remote_report(
            args("shrink", format="csv"), config, DomainFilter(), ["store"], 10
        )
        assert b"s1,USD,4,7.50,7.50" in csv_text
        opened = await remote_report(args("alerts", state="open"), config, DomainFilter(), [], 10)
        assert b"A4" in opened and b"A1" not in opened
        page = await remote_report(args("html"), config, DomainFilter(), [], 10)
        assert b'data-chart="alert-precision"' in page
        pos = await remote_report(args("pos-exceptions"), config, DomainFilter(), [], 10)
        assert b"op-a" in pos and b"sup-1" in pos
    finally:
        await running.stop()
