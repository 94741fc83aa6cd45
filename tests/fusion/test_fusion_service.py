"""FusionService over a real gRPC server on port 0."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from lanesight.common.config import load_config
from lanesight.common.server import start_server
from lanesight.fusion.app import create_app
from lanesight.fusion.convert import catalog_item_to_pb, event_to_pb
from lanesight.fusion.sharding import lane_shard
from lanesight.simulation.scenarios.actions import OpenDrawerNoSale
from lanesight.v1 import (
    alerts_pb2,
    catalog_pb2,
    common_pb2,
    events_pb2,
    fusion_pb2,
    fusion_pb2_grpc,
)

from tests.conftest import assert_eventually

from .conftest import script_events
from .scripts import Script
from .test_fusion_engine import _pass_around


def _address(running) -> str:
    return f"127.0.0.1:{running.port}"


async def ingest(stub, messages, batch: int = 10) -> list[fusion_pb2.IngestResponse]:
    call = stub.Ingest()
    responses = []
    for start in range(0, len(messages), batch):
        await call.write(fusion_pb2.IngestRequest(events=messages[start : start + batch]))
        responses.append(await call.read())
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF
    return responses


async def watch(stub, into: list, **request) -> asyncio.Task:
    call = stub.WatchAlerts(fusion_pb2.WatchAlertsRequest(**request))
    await asyncio.wait_for(call.initial_metadata(), 5)

    async def follow():
        async for message in call:
            into.append(message)

    task = asyncio.create_task(follow())
    task.call = call  # type: ignore[attr-defined]
    return task


def _pb(events):
    return [event_to_pb(e) for e in events]


async def test_ingest_acks_by_sequence_and_ignores_a_resend(fusion_server, demo):
    messages = _pb(_pass_around(demo).pay(wait_ms=8000).finish().events())
    async with grpc.aio.insecure_channel(_address(fusion_server)) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        first = await ingest(stub, messages)
        assert [r.acked_sequence for r in first][-1] == messages[-1].sequence
        assert all(r.store_id == "store-1" and r.lane_id == "lane-1" for r in first)
        assert sum(r.duplicates for r in first) == 0
        resent = await ingest(stub, messages[-15:], batch=15)  # after a reconnect
        assert resent[0].duplicates == 15
        assert resent[0].acked_sequence == messages[-1].sequence


async def test_invalid_stream_is_invalid_argument_naming_the_field(fusion_server, demo):
    messages = _pb(Script().events())
    other = _pb(Script(lane="lane-2").events())
    async with grpc.aio.insecure_channel(_address(fusion_server)) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as two_lanes:
            await ingest(stub, [messages[0], other[1]])
        assert two_lanes.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "events[1].lane_id" in two_lanes.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as backwards:
            await ingest(stub, [messages[1], messages[0]])
        assert "events[1].sequence" in backwards.value.details()


async def test_poison_events_are_refused_at_the_first_hop_and_never_block_the_lane(fusion_server):
    """A scanner parse error converts (it once raised KeyError and blocked the outbox); an
    event from the year 33658 is rejected and acked; a sequence of 2^63 or more is refused."""
    messages = _pb(Script().events())
    parse_error = events_pb2.LaneEvent()
    parse_error.CopyFrom(messages[1])
    parse_error.peripheral_parse_error.CopyFrom(
        events_pb2.PeripheralParseError(device_id="scanner-1", offset=7, raw_hex="ff", reason="x")
    )
    far_future = messages[2]
    far_future.lane_time.seconds = 10**12
    async with grpc.aio.insecure_channel(_address(fusion_server)) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        [response] = await ingest(
            stub, [messages[0], parse_error, *messages[2:]], batch=len(messages)
        )
        assert [(r.sequence, r.field) for r in response.rejections] == [
            (far_future.sequence, "lane_time")
        ]
        assert response.acked_sequence == messages[-1].sequence
        huge = events_pb2.LaneEvent()
        huge.CopyFrom(messages[-1])
        huge.sequence = 2**64 - 1
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ingest(stub, [huge])
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.details().startswith("events[0].sequence:")
        long_store = events_pb2.LaneEvent()
        long_store.CopyFrom(messages[0])
        long_store.store_id = "s" * 3_000_000  # kept as a lane key for as long as fusion runs
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ingest(stub, [long_store])
        assert refused.value.details().startswith("events[0].store_id:")


async def test_invalid_events_come_back_as_rejections_and_are_acked(fusion_server):
    messages = _pb(Script().events())
    bad = messages[2]
    bad.ClearField("lane_time")
    async with grpc.aio.insecure_channel(_address(fusion_server)) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        [response] = await ingest(stub, messages, batch=len(messages))
        assert [(r.sequence, r.field) for r in response.rejections] == [(bad.sequence, "lane_time")]
        assert response.acked_sequence == messages[-1].sequence
        state = await stub.GetLaneState(
            fusion_pb2.GetLaneStateRequest(
                lane=common_pb2.LaneRef(store_id="store-1", lane_id="lane-1")
            ),
            timeout=5,
        )
        assert state.state.data_quality_issues == 1


async def test_watch_filters_by_lane_type_and_severity(fusion_server, demo):
    async with grpc.aio.insecure_channel(_address(fusion_server)) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        lane1, lane2, high, pos, commands = [], [], [], [], []
        tasks = [
            await watch(stub, lane1, lane_ids=["lane-1"]),
            await watch(stub, lane2, lane_ids=["lane-2"]),
            await watch(stub, high, min_severity=alerts_pb2.SEVERITY_HIGH),
            await watch(stub, pos, types=[alerts_pb2.ALERT_TYPE_POS_EXCEPTION]),
            await watch(stub, commands, include_commands=True, include_updates=True),
        ]
        await ingest(stub, _pb(_pass_around(demo).pay(wait_ms=8000).events()))
        await ingest(
            stub,
            _pb(
                script_events(
                    [(0, OpenDrawerNoSale("op-1"))], lane_id="lane-2", transaction_id="NS1"
                )
            ),
        )
        await assert_eventually(lambda: len(lane1) == 1 and len(lane2) == 1)
        await assert_eventually(lambda: any(m.HasField("command") for m in commands))
        assert lane1[0].alert.lane_id == "lane-1"
        assert lane2[0].alert.type == alerts_pb2.ALERT_TYPE_POS_EXCEPTION
        assert [m.alert.lane_id for m in pos] == ["lane-2"]
        assert all(m.alert.severity == alerts_pb2.SEVERITY_HIGH for m in high)
        assert not any(m.HasField("command") for m in lane1 + lane2 + pos)
        prompt = next(m.command for m in commands if m.HasField("command"))
        assert prompt.prompt.message and prompt.lane_id == "lane-1"
        for task in tasks:
            task.call.cancel()


async def test_slow_watcher_gets_a_gap_and_never_slows_ingest(tmp_path):
    config = load_config(
        None,
        environ={
            "LANESIGHT_FUSION__STORE_PATH": str(tmp_path / "f.sqlite"),
            "LANESIGHT_FUSION__FORWARD_TO_REPORTING": "false",
            "LANESIGHT_FUSION__WATCH_BUFFER": "8",
        },
    )
    running = await start_server(create_app(config), config, port=0)
    try:
        async with grpc.aio.insecure_channel(_address(running)) as channel:
            stub = fusion_pb2_grpc.FusionServiceStub(channel)
            slow = stub.WatchAlerts(fusion_pb2.WatchAlertsRequest())
            await asyncio.wait_for(slow.initial_metadata(), 5)
            total = 3000
            actions = [(i * 1000, OpenDrawerNoSale("op-1")) for i in range(total // 3)]
            # Each no-sale is one alert; the watcher reads nothing meanwhile.
            responses = await asyncio.wait_for(
                ingest(stub, _pb(script_events(actions, transaction_id="")), batch=200), 30
            )
            assert responses[-1].acked_sequence == 3 * (total // 3)
            alerts = missed = 0
            async for message in slow:
                if message.HasField("gap"):
                    missed += message.gap.missed
                else:
                    alerts += 1
                if alerts + missed >= total // 3:
                    break
            assert missed > 0
            assert alerts + missed == total // 3
            slow.cancel()
    finally:
        await running.stop()


async def test_acknowledge_and_resolve(fusion_server, demo):
    async with grpc.aio.insecure_channel(_address(fusion_server)) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        seen: list = []
        task = await watch(stub, seen)
        await ingest(stub, _pb(_pass_around(demo).pay(wait_ms=8000).events()))
        await assert_eventually(lambda: seen)
        alert_id = seen[0].alert.alert_id
        with pytest.raises(grpc.aio.AioRpcError) as unspecified:
            await stub.ResolveAlert(fusion_pb2.ResolveAlertRequest(alert_id=alert_id), timeout=5)
        assert unspecified.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "disposition" in unspecified.value.details()
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.ResolveAlert(
                fusion_pb2.ResolveAlertRequest(
                    alert_id="nope", disposition=alerts_pb2.DISPOSITION_FALSE_ALERT
                ),
                timeout=5,
            )
        assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
        acked = await stub.AcknowledgeAlert(
            fusion_pb2.AcknowledgeAlertRequest(alert_id=alert_id, attendant_id="att-1"), timeout=5
        )
        assert acked.alert.state == alerts_pb2.ALERT_STATE_ACKNOWLEDGED
        done = await stub.ResolveAlert(
            fusion_pb2.ResolveAlertRequest(
                alert_id=alert_id,
                disposition=alerts_pb2.DISPOSITION_RECOVERED,
                attendant_id="att-1",
                amount_recovered=common_pb2.Money(amount_minor=429, currency_code="USD"),
            ),
            timeout=5,
        )
        assert done.alert.state == alerts_pb2.ALERT_STATE_RESOLVED
        assert done.alert.amount_recovered.amount_minor == 429
        assert done.alert.revision > seen[0].alert.revision
        task.call.cancel()


async def test_lane_state(fusion_server, demo):
    s = Script()
    s.scan(demo["Arla-Medium-Fat-Milk"], weight_mg=1_066_000)
    s.scan(demo["Valio-Vanilla-Yoghurt"], bag=False)
    s.pay()
    async with grpc.aio.insecure_channel(_address(fusion_server)) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        messages = _pb(s.events())
        await ingest(stub, messages)
        reply = await stub.GetLaneState(
            fusion_pb2.GetLaneStateRequest(
                lane=common_pb2.LaneRef(store_id="store-1", lane_id="lane-1")
            ),
            timeout=5,
        )
        state = reply.state
        assert state.transaction_id == "T1" and state.tendering
        assert [(line.line_id, line.bagged) for line in state.lines] == [("1", True), ("2", False)]
        assert state.bagging_weight_mg == 1_066_000
        assert state.last_sequence == messages[-1].sequence
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.GetLaneState(
                fusion_pb2.GetLaneStateRequest(
                    lane=common_pb2.LaneRef(store_id="store-1", lane_id="x")
                ),
                timeout=5,
            )
        assert unknown.value.code() is grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetLaneState(fusion_pb2.GetLaneStateRequest(), timeout=5)
        assert missing.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "lane.store_id" in missing.value.details()


async def test_catalog_upsert_validates_and_counts(fusion_server, demo):
    milk = catalog_item_to_pb(demo["Arla-Medium-Fat-Milk"])
    new = catalog_pb2.CatalogItem()
    new.CopyFrom(milk)
    new.sku, new.gtins[:] = "NEW-1", ["4006381333931"]
    async with grpc.aio.insecure_channel(_address(fusion_server)) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        reply = await stub.UpsertCatalogItems(
            fusion_pb2.UpsertCatalogItemsRequest(items=[milk, new]), timeout=5
        )
        assert (reply.inserted, reply.updated) == (1, 1)
        for change, field in [
            (lambda m: m.gtins.__setitem__(0, "4006381333932"), "items[0].gtins[0]"),
            (
                lambda m: setattr(m.unit_price, "currency_code", "ZZZ"),
                "items[0].unit_price.currency_code",
            ),
            (lambda m: setattr(m, "max_weight_mg", -5), "items[0].max_weight_mg"),
        ]:
            bad = catalog_pb2.CatalogItem()
            bad.CopyFrom(new)
            change(bad)
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await stub.UpsertCatalogItems(
                    fusion_pb2.UpsertCatalogItemsRequest(items=[bad]), timeout=5
                )
            assert error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert field in error.value.details()


async def test_shutdown_ends_watch_streams(fusion_config):
    running = await start_server(create_app(fusion_config), fusion_config, port=0)
    async with grpc.aio.insecure_channel(_address(running)) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        seen: list = []
        task = await watch(stub, seen)
        await asyncio.wait_for(running.stop(), 10)
        await asyncio.wait_for(task, 10)  # the stream ended instead of hanging
    assert task.done()


async def test_lanes_of_another_replica_are_refused(tmp_path):
    config = load_config(
        None,
        environ={
            "LANESIGHT_FUSION__STORE_PATH": str(tmp_path / "f.sqlite"),
            "LANESIGHT_FUSION__FORWARD_TO_REPORTING": "false",
            "LANESIGHT_FUSION__REPLICA_COUNT": "2",
            "LANESIGHT_FUSION__REPLICA_INDEX": "0",
        },
    )
    running = await start_server(create_app(config), config, port=0)
    lane = next(f"lane-{n}" for n in range(50) if lane_shard("store-1", f"lane-{n}", 2) == 1)
    try:
        async with grpc.aio.insecure_channel(_address(running)) as channel:
            stub = fusion_pb2_grpc.FusionServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await ingest(stub, _pb(Script(lane=lane).events()))
            assert error.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "replica 1" in error.value.details()
    finally:
        await running.stop()


async def test_lanes_acknowledge_commands_and_lane_state_counts_them(fusion_server, demo):
    async with grpc.aio.insecure_channel(_address(fusion_server)) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        commands: list = []
        task = await watch(stub, commands, include_commands=True)
        await ingest(stub, _pb(_pass_around(demo).pay(wait_ms=8000).events()))
        await assert_eventually(lambda: any(m.HasField("command") for m in commands))
        issued = [m.command for m in commands if m.HasField("command")]
        lane = common_pb2.LaneRef(store_id=issued[0].store_id, lane_id=issued[0].lane_id)

        async def lane_state():
            request = fusion_pb2.GetLaneStateRequest(lane=lane)
            return (await stub.GetLaneState(request, timeout=5)).state

        assert (await lane_state()).pending_commands == len(issued)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.AcknowledgeLaneCommand(
                fusion_pb2.AcknowledgeLaneCommandRequest(command_id=issued[0].command_id),
                timeout=5,
            )
        assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "store_id" in info.value.details()
        first = fusion_pb2.AcknowledgeLaneCommandRequest(
            command_id=issued[0].command_id,
            store_id=lane.store_id,
            lane_id=lane.lane_id,
            done=False,
            detail="printer paper out",
        )
        assert (await stub.AcknowledgeLaneCommand(first, timeout=5)).known
        assert not (await stub.AcknowledgeLaneCommand(first, timeout=5)).known  # once only
        state = await lane_state()
        assert state.pending_commands == len(issued) - 1
        assert state.failed_commands == 1
        task.call.cancel()
