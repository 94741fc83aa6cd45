"""DeviceService over a real gRPC server on port 0: POS ingress, status, lane commands."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from lanesight.device.config import OutboxConfig
from lanesight.simulation.devices import LaneSimulators
from lanesight.v1 import (
    alerts_pb2,
    common_pb2,
    device_pb2,
    device_pb2_grpc,
    events_pb2,
)

from tests.conftest import assert_eventually
from tests.device.conftest import agent_config, start_agent, start_fake_fusion


def usd(minor: int) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=minor, currency_code="USD")


def item_added(transaction_id: str = "tx-1", event_id: str = "", **fields) -> events_pb2.LaneEvent:
    item = events_pb2.ItemAdded(
        line_id="1",
        gtin="00012345678905",
        description="Soup",
        quantity=1,
        unit_price=usd(199),
        extended_price=usd(199),
        entry_method=events_pb2.ENTRY_METHOD_SCANNED,
    )
    for name, value in fields.items():
        if isinstance(value, common_pb2.Money):
            getattr(item, name).CopyFrom(value)
        else:
            setattr(item, name, value)
    return events_pb2.LaneEvent(
        event_id=event_id or str(uuid.uuid4()), transaction_id=transaction_id, item_added=item
    )


@pytest.fixture
async def agent(tmp_path):
    config = agent_config(tmp_path)
    running = await start_agent(config)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        yield running, device_pb2_grpc.DeviceServiceStub(channel)
    finally:
        await channel.close()
        await running.stop()


async def _invalid(stub, *events) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.SubmitPosEvents(device_pb2.SubmitPosEventsRequest(events=events), timeout=5)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    return info.value.details()


async def test_submit_pos_events_stamps_and_returns_sequences(agent):
    running, stub = agent
    started = events_pb2.LaneEvent(event_id="e-1", transaction_id="tx-1")
    started.transaction_started.operator_id = "op-4"
    reply = await stub.SubmitPosEvents(
        device_pb2.SubmitPosEventsRequest(events=[started, item_added(event_id="e-2")]), timeout=5
    )
    assert list(reply.event_ids) == ["e-1", "e-2"]
    assert list(reply.sequences) == [1, 2]
    agent_ = running.app.agent
    rows = await agent_.outbox.read_after(0, 10)
    stored = [events_pb2.LaneEvent.FromString(row.payload) for row in rows]
    assert [(e.store_id, e.lane_id, e.sequence, e.source_device_id) for e in stored] == [
        ("store-7", "lane-3", 1, "pos"),
        ("store-7", "lane-3", 2, "pos"),
    ]
    assert stored[1].item_added.unit_price.amount_minor == 199


async def test_submit_is_idempotent_by_event_id(agent):
    running, stub = agent
    first = await stub.SubmitPosEvents(
        device_pb2.SubmitPosEventsRequest(events=[item_added(event_id="same")]), timeout=5
    )
    again = await stub.SubmitPosEvents(
        device_pb2.SubmitPosEventsRequest(
            events=[item_added(event_id="same"), item_added(event_id="new")]
        ),
        timeout=5,
    )
    assert list(first.sequences) == [1]
    assert list(again.sequences) == [1, 2]
    assert running.app.agent.outbox.last_sequence == 2


async def test_agent_overwrites_what_the_pos_must_not_stamp(agent):
    running, stub = agent
    event = item_added()
    event.store_id, event.lane_id, event.sequence = "other-store", "lane-99", 12345
    reply = await stub.SubmitPosEvents(device_pb2.SubmitPosEventsRequest(events=[event]), timeout=5)
    assert list(reply.sequences) == [1]
    (row,) = await running.app.agent.outbox.read_after(0, 10)
    stored = events_pb2.LaneEvent.FromString(row.payload)
    assert (stored.store_id, stored.lane_id, stored.sequence) == ("store-7", "lane-3", 1)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (events_pb2.LaneEvent(), "events[0].payload"),
        (
            events_pb2.LaneEvent(barcode_read=events_pb2.BarcodeRead(raw_data="1")),
            "events[0].barcode_read",
        ),
        (item_added(transaction_id=""), "events[0].transaction_id"),
        (item_added(gtin="00012345678906"), "events[0].item_added.gtin"),
        (item_added(gtin="", plu=""), "events[0].item_added.gtin"),
        (item_added(gtin="", plu="84011"), "events[0].item_added.plu"),
        (item_added(quantity=0), "events[0].item_added.quantity"),
        (item_added(line_id=""), "events[0].item_added.line_id"),
        (
            item_added(unit_price=common_pb2.Money(amount_minor=1, currency_code="usd")),
            "events[0].item_added.unit_price.currency_code",
        ),
        (
            item_added(unit_of_measure=common_pb2.UNIT_OF_MEASURE_KILOGRAM),
            "events[0].item_added.weight_mg",
        ),
        (
            events_pb2.LaneEvent(
                transaction_id="t",
                refund_issued=events_pb2.RefundIssued(amount=usd(-5)),
            ),
            "events[0].refund_issued.amount.amount_minor",
        ),
        (
            events_pb2.LaneEvent(
                transaction_id="t", tender_completed=events_pb2.TenderCompleted(amount=usd(5))
            ),
            "events[0].tender_completed.tender_type",
        ),
        (
            events_pb2.LaneEvent(transaction_id="t", tender_started=events_pb2.TenderStarted()),
            "events[0].tender_started.total",
        ),
    ],
)
async def test_invalid_pos_events_name_the_field(agent, event, field):
    _, stub = agent
    details = await _invalid(stub, event)
    assert details.startswith(field + ":"), details


async def test_one_bad_event_rejects_the_whole_request(agent):
    running, stub = agent
    details = await _invalid(stub, item_added(), item_added(quantity=-1))
    assert details.startswith("events[1].item_added.quantity")
    assert running.app.agent.outbox.last_sequence == 0
    assert (await _invalid(stub)).startswith("events:")


async def test_operator_sign_on_needs_no_transaction(agent):
    _, stub = agent
    event = events_pb2.LaneEvent(operator_sign_on=events_pb2.OperatorSignOn(operator_id="9"))
    reply = await stub.SubmitPosEvents(device_pb2.SubmitPosEventsRequest(events=[event]), timeout=5)
    assert len(reply.event_ids[0]) == 36  # the agent gave it an id


async def test_status_commands_and_watchers(agent):
    running, stub = agent
    watch = stub.WatchLaneCommands(device_pb2.WatchLaneCommandsRequest())
    await assert_eventually(lambda: running.app.agent.commands.subscriber_count == 1)
    pause = alerts_pb2.LaneCommand(command_id="c-1", lane_id="lane-3")
    pause.pause.reason = "please wait for an attendant"
    reply = await stub.ExecuteLaneCommand(
        device_pb2.ExecuteLaneCommandRequest(command=pause), timeout=5
    )
    assert reply.done
    status = await stub.GetDeviceStatus(device_pb2.GetDeviceStatusRequest(), timeout=5)
    assert status.paused and status.lane.lane_id == "lane-3" and status.lane.store_id == "store-7"
    seen = await asyncio.wait_for(watch.read(), 5)
    assert seen.command.command_id == "c-1" and seen.command.pause.reason
    # The same command again is not carried out twice.
    again = await stub.ExecuteLaneCommand(
        device_pb2.ExecuteLaneCommandRequest(command=pause), timeout=5
    )
    assert again.done and again.detail == "already carried out"
    resume = alerts_pb2.LaneCommand(command_id="c-2", resume=alerts_pb2.ResumeLane())
    await stub.ExecuteLaneCommand(device_pb2.ExecuteLaneCommandRequest(command=resume), timeout=5)
    assert (await asyncio.wait_for(watch.read(), 5)).command.command_id == "c-2"
    status = await stub.GetDeviceStatus(device_pb2.GetDeviceStatusRequest(), timeout=5)
    assert not status.paused
    # Without a printer an audit slip cannot be printed, and says so.
    slip = alerts_pb2.LaneCommand(command_id="c-3")
    slip.print_audit_slip.lines.append("x")
    reply = await stub.ExecuteLaneCommand(
        device_pb2.ExecuteLaneCommandRequest(command=slip), timeout=5
    )
    assert not reply.done and "no printer" in reply.detail
    other_lane = alerts_pb2.LaneCommand(command_id="c-4", lane_id="lane-9")
    other_lane.prompt.message = "hello"
    reply = await stub.ExecuteLaneCommand(
        device_pb2.ExecuteLaneCommandRequest(command=other_lane), timeout=5
    )
    assert not reply.done
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ExecuteLaneCommand(
            device_pb2.ExecuteLaneCommandRequest(command=alerts_pb2.LaneCommand()), timeout=5
        )
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    watch.cancel()


async def test_agent_with_simulators_prints_slips_and_kicks_the_drawer_from_fusion(tmp_path):
    """Commands watched from fusion are carried out once each, and peripherals show in status."""
    from tests.device.conftest import FakeFusion

    fusion = FakeFusion()
    fusion_server = await start_fake_fusion(fusion)
    sims = await LaneSimulators.start(scanner="pty", scales=[], printer="socket")
    config = agent_config(
        tmp_path,
        fusion=f"127.0.0.1:{fusion_server.port}",
        fusion_commands=True,
        peripherals=sims.peripherals(),
    )
    running = await start_agent(config)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    stub = device_pb2_grpc.DeviceServiceStub(channel)
    try:
        await assert_eventually(lambda: fusion.watchers == 1)
        request = fusion.watch_requests[0]
        assert list(request.store_ids) == ["store-7"] and list(request.lane_ids) == ["lane-3"]
        assert request.include_commands
        printer = sims.printer
        await assert_eventually(lambda: printer.status_queries > 0)
        slip = alerts_pb2.LaneCommand(command_id="k-1", lane_id="lane-3", alert_id="a-17")
        slip.print_audit_slip.lines.extend(["Lane 3", "Please check the bagging area"])
        kick = alerts_pb2.LaneCommand(command_id="k-2", lane_id="lane-3")
        kick.kick_drawer.pin = 2
        for command in (slip, kick, slip):  # the repeat is ignored
            fusion.send_command(command)
        await assert_eventually(lambda: printer.documents == 1 and printer.drawer_kicks)
        assert "Please check the bagging area" in printer.printed_text()
        assert "a-17" in printer.printed_text()
        await assert_eventually(lambda: running.app.agent.command_watcher.commands_received == 3)
        assert printer.documents == 1 and len(printer.drawer_kicks) == 1
        # Each command received is acknowledged back to fusion, the repeat too.
        await assert_eventually(lambda: len(fusion.command_acks) == 3)
        acks = [(a.command_id, a.lane_id, a.store_id, a.done) for a in fusion.command_acks]
        assert sorted(acks) == [
            ("k-1", "lane-3", "store-7", True),
            ("k-1", "lane-3", "store-7", True),
            ("k-2", "lane-3", "store-7", True),
        ]
        status = await stub.GetDeviceStatus(device_pb2.GetDeviceStatusRequest(), timeout=5)
        states = {p.device_id: p for p in status.peripherals}
        assert states["printer-1"].kind == common_pb2.DEVICE_KIND_PRINTER
        assert states["printer-1"].state == events_pb2.PERIPHERAL_STATE_CONNECTED
        assert states["drawer-1"].kind == common_pb2.DEVICE_KIND_CASH_DRAWER
        assert states["scanner-1"].address.startswith("/dev/pts/")
        assert states["fusion-commands"].state == events_pb2.PERIPHERAL_STATE_CONNECTED
        # The printed slip became a lane event and went to fusion.
        await assert_eventually(lambda: any(e.HasField("receipt_printed") for e in fusion.accepted))
        await assert_eventually(
            lambda: any(
                e.HasField("drawer_state_changed")
                and e.drawer_state_changed.state == events_pb2.DRAWER_STATE_OPEN
                for e in fusion.accepted
            )
        )
    finally:
        await channel.close()
        await running.stop()
        await sims.stop()
        await fusion_server.stop()


async def test_a_full_outbox_refuses_pos_events_instead_of_dropping_accepted_ones(tmp_path):
    # No fusion link: nothing is acknowledged, so the outbox fills up.
    outbox = OutboxConfig(path=str(tmp_path / "outbox.db"), synchronous="normal", max_events=10)
    running = await start_agent(agent_config(tmp_path, outbox=outbox))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = device_pb2_grpc.DeviceServiceStub(channel)
            accepted = [item_added(event_id=f"ok-{i}") for i in range(10)]
            reply = await stub.SubmitPosEvents(
                device_pb2.SubmitPosEventsRequest(events=accepted), timeout=5
            )
            assert list(reply.sequences) == list(range(1, 11))
            with pytest.raises(grpc.aio.AioRpcError) as full:
                await stub.SubmitPosEvents(
                    device_pb2.SubmitPosEventsRequest(events=[item_added(event_id="late")]),
                    timeout=5,
                )
            assert full.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "outbox full" in full.value.details()
            # A resend of what was accepted is still answered (idempotent by id).
            again = await stub.SubmitPosEvents(
                device_pb2.SubmitPosEventsRequest(events=accepted[:2]), timeout=5
            )
            assert list(again.sequences) == [1, 2]
        agent = running.app.agent
        rows = await agent.outbox.read_after(0, 100)
        stored = [events_pb2.LaneEvent.FromString(row.payload).event_id for row in rows]
        assert stored == [f"ok-{i}" for i in range(10)] and agent.outbox.dropped == 0
    finally:
        await running.stop()
