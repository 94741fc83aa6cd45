"""Forwarding to reporting: a fake ReportingService on a real gRPC server is the peer."""

from __future__ import annotations

import asyncio
import logging
import time

import grpc
from lanesight.common.config import load_config
from lanesight.common.server import start_server
from lanesight.fusion.app import create_app
from lanesight.fusion.forwarder import ReportingForwarder
from lanesight.v1 import (
    alerts_pb2,
    events_pb2,
    fusion_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
)

from tests.conftest import assert_eventually

from .test_fusion_engine import _pass_around
from .test_fusion_service import _pb, ingest


class FakeReporting(reporting_pb2_grpc.ReportingServiceServicer):
    """Records what fusion sends and acknowledges it, like reporting would."""

    def __init__(self) -> None:
        self.records: dict[int, reporting_pb2.ReportRecord] = {}
        self.senders: set[str] = set()

    async def IngestRecords(self, request_iterator, context):
        async for request in request_iterator:
            self.senders.add(request.sender_id)
            for record in request.records:
                self.records[record.record_sequence] = record
            yield reporting_pb2.IngestRecordsResponse(
                acked_record_sequence=request.records[-1].record_sequence
            )

    @property
    def event_ids(self) -> set[str]:
        return {r.event.event_id for r in self.records.values() if r.HasField("event")}

    @property
    def alerts(self) -> list:
        return [r.alert for r in self.records.values() if r.HasField("alert")]


async def start_fake(port: int = 0) -> tuple[grpc.aio.Server, FakeReporting, int]:
    server = grpc.aio.server()
    fake = FakeReporting()
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(fake, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, fake, bound


def _config(tmp_path, reporting_port: int):
    return load_config(
        None,
        environ={
            "LANESIGHT_FUSION__STORE_PATH": str(tmp_path / "f.sqlite"),
            "LANESIGHT_PEERS__REPORTING": f"127.0.0.1:{reporting_port}",
            "LANESIGHT_FUSION__SENDER_ID": "fusion-test",
        },
    )


async def test_events_and_alert_revisions_reach_reporting(tmp_path, demo):
    server, fake, port = await start_fake()
    config = _config(tmp_path, port)
    running = await start_server(create_app(config), config, port=0)
    try:
        messages = _pb(_pass_around(demo).pay(wait_ms=8000).finish().events())
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            await ingest(fusion_pb2_grpc.FusionServiceStub(channel), messages)
        expected = {m.event_id for m in messages}
        await assert_eventually(lambda: fake.event_ids == expected and fake.alerts)
        assert fake.senders == {"fusion-test"}
        assert {a.revision for a in fake.alerts} >= {1, 2}  # raised, then merged
    finally:
        await running.stop()
        await server.stop(0)


async def test_records_are_resent_after_reporting_restarts(tmp_path, demo):
    server, fake, port = await start_fake()
    config = _config(tmp_path, port)
    running = await start_server(create_app(config), config, port=0)
    try:
        first = _pb(_pass_around(demo).pay(wait_ms=8000).finish().events())
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = fusion_pb2_grpc.FusionServiceStub(channel)
            await ingest(stub, first)
            await assert_eventually(lambda: len(fake.event_ids) == len(first))
            await server.stop(0)  # reporting goes away
            more = _pb(
                _pass_around(demo).events(
                    start_ms=1_760_000_000_000, first_sequence=first[-1].sequence + 1
                )
            )
            for message in more:
                message.transaction_id = "T2"
            await ingest(stub, more)  # fusion keeps working meanwhile
            server, again, _ = await start_fake(port)  # reporting is back on its port
            await assert_eventually(
                lambda: {m.event_id for m in more} <= again.event_ids, timeout_s=20
            )
    finally:
        await running.stop()
        await server.stop(0)


async def test_fusion_runs_without_reporting(tmp_path, demo):
    config = _config(tmp_path, 1)  # nothing listens there
    app = create_app(config)
    running = await start_server(app, config, port=0)
    try:
        messages = _pb(_pass_around(demo).pay(wait_ms=8000).finish().events())
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            responses = await ingest(fusion_pb2_grpc.FusionServiceStub(channel), messages)
        assert responses[-1].acked_sequence == messages[-1].sequence
        assert app.forwarder is not None and app.forwarder.pending >= len(messages)
    finally:
        await running.stop()


async def test_full_queue_applies_backpressure_and_drops_nothing(tmp_path, caplog):
    config = load_config(None, environ={"LANESIGHT_FUSION__FORWARD_QUEUE_MAX": "10"})
    forwarder = ReportingForwarder(config)
    with caplog.at_level(logging.WARNING, logger="lanesight.fusion.forwarder"):
        for number in range(25):
            forwarder.add_alert(alerts_pb2.Alert(alert_id=str(number)))
    assert forwarder.pending == 25 and not forwarder.has_room  # alerts are never dropped
    assert any("nothing is dropped" in r.getMessage() for r in caplog.records)
    records = forwarder.records()
    assert [r.alert.alert_id for r in records] == [str(n) for n in range(25)]
    assert [r.record_sequence for r in records] == list(
        range(forwarder.next_sequence - 25, forwarder.next_sequence)
    )
    waiting = asyncio.create_task(forwarder.wait_for_room())
    await asyncio.sleep(0)
    forwarder._ack(forwarder.first_sequence + 10)  # reporting stored 11: 14 left
    await asyncio.sleep(0)
    assert not waiting.done()
    forwarder._ack(forwarder.first_sequence + 4)  # 9 left: room again
    await asyncio.wait_for(waiting, timeout=5)


def _lane_event(number: int) -> events_pb2.LaneEvent:
    message = events_pb2.LaneEvent(
        event_id=f"e{number}", store_id="s1", lane_id="l1", sequence=number + 1
    )
    message.lane_time.seconds = 1_760_000_000 + number
    message.zone_crossing.track_id = f"t{number}" * (number % 90)  # short and long records
    return message


async def test_queued_records_are_the_protobuf_reporting_parses(tmp_path):
    """Records are queued as wire bytes: what goes out must parse to exactly the records
    (sequences, events as received, alerts) the message API would have built."""
    config = load_config(None, environ={"LANESIGHT_FUSION__FORWARD_BATCH_MAX": "7"})
    for first in (1, 100, 16_000, time.time_ns() // 1000):  # 1-byte to 8-byte varints
        forwarder = ReportingForwarder(config)
        forwarder.next_sequence = first
        forwarder.acked = forwarder.sent_upto = first - 1
        events = [_lane_event(n) for n in range(300)]
        forwarder.add_events(events[:150])
        forwarder.add_alert(alerts_pb2.Alert(alert_id="a1", revision=2))
        for event in events[150:]:
            forwarder.add_event(event)
        expected = [
            reporting_pb2.ReportRecord(record_sequence=first + n, event=e)
            for n, e in enumerate(events[:150])
        ]
        expected.append(reporting_pb2.ReportRecord(record_sequence=first + 150, alert={}))
        expected[-1].alert.alert_id, expected[-1].alert.revision = "a1", 2
        expected += [
            reporting_pb2.ReportRecord(record_sequence=first + 151 + n, event=e)
            for n, e in enumerate(events[150:])
        ]
        assert forwarder.records() == expected
        requests = forwarder._requests()
        sent = [reporting_pb2.IngestRecordsRequest.FromString(await anext(requests))]
        sent.append(reporting_pb2.IngestRecordsRequest.FromString(await anext(requests)))
        assert [r.sender_id for r in sent] == ["fusion-0", "fusion-0"]
        assert list(sent[0].records) + list(sent[1].records) == expected[:14]
        forwarder._ack(first + 9)  # reporting stored the first ten
        assert forwarder.pending == len(expected) - 10
        assert forwarder.records() == expected[10:]
        await requests.aclose()
