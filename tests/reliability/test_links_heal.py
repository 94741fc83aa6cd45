"""Links heal and tell the truth: any status that ends a stream → not connected → reconnect."""

from __future__ import annotations

import uuid

import grpc
import pytest
from lanesight.common.config import load_config
from lanesight.fusion.forwarder import ReportingForwarder
from lanesight.v1 import (
    alerts_pb2,
    common_pb2,
    device_pb2,
    device_pb2_grpc,
    events_pb2,
    reporting_pb2_grpc,
)

from tests.conftest import assert_eventually
from tests.device.conftest import (
    FakeFusion,
    FakeVision,
    agent_config,
    start_agent,
    start_fake_fusion,
    start_fake_vision,
)
from tests.device.test_camera import SyntheticCamera, _camera
from tests.fusion.test_fusion_forwarder import FakeReporting

CODES = [
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
]


class RefusingFusion(FakeFusion):
    """A fake fusion that, while ``refuse`` is set, ends every Ingest stream with that
    status after its first batch (as fusion does for a lane on the wrong shard)."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: grpc.StatusCode | None = None
        self.refused = 0

    async def Ingest(self, request_iterator, context):
        async for response in super().Ingest(_refusing(self, request_iterator, context), context):
            yield response


async def _refusing(fake, request_iterator, context):
    """The requests, until fake.refuse is set: then the stream ends with that status."""
    async for request in request_iterator:
        if fake.refuse is not None:
            fake.refused += 1
            await context.abort(fake.refuse, "refused by the test")
        yield request


def _pos_item(line: int) -> events_pb2.LaneEvent:
    money = common_pb2.Money(amount_minor=100 + line, currency_code="USD")
    event = events_pb2.LaneEvent(event_id=str(uuid.uuid4()), transaction_id="tx-1")
    item = event.item_added
    item.line_id, item.gtin, item.quantity = str(line), "00012345678905", 1
    item.unit_price.CopyFrom(money)
    item.extended_price.CopyFrom(money)
    return event


async def _link_state(stub) -> int:
    status = await stub.GetDeviceStatus(device_pb2.GetDeviceStatusRequest(), timeout=5)
    [link] = [p for p in status.peripherals if p.device_id == "fusion-ingest"]
    return link.state


@pytest.mark.parametrize("code", CODES, ids=[c.name for c in CODES])
async def test_fusion_link_reconnects_after_any_stream_error(tmp_path, code):
    fusion = RefusingFusion()
    server = await start_fake_fusion(fusion)
    agent_server = await start_agent(agent_config(tmp_path, fusion=f"127.0.0.1:{server.port}"))
    agent = agent_server.app.agent
    key = ("store-7", "lane-3")
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{agent_server.port}")
    stub = device_pb2_grpc.DeviceServiceStub(channel)
    connected = events_pb2.PERIPHERAL_STATE_CONNECTED

    async def submit(lines: range) -> None:
        events = [_pos_item(n) for n in lines]
        await stub.SubmitPosEvents(device_pb2.SubmitPosEventsRequest(events=events), timeout=10)

    try:
        await submit(range(1, 6))
        await assert_eventually(lambda: fusion.acked.get(key) == agent.outbox.last_sequence)
        assert await _link_state(stub) == connected

        fusion.refuse = code
        await submit(range(6, 11))
        await assert_eventually(lambda: fusion.refused >= 1)
        refused = fusion.refused
        await assert_eventually(lambda: fusion.refused >= refused + 2)  # it keeps retrying
        assert await _link_state(stub) != connected  # and says it is not connected
        assert agent.fusion_link is not None and not agent.fusion_link.connected

        fusion.refuse = None
        await submit(range(11, 16))
        await assert_eventually(
            lambda: fusion.acked.get(key) == agent.outbox.last_sequence and not agent.outbox.pending
        )
        assert await _link_state(stub) == connected
        sequences = [e.sequence for e in fusion.accepted if e.HasField("item_added")]
        assert sequences == sorted(set(sequences)) and len(sequences) == 15
    finally:
        await channel.close()
        await agent_server.stop()
        await server.stop()


class RefusingReporting(FakeReporting):
    """A fake reporting that ends IngestRecords with ``refuse`` while it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: grpc.StatusCode | None = None
        self.refused = 0

    async def IngestRecords(self, request_iterator, context):
        requests = _refusing(self, request_iterator, context)
        async for response in super().IngestRecords(requests, context):
            yield response


@pytest.mark.parametrize("code", CODES, ids=[c.name for c in CODES])
async def test_reporting_forwarder_reconnects_after_any_stream_error(tmp_path, code):
    fake = RefusingReporting()
    fake.refuse = code
    server, _, port = await _start(fake)
    config = load_config(None, environ={"LANESIGHT_PEERS__REPORTING": f"127.0.0.1:{port}"})
    forwarder = ReportingForwarder(config, outbox_path=tmp_path / "forward.sqlite")
    await forwarder.start()
    try:
        forwarder.add_alert(alerts_pb2.Alert(alert_id="a1", revision=1))
        await assert_eventually(lambda: fake.refused >= 3)
        assert not forwarder.connected
        fake.refuse = None
        forwarder.add_alert(alerts_pb2.Alert(alert_id="a1", revision=2))
        await assert_eventually(lambda: forwarder.pending == 0 and forwarder.connected)
        assert sorted(a.revision for a in fake.alerts) == [1, 2]
    finally:
        await forwarder.stop()
        await server.stop(0)


async def _start(fake: FakeReporting) -> tuple[grpc.aio.Server, FakeReporting, int]:
    server = grpc.aio.server()
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, fake, port


class RefusingVision(FakeVision):
    """A fake vision that ends Analyze with ``refuse`` while it is set."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: grpc.StatusCode | None = None
        self.refused = 0

    async def Analyze(self, request_iterator, context):
        async for response in super().Analyze(_refusing(self, request_iterator, context), context):
            yield response


@pytest.mark.parametrize("code", CODES, ids=[c.name for c in CODES])
async def test_vision_link_reconnects_after_any_stream_error(tmp_path, code):
    vision = RefusingVision()
    vision.refuse = code
    server = await start_fake_vision(vision)
    camera = SyntheticCamera()
    camera.moving = True
    config = agent_config(
        tmp_path,
        vision=f"127.0.0.1:{server.port}",
        cameras=[_camera(keyframe_interval_s=0.2, max_fps=30)],
    )
    agent_server = await start_agent(config, frame_sources={"cam-1": camera})
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{agent_server.port}")
    stub = device_pb2_grpc.DeviceServiceStub(channel)
    connected = events_pb2.PERIPHERAL_STATE_CONNECTED

    async def link_state() -> int:
        status = await stub.GetDeviceStatus(device_pb2.GetDeviceStatusRequest(), timeout=5)
        [link] = [p for p in status.peripherals if p.device_id == "vision:cam-1"]
        return link.state

    try:
        await assert_eventually(lambda: vision.refused >= 3)  # it keeps retrying
        assert await link_state() != connected  # and says it is not connected
        vision.refuse = None
        frames = len(vision.frames)
        await assert_eventually(lambda: len(vision.frames) > frames + 3)

        async def is_connected() -> bool:
            return await link_state() == connected

        await assert_eventually(is_connected)
    finally:
        await channel.close()
        await agent_server.stop()
        await server.stop()
