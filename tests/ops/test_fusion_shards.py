"""Two fusion replicas, lanes of both shards, one reporting: every lane reaches its own
replica, each replica is a sender of its own, and reporting sees no gaps."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time

import grpc
import pytest
from lanesight.common.config import load_config
from lanesight.common.server import start_server
from lanesight.common.sharding import SHARD_METADATA_KEY, lane_shard, pod_ordinal
from lanesight.demo.main import free_port
from lanesight.device.config import DeviceConfig
from lanesight.fusion import config as fusion_config_module
from lanesight.fusion.app import create_app as create_fusion
from lanesight.fusion.config import FusionConfig
from lanesight.reporting.app import create_app as create_reporting
from lanesight.v1 import device_pb2, device_pb2_grpc, events_pb2, fusion_pb2

from tests.conftest import assert_eventually
from tests.device.conftest import agent_config, start_agent
from tests.reliability.lanes import LaneClient, LaneLedger, barcode_event

STORE = "store-1"
EVENTS_PER_LANE = 30


def test_replica_comes_from_the_pod_ordinal_and_names_its_sender():
    sharded = FusionConfig(replica_count=3)
    assert [sharded.replica(f"fusion-{n}") for n in range(3)] == [0, 1, 2]
    assert sharded.sender(sharded.replica("fusion-2")) == "fusion-2"
    assert FusionConfig().replica("anything") == 0  # one replica: always 0
    assert FusionConfig(replica_count=3, replica_index=1).replica("fusion-2") == 1
    with pytest.raises(ValueError, match="fusion.replica_index"):
        sharded.replica("store-server")
    with pytest.raises(ValueError, match="fusion.replica_count 3"):
        sharded.replica("fusion-3")
    assert pod_ordinal("fusion-12") == 12 and pod_ordinal("fusion") is None


def test_lane_agent_dials_the_replica_fusion_assigns():
    agent = DeviceConfig(fusion_shards=3, fusion_shard_address="fusion-{shard}.pool:50063")
    for n in range(20):
        lane = f"lane-{n}"
        shard = lane_shard(STORE, lane, 3)
        assert agent.fusion_address(STORE, lane, "unused:1") == f"fusion-{shard}.pool:50063"
        assert FusionConfig(replica_count=3).replica(f"fusion-{shard}") == shard
    assert DeviceConfig().fusion_address(STORE, "lane-1", "fusion:50063") == "fusion:50063"
    with pytest.raises(ValueError, match="fusion_shard_address"):
        DeviceConfig(fusion_shards=2)


def _query(db, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        conn.execute("PRAGMA busy_timeout = 5000")
        return conn.execute(sql).fetchall()


async def _refusal(address: str, lane_id: str) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(address) as channel:
        call = channel.stream_stream(
            "/lanesight.v1.FusionService/Ingest",
            request_serializer=lambda raw: raw,
            response_deserializer=fusion_pb2.IngestResponse.FromString,
        )()
        payload = barcode_event(STORE, lane_id, 1)
        await call.write(b"\x0a" + bytes([len(payload)]) + payload)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call.read()
        return refused.value


async def test_two_replicas_shard_lanes_into_one_reporting_without_gaps(
    tmp_path, monkeypatch, caplog
):
    caplog.set_level(logging.WARNING)
    db = tmp_path / "reporting.db"
    reporting_config = load_config(None, environ={"LANESIGHT_REPORTING__DB_PATH": str(db)})
    reporting = await start_server(create_reporting(reporting_config), reporting_config, port=0)
    replicas = []
    try:
        for ordinal in range(2):
            # A StatefulSet pod: only its host name tells it which replica it is.
            monkeypatch.setattr(
                fusion_config_module.socket, "gethostname", lambda n=ordinal: f"fusion-{n}"
            )
            config = load_config(
                None,
                environ={
                    "LANESIGHT_FUSION__STORE_PATH": str(tmp_path / f"fusion-{ordinal}.sqlite"),
                    "LANESIGHT_FUSION__REPLICA_COUNT": "2",
                    "LANESIGHT_FUSION__TICK_MS": "20",
                    "LANESIGHT_PEERS__REPORTING": f"127.0.0.1:{reporting.port}",
                },
            )
            replicas.append(await start_server(create_fusion(config), config, port=0))
        addresses = {f"fusion-{n}": f"127.0.0.1:{r.port}" for n, r in enumerate(replicas)}
        agent = DeviceConfig(fusion_shards=2, fusion_shard_address="fusion-{shard}")

        lanes = {0: [], 1: []}  # three lanes of each shard
        for n in range(40):
            lane = f"lane-{n}"
            shard = lane_shard(STORE, lane, 2)
            if len(lanes[shard]) < 3:
                lanes[shard].append(lane)
        ledgers, clients = [], []
        for lane in lanes[0] + lanes[1]:
            ledger = LaneLedger(STORE, lane)
            ledger.record(EVENTS_PER_LANE, no_sale_every=10)
            client = LaneClient(addresses[agent.fusion_address(STORE, lane, "")], ledger)
            client.start()
            ledgers.append(ledger)
            clients.append(client)
        deadline = time.monotonic() + 30
        while any(ledger.acked_sequence < EVENTS_PER_LANE for ledger in ledgers):
            assert time.monotonic() < deadline, "lanes not acknowledged by their replicas"
            await asyncio.sleep(0.05)
        for client in clients:
            await client.stop()
        assert all(ledger.stream_errors == 0 for ledger in ledgers)

        # A lane that dials the other replica is refused, with its owner to follow.
        refused = await _refusal(addresses["fusion-0"], lanes[1][0])
        assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert dict(refused.trailing_metadata() or ())[SHARD_METADATA_KEY] == "1"

        expected = {ledger.event_id(n) for ledger in ledgers for n in range(1, EVENTS_PER_LANE + 1)}
        deadline = time.monotonic() + 30
        while {row[0] for row in _query(db, "SELECT event_id FROM events")} != expected:
            assert time.monotonic() < deadline, "reporting did not receive every event"
            await asyncio.sleep(0.1)
    finally:
        for running in replicas:
            await running.stop()
        await reporting.stop()

    senders = {row[0] for row in _query(db, "SELECT sender_id FROM ingest_senders")}
    assert senders == {"fusion-0", "fusion-1"}
    assert _query(db, "SELECT * FROM ingest_gaps") == []
    assert "never arrived" not in caplog.text
    # Each replica raised the no-sale alerts of its own lanes, and reporting has them all.
    alerts = _query(db, "SELECT lane_id FROM alerts")
    assert sorted({row[0] for row in alerts}) == sorted(lanes[0] + lanes[1])


async def test_a_lane_agent_with_a_stale_shard_count_follows_fusion_to_its_shard(
    tmp_path, monkeypatch
):
    """After a re-shard an agent still configured for one replica dials fusion-0, is
    refused with the owner's index, and moves to the owner (events and command watch)."""
    port = free_port()
    # Two replicas on one port, at 127.0.0.10 and 127.0.0.11: "127.0.0.1{shard}".
    template = f"127.0.0.1{{shard}}:{port}"
    replicas = []
    try:
        for ordinal in range(2):
            monkeypatch.setattr(
                fusion_config_module.socket, "gethostname", lambda n=ordinal: f"fusion-{n}"
            )
            config = load_config(
                None,
                environ={
                    "LANESIGHT_SERVER__HOST": f"127.0.0.1{ordinal}",
                    "LANESIGHT_FUSION__STORE_PATH": str(tmp_path / f"fusion-{ordinal}.sqlite"),
                    "LANESIGHT_FUSION__REPLICA_COUNT": "2",
                    "LANESIGHT_FUSION__FORWARD_TO_REPORTING": "false",
                },
            )
            replicas.append(await start_server(create_fusion(config), config, port=port))
        lane = next(f"lane-{n}" for n in range(40) if lane_shard(STORE, f"lane-{n}", 2) == 1)
        config = agent_config(
            tmp_path,
            fusion=template.format(shard=0),  # what the agent was set up with: one fusion
            store_id=STORE,
            lane_id=lane,
            fusion_commands=True,
            fusion_shard_address=template,
        )
        agent_server = await start_agent(config)
        agent = agent_server.app.agent
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{agent_server.port}") as channel:
                reply = await device_pb2_grpc.DeviceServiceStub(channel).SubmitPosEvents(
                    device_pb2.SubmitPosEventsRequest(
                        events=[
                            events_pb2.LaneEvent(
                                event_id="no-sale-1",
                                no_sale_drawer_open=events_pb2.NoSaleDrawerOpen(),
                            )
                        ]
                    ),
                    timeout=10,
                )
            owner = replicas[1].app
            await assert_eventually(
                lambda: agent.outbox.acked_sequence >= reply.sequences[-1], timeout_s=20
            )
            assert agent.fusion_address == template.format(shard=1)
            assert (STORE, lane) in owner.engine.lanes
            assert (STORE, lane) not in replicas[0].app.engine.lanes
            # The command watch moved too: the owner has this lane's watcher.
            await assert_eventually(
                lambda: any(lane in w.filter.lane_ids for w in owner.hub.watchers), timeout_s=20
            )
        finally:
            await agent_server.stop()
    finally:
        for running in replicas:
            await running.stop()
