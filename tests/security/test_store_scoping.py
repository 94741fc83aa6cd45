"""Store scoping in the real servicers: a token for store A cannot watch, resolve or report
on store B (PERMISSION_DENIED), and an "every store" request is narrowed to the caller's.

Each test runs a real service app (``create_app``) through ``start_server`` on port 0 with
``auth.enabled``; clients are plaintext loopback channels that send the bearer token through
``bearer_token_interceptors`` (TLS itself is covered by test_tls.py and test_tokens.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from lanesight.common.auth import bearer_token_interceptors, hash_token
from lanesight.common.config import AuthConfig, LanesightConfig, ServerConfig
from lanesight.common.server import start_server
from lanesight.device.app import create_app as create_device
from lanesight.fusion.app import create_app as create_fusion
from lanesight.fusion.catalog import DEMO_CATALOG, load_catalog_file
from lanesight.fusion.config import FusionConfig
from lanesight.fusion.convert import catalog_item_to_pb, event_to_pb
from lanesight.reporting.app import create_app as create_reporting
from lanesight.reporting.config import ReportingConfig
from lanesight.simulation.camera import SyntheticLaneCamera, encode_jpeg
from lanesight.v1 import (
    alerts_pb2,
    common_pb2,
    device_pb2,
    device_pb2_grpc,
    events_pb2,
    fusion_pb2,
    fusion_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
    vision_pb2,
    vision_pb2_grpc,
)
from lanesight.vision.app import create_app as create_vision
from lanesight.vision.config import VisionConfig

from tests.conftest import assert_eventually
from tests.device.conftest import agent_config
from tests.fusion.scripts import Script
from tests.reporting.reporting_builders import T0_MS, alert, as_records
from tests.vision.conftest import GROCERY_DIR

A, B = "store-a", "store-b"
DENIED = grpc.StatusCode.PERMISSION_DENIED

#: name -> (role, stores); each token is "lst_scope_<name>", the tokens file lists digests.
IDENTITIES = {
    "lane-a": ("lane_agent", [A]),
    "lane-b": ("lane_agent", [B]),
    "attendant-a": ("attendant", [A]),
    "manager-a": ("manager", [A]),
    "manager-chain": ("manager", ["*"]),
    "pos-a": ("pos", [A]),
    "pos-b": ("pos", [B]),
    "service-chain": ("service", ["*"]),
    "service-a": ("service", [A]),
}


def secret(name: str) -> str:
    return f"lst_scope_{name}_5f0c2a9e7b1d"


def auth_config(tmp_path: Path) -> AuthConfig:
    """auth.enabled with a tokens file (in tmp_path) listing every test identity."""
    lines = ["tokens:"]
    for name, (role, stores) in IDENTITIES.items():
        store_list = ", ".join(f'"{s}"' for s in stores)
        lines += [
            f"  - name: {name}",
            f"    role: {role}",
            f"    stores: [{store_list}]",
            f"    sha256: {hash_token(secret(name))}",
        ]
    path = tmp_path / "tokens.yaml"
    path.write_text("\n".join(lines) + "\n")
    return AuthConfig(enabled=True, tokens_file=path)


def channel_as(running, name: str) -> grpc.aio.Channel:
    """A loopback channel presenting the named identity's token on every call."""
    return grpc.aio.insecure_channel(
        f"127.0.0.1:{running.port}", interceptors=bearer_token_interceptors(secret(name))
    )


async def code_of(call) -> grpc.StatusCode:
    """The status of a unary call (awaitable) or a server stream (drained)."""
    try:
        if hasattr(call, "__aiter__"):
            async for _ in call:
                pass
        else:
            await call
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


# --- fusion ------------------------------------------------------------------------------


DEMO = {label: item for item in load_catalog_file(DEMO_CATALOG) for label in item.vision_labels}


def unscanned_bagging_gain(store_id: str) -> list[events_pb2.LaneEvent]:
    """A self-checkout where something unscanned lands on the bagging scale: an alert."""
    s = Script()
    s.scan(DEMO["Arla-Medium-Fat-Milk"], weight_mg=1_066_000)
    s.place(905_000, dt_ms=3000)
    s.pay(wait_ms=8000)
    return [event_to_pb(e) for e in s.events(store_id=store_id)]


async def ingest(stub, messages) -> None:
    call = stub.Ingest(timeout=10)
    await call.write(fusion_pb2.IngestRequest(events=messages))
    await call.read()
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF


async def watch(stub, into: list, **request) -> asyncio.Task:
    call = stub.WatchAlerts(fusion_pb2.WatchAlertsRequest(**request))
    await asyncio.wait_for(call.initial_metadata(), 5)

    async def follow():
        async for message in call:
            if message.HasField("alert"):
                into.append(message.alert)

    task = asyncio.create_task(follow())
    task.call = call  # type: ignore[attr-defined]
    return task


def lane(store_id: str) -> fusion_pb2.GetLaneStateRequest:
    return fusion_pb2.GetLaneStateRequest(
        lane=common_pb2.LaneRef(store_id=store_id, lane_id="lane-1")
    )


async def test_fusion_scopes_ingest_watch_resolve_lane_state_and_catalog(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = LanesightConfig(
        store_id=A,
        auth=auth_config(tmp_path),
        fusion=FusionConfig(
            store_path=tmp_path / "fusion.sqlite", forward_to_reporting=False, tick_ms=20
        ),
    )
    running = await start_server(create_fusion(config), config, port=0)
    channels = {name: channel_as(running, name) for name in IDENTITIES}
    stub = {name: fusion_pb2_grpc.FusionServiceStub(ch) for name, ch in channels.items()}
    watches: list[asyncio.Task] = []
    try:
        chain_seen: list = []
        a_seen: list = []  # a store-A manager watching "every store": narrowed to store A
        watches.append(await watch(stub["manager-chain"], chain_seen))
        watches.append(await watch(stub["manager-a"], a_seen))

        # A store-A lane agent feeding store-B events is refused; store B's own agent is not.
        call = stub["lane-a"].Ingest(timeout=10)
        await call.write(fusion_pb2.IngestRequest(events=unscanned_bagging_gain(B)[:3]))
        assert await code_of(call.read()) is DENIED
        await ingest(stub["lane-b"], unscanned_bagging_gain(B))
        b_alert = await assert_eventually(lambda: [a for a in chain_seen if a.store_id == B])
        b_alert = b_alert[0]
        await ingest(stub["lane-a"], unscanned_bagging_gain(A))
        a_alert = (await assert_eventually(lambda: a_seen))[0]
        # Store B's alert was published first: had the filter let it through it would be here.
        assert [a.store_id for a in a_seen] == [A]
        await assert_eventually(lambda: {a.store_id for a in chain_seen} == {A, B})

        attendant = stub["attendant-a"]
        denied_watch = attendant.WatchAlerts(fusion_pb2.WatchAlertsRequest(store_ids=[B]))
        assert await code_of(denied_watch) is DENIED
        mixed = attendant.WatchAlerts(fusion_pb2.WatchAlertsRequest(store_ids=[A, B]))
        assert await code_of(mixed) is DENIED
        own = attendant.WatchAlerts(fusion_pb2.WatchAlertsRequest(store_ids=[A]))
        await asyncio.wait_for(own.initial_metadata(), 5)
        own.cancel()

        false_alert = alerts_pb2.DISPOSITION_FALSE_ALERT
        resolve_b = fusion_pb2.ResolveAlertRequest(
            alert_id=b_alert.alert_id, disposition=false_alert
        )
        assert await code_of(attendant.ResolveAlert(resolve_b, timeout=5)) is DENIED
        ack_b = fusion_pb2.AcknowledgeAlertRequest(alert_id=b_alert.alert_id)
        assert await code_of(attendant.AcknowledgeAlert(ack_b, timeout=5)) is DENIED
        assert running.app.engine.alerts.alerts[b_alert.alert_id].state.name == "OPEN"

        acked = await attendant.AcknowledgeAlert(
            fusion_pb2.AcknowledgeAlertRequest(alert_id=a_alert.alert_id), timeout=5
        )
        assert acked.alert.acknowledged_by == "attendant-a"  # no attendant id: the caller
        done = await attendant.ResolveAlert(
            fusion_pb2.ResolveAlertRequest(
                alert_id=a_alert.alert_id, disposition=false_alert, attendant_id="att-7"
            ),
            timeout=5,
        )
        assert done.alert.state == alerts_pb2.ALERT_STATE_RESOLVED
        # The token's identity, never the request's field; that one is kept as a note.
        assert done.alert.resolved_by == "attendant-a"
        assert "attendant_id: att-7" in done.alert.resolution_note

        assert await code_of(attendant.GetLaneState(lane(B), timeout=5)) is DENIED
        state = await attendant.GetLaneState(lane(A), timeout=5)
        assert state.state.lane.store_id == A

        pos = stub["pos-a"]
        milk = catalog_item_to_pb(DEMO["Arla-Medium-Fat-Milk"])
        for store_id, expected in [(A, grpc.StatusCode.OK), (B, DENIED), ("", DENIED)]:
            upsert = fusion_pb2.UpsertCatalogItemsRequest(store_id=store_id, items=[milk])
            assert await code_of(pos.UpsertCatalogItems(upsert, timeout=5)) is expected, store_id
    finally:
        for task in watches:
            task.call.cancel()
            task.cancel()
        for ch in channels.values():
            await ch.close()
        await running.stop()


# --- reporting ---------------------------------------------------------------------------

POSLOG = '<POSLog xmlns="http://www.nrf-arts.org/IXRetail/namespace/">\n{}</POSLog>\n'.format
TRANSACTION = (
    "<Transaction><RetailStoreID>{store}</RetailStoreID><WorkstationID>2</WorkstationID>"
    "<SequenceNumber>{seq}</SequenceNumber><EndDateTime>2024-03-04T10:00:00</EndDateTime>"
    "<OperatorID>7</OperatorID><CurrencyCode>EUR</CurrencyCode><RetailTransaction>"
    '<LineItem EntryMethod="Scanned"><SequenceNumber>1</SequenceNumber><Sale>'
    "<ItemID>04006381333931</ItemID><ExtendedAmount>1.00</ExtendedAmount>"
    "<Quantity>1</Quantity></Sale></LineItem></RetailTransaction></Transaction>\n"
).format


async def test_reporting_scopes_ingest_reads_exports_and_imports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = LanesightConfig(
        store_id=A,
        auth=auth_config(tmp_path),
        reporting=ReportingConfig(db_path=tmp_path / "reporting.db", retention_interval_s=0),
    )
    running = await start_server(create_reporting(config), config, port=0)
    channels = {name: channel_as(running, name) for name in IDENTITIES}
    stub = {name: reporting_pb2_grpc.ReportingServiceStub(ch) for name, ch in channels.items()}
    R = reporting_pb2
    try:
        missed = alerts_pb2.ALERT_TYPE_MISSED_SCAN
        records = as_records(
            [alert("A-1", 1, A, "1", missed, T0_MS), alert("B-1", 1, B, "1", missed, T0_MS)]
        )
        # A sender scoped to store A may not feed store B's records.
        call = stub["service-a"].IngestRecords(timeout=10)
        await call.write(R.IngestRecordsRequest(sender_id="fusion-a", records=records))
        assert await code_of(call.read()) is DENIED
        call = stub["service-chain"].IngestRecords(timeout=10)
        await call.write(R.IngestRecordsRequest(sender_id="fusion-1", records=records))
        assert (await call.read()).acked_record_sequence == 2
        await call.done_writing()

        async def listed(name: str, *stores: str) -> list[str]:
            reply = await stub[name].ListAlerts(
                R.ListAlertsRequest(filter=R.ReportFilter(store_ids=stores)), timeout=5
            )
            return sorted(a.alert_id for a in reply.alerts)

        assert await listed("manager-chain") == ["A-1", "B-1"]
        assert await listed("manager-a") == ["A-1"]  # "every store" narrowed to store A
        assert await listed("manager-a", A) == ["A-1"]
        manager = stub["manager-a"]
        for stores in ([B], [A, B]):
            request = R.ListAlertsRequest(filter=R.ReportFilter(store_ids=stores))
            assert await code_of(manager.ListAlerts(request, timeout=5)) is DENIED
        shrink_b = R.GetShrinkReportRequest(filter=R.ReportFilter(store_ids=[B]))
        assert await code_of(manager.GetShrinkReport(shrink_b, timeout=5)) is DENIED
        shrink_a = R.GetShrinkReportRequest(filter=R.ReportFilter(store_ids=[A]))
        assert await code_of(manager.GetShrinkReport(shrink_a, timeout=5)) is grpc.StatusCode.OK
        export_b = R.ExportReportRequest(
            kind=R.REPORT_KIND_ALERTS,
            format=R.EXPORT_FORMAT_CSV,
            filter=R.ReportFilter(store_ids=[B]),
        )
        assert await code_of(manager.ExportReport(export_b, timeout=5)) is DENIED
        export_all = R.ExportReportRequest(kind=R.REPORT_KIND_ALERTS, format=R.EXPORT_FORMAT_CSV)
        exported = b"".join([c.chunk async for c in manager.ExportReport(export_all, timeout=5)])
        assert b"A-1" in exported and b"B-1" not in exported

        # POSLog: a store-B transaction anywhere in the file refuses all of it.
        both = POSLOG(TRANSACTION(store=A, seq=1) + TRANSACTION(store=B, seq=2)).encode()
        request = R.ImportPosLogRequest(filename="both.xml", xml=both)
        assert await code_of(manager.ImportPosLog(request, timeout=10)) is DENIED
        no_store = POSLOG(TRANSACTION(store="", seq=3)).encode()
        request = R.ImportPosLogRequest(filename="b.xml", xml=no_store, default_store_id=B)
        assert await code_of(manager.ImportPosLog(request, timeout=10)) is DENIED
        only_a = POSLOG(TRANSACTION(store=A, seq=1)).encode()
        reply = await manager.ImportPosLog(
            R.ImportPosLogRequest(filename="a.xml", xml=only_a), timeout=10
        )
        assert (reply.transactions, reply.duplicates) == (1, 0)  # nothing kept from both.xml
    finally:
        for ch in channels.values():
            await ch.close()
        await running.stop()


# --- vision ------------------------------------------------------------------------------


async def test_vision_analyze_is_scoped_to_the_lanes_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    vision = VisionConfig(
        warmup=False, intra_op_threads=1, enrolment_store_path=tmp_path / "enrolled.npz"
    )
    config = LanesightConfig(store_id=A, auth=auth_config(tmp_path), vision=vision)
    assert GROCERY_DIR.is_dir(), f"GroceryStoreDataset missing at {GROCERY_DIR}"
    running = await start_server(create_vision(config), config, port=0)
    camera = SyntheticLaneCamera(background_seed=3, fps=15, grocery_dir=GROCERY_DIR)
    _, frame = camera.read()
    jpeg = encode_jpeg(frame)

    def requests(store_id: str):
        zones = [
            vision_pb2.ZonePolygon(
                zone=getattr(common_pb2, f"LANE_ZONE_{name.upper()}"),
                points=[vision_pb2.Point(x=x, y=y) for x, y in points],
            )
            for name, points in camera.zones()
        ]
        config = vision_pb2.StreamConfig(
            lane=common_pb2.LaneRef(store_id=store_id, lane_id="7"), camera_id="cam-7", zones=zones
        )
        return [
            vision_pb2.AnalyzeRequest(config=config),
            vision_pb2.AnalyzeRequest(frame=vision_pb2.Frame(frame_id=1, jpeg=jpeg)),
        ]

    lane_a = channel_as(running, "lane-a")
    manager_a = channel_as(running, "manager-a")
    try:
        stub = vision_pb2_grpc.VisionServiceStub(lane_a)

        async def config_then_wait(store_id: str):
            # Nothing is written after the server ends the call: a client write that
            # races the server's abort turns its status into INTERNAL (grpc/grpc#36066).
            yield requests(store_id)[0]
            await asyncio.Event().wait()

        assert await code_of(stub.Analyze(config_then_wait(B), timeout=30)) is DENIED
        responses = [r async for r in stub.Analyze(iter(requests(A)), timeout=30)]
        assert [r.frame_id for r in responses] == [1]
        enrol = vision_pb2.EnrolProductRequest(label="scoped-product", images=[jpeg])
        manager = vision_pb2_grpc.VisionServiceStub(manager_a)
        assert await code_of(manager.EnrolProduct(enrol, timeout=10)) is DENIED
        assert not (tmp_path / "enrolled.npz").exists()
    finally:
        await lane_a.close()
        await manager_a.close()
        await running.stop()


# --- device ------------------------------------------------------------------------------


async def test_a_store_b_lane_agent_refuses_a_store_a_pos(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = agent_config(tmp_path, store_id=B).model_copy(
        update={"auth": auth_config(tmp_path), "server": ServerConfig(grace_s=0.2)}
    )
    running = await start_server(create_device(config), config, port=0)
    pos_a, pos_b = channel_as(running, "pos-a"), channel_as(running, "pos-b")
    try:
        started = events_pb2.LaneEvent(event_id="e-1", transaction_id="tx-1")
        started.transaction_started.operator_id = "op-4"
        submit = device_pb2.SubmitPosEventsRequest(events=[started])
        status = device_pb2.GetDeviceStatusRequest()
        a = device_pb2_grpc.DeviceServiceStub(pos_a)
        assert await code_of(a.SubmitPosEvents(submit, timeout=5)) is DENIED
        assert await code_of(a.GetDeviceStatus(status, timeout=5)) is DENIED
        watch_commands = a.WatchLaneCommands(device_pb2.WatchLaneCommandsRequest(), timeout=5)
        assert await code_of(watch_commands) is DENIED
        assert running.app.agent.outbox.last_sequence == 0
        b = device_pb2_grpc.DeviceServiceStub(pos_b)
        assert list((await b.SubmitPosEvents(submit, timeout=5)).sequences) == [1]
        reply = await b.GetDeviceStatus(status, timeout=5)
        assert reply.lane.store_id == B
    finally:
        await pos_a.close()
        await pos_b.close()
        await running.stop()
