"""The link to fusion: kill fusion in the middle of a busy lane; nothing is lost or repeated."""

from __future__ import annotations

import asyncio
import uuid

import grpc
from lanesight.simulation.devices import LaneSimulators, ScaleSpec
from lanesight.v1 import common_pb2, device_pb2, device_pb2_grpc, events_pb2

from tests.conftest import assert_eventually
from tests.device.conftest import FakeFusion, agent_config, start_agent, start_fake_fusion


def _item(transaction_id: str, line: int) -> events_pb2.LaneEvent:
    money = common_pb2.Money(amount_minor=100 + line, currency_code="USD")
    event = events_pb2.LaneEvent(event_id=str(uuid.uuid4()), transaction_id=transaction_id)
    item = event.item_added
    item.line_id, item.gtin, item.quantity = str(line), "00012345678905", 1
    item.unit_price.CopyFrom(money)
    item.extended_price.CopyFrom(money)
    return event


async def test_kill_fusion_mid_lane_every_event_arrives_once_in_order(tmp_path):
    fusion = FakeFusion()
    server = await start_fake_fusion(fusion)
    port = server.port
    sims = await LaneSimulators.start(
        scanner="pty", scales=[ScaleSpec("scale-bagging", "8217")], printer=None
    )
    config = agent_config(
        tmp_path,
        fusion=f"127.0.0.1:{port}",
        peripherals=sims.peripherals(),
        outbox={"path": str(tmp_path / "outbox.db"), "batch_max_events": 25},
    )
    agent_server = await start_agent(config)
    agent = agent_server.app.agent
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{agent_server.port}")
    stub = device_pb2_grpc.DeviceServiceStub(channel)
    submitted: list[str] = []
    busy_done = asyncio.Event()

    async def busy_lane() -> None:
        """POS items, scans and bagging weights as fast as a busy lane, and then some."""
        for line in range(1, 241):
            event = _item("tx-1", line)
            reply = await stub.SubmitPosEvents(
                device_pb2.SubmitPosEventsRequest(events=[event]), timeout=10
            )
            submitted.append(reply.event_ids[0])
            if line % 4 == 0:
                await sims.scanner.scan("]E00012345678905")
            if line % 6 == 0:
                sims.scale("scale-bagging").set_weight(line * 1000)
            await asyncio.sleep(0.004)
        busy_done.set()

    try:
        await assert_eventually(lambda: fusion.acked)  # the link is up and acking
        lane = asyncio.create_task(busy_lane())
        await assert_eventually(lambda: len(submitted) >= 60)
        await server.stop()  # fusion dies mid-transaction
        accepted_at_kill = len(fusion.accepted)
        await assert_eventually(lambda: not agent.fusion_link.connected)
        await assert_eventually(lambda: len(submitted) >= 140)  # the lane keeps going
        assert agent.outbox.pending > 0
        server = await start_fake_fusion(fusion, port)  # fusion is back on the same port
        await asyncio.wait_for(busy_done.wait(), 60)
        await lane
        key = ("store-7", "lane-3")
        await assert_eventually(
            lambda: (
                fusion.acked.get(key) == agent.outbox.last_sequence and agent.outbox.pending == 0
            ),
            20,
        )
        last = agent.outbox.last_sequence

        sequences = [event.sequence for event in fusion.accepted]
        assert sequences == list(range(1, last + 1)), "every event once, in order"
        assert not fusion.gaps
        assert accepted_at_kill < last - 80, "fusion was down for a good part of the lane"
        ids = [event.event_id for event in fusion.accepted]
        assert len(set(ids)) == len(ids)
        pos_ids = {e.event_id for e in fusion.accepted if e.HasField("item_added")}
        assert pos_ids == set(submitted) and len(submitted) == 240
        scans = [e for e in fusion.accepted if e.HasField("barcode_read")]
        assert len(scans) == 60 and all(e.transaction_id == "tx-1" for e in scans)
        assert any(e.HasField("scale_reading") for e in fusion.accepted)
        # The outage is on record as fusion link health events, in the same stream.
        link_states = [
            e.peripheral_health_changed.state
            for e in fusion.accepted
            if e.HasField("peripheral_health_changed")
            and e.peripheral_health_changed.device_id == "fusion-ingest"
        ]
        assert link_states == [
            events_pb2.PERIPHERAL_STATE_CONNECTED,
            events_pb2.PERIPHERAL_STATE_DISCONNECTED,
            events_pb2.PERIPHERAL_STATE_CONNECTED,
        ]
        assert fusion.streams >= 2
        status = await stub.GetDeviceStatus(device_pb2.GetDeviceStatusRequest(), timeout=5)
        assert status.acked_sequence == status.last_sequence == last
        assert status.outbox_pending == 0 and status.outbox_dropped == 0
    finally:
        await channel.close()
        await agent_server.stop()
        await sims.stop()
        await server.stop()


async def test_agent_restart_resends_unacked_events_and_keeps_counting(tmp_path):
    """Events recorded while fusion is away survive an agent restart and go out after it."""
    config = agent_config(tmp_path, fusion="127.0.0.1:1")  # nothing listens there
    first = await start_agent(config)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{first.port}")
    stub = device_pb2_grpc.DeviceServiceStub(channel)
    events = [_item("tx-2", line) for line in range(1, 6)]
    first_reply = await stub.SubmitPosEvents(
        device_pb2.SubmitPosEventsRequest(events=events), timeout=5
    )
    await channel.close()
    await first.stop()

    fusion = FakeFusion()
    server = await start_fake_fusion(fusion)
    second = await start_agent(agent_config(tmp_path, fusion=f"127.0.0.1:{server.port}"))
    try:
        agent = second.app.agent
        await assert_eventually(lambda: agent.outbox.pending == 0 and fusion.accepted)
        item_ids = [e.event_id for e in fusion.accepted if e.HasField("item_added")]
        assert item_ids == [e.event_id for e in events]
        assert [e.sequence for e in fusion.accepted] == list(range(1, len(fusion.accepted) + 1))
        # Resubmitting after the restart is still recognised.
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{second.port}")
        stub = device_pb2_grpc.DeviceServiceStub(channel)
        reply = await stub.SubmitPosEvents(
            device_pb2.SubmitPosEventsRequest(events=events[:1]), timeout=5
        )
        assert list(reply.sequences) == list(first_reply.sequences[:1])
        assert agent.outbox.last_sequence > first_reply.sequences[-1]  # counting went on
        await channel.close()
    finally:
        await second.stop()
        await server.stop()


async def test_against_the_real_fusion_service_when_it_is_built(tmp_path, monkeypatch):
    """The agent against services/fusion (skipped while fusion answers UNIMPLEMENTED)."""
    import pytest
    from lanesight.common.config import LanesightConfig, ServerConfig
    from lanesight.common.server import start_server
    from lanesight.fusion.app import create_app as create_fusion
    from lanesight.v1 import fusion_pb2, fusion_pb2_grpc

    monkeypatch.chdir(tmp_path)  # fusion's relative default paths land here
    fusion_config = LanesightConfig(server=ServerConfig(grace_s=0.2))
    fusion = await start_server(create_fusion(fusion_config), fusion_config, 0)
    agent_server = await start_agent(agent_config(tmp_path, fusion=f"127.0.0.1:{fusion.port}"))
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{fusion.port}")
    try:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        lane = common_pb2.LaneRef(store_id="store-7", lane_id="lane-3")
        try:
            await stub.GetLaneState(fusion_pb2.GetLaneStateRequest(lane=lane), timeout=5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.UNIMPLEMENTED:
                pytest.skip("fusion is not implemented yet")
        started = events_pb2.LaneEvent(event_id=str(uuid.uuid4()), transaction_id="tx-real")
        started.transaction_started.operator_id = "op-1"
        agent = agent_server.app.agent
        await agent.submit_pos_events([started, _item("tx-real", 1)])
        await assert_eventually(
            lambda: agent.outbox.acked_sequence == agent.outbox.last_sequence >= 2, 15
        )
        reply = await stub.GetLaneState(fusion_pb2.GetLaneStateRequest(lane=lane), timeout=5)
        assert reply.state.transaction_id == "tx-real"
        assert reply.state.last_sequence == agent.outbox.last_sequence
    finally:
        await channel.close()
        await agent_server.stop()
        await fusion.stop()
