"""Sequences and ids cannot be poisoned: far jumps are refused, ids are unique per lane."""

from __future__ import annotations

import sqlite3
import time

import aiosqlite
import grpc
from lanesight.reporting import convert
from lanesight.reporting.schema import migrate
from lanesight.reporting.store import ReportStore
from lanesight.v1 import events_pb2, fusion_pb2_grpc

from tests.fusion.test_fusion_service import ingest
from tests.reporting.reporting_builders import T0_MS, Lane, as_records, item, reporting_config


def _lane_items(store_id: str, lane_id: str, count: int):
    """Items whose ids a POS made up: pos-1, pos-2, ... on every lane."""
    lane = Lane(store_id, lane_id)
    events = []
    for n in range(1, count + 1):
        event = lane.event(T0_MS + n * 1000, "t1", item_added=item(str(n), "00012345678905"))
        event.event_id = f"pos-{n}"
        events.append(event)
    return events


def _rows(path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def test_the_same_event_id_on_two_lanes_keeps_both_lanes_events(tmp_path):
    config = reporting_config(tmp_path)
    store = await ReportStore.open(config)
    try:
        first = _lane_items("store-1", "lane-01", 20)
        second = _lane_items("store-1", "lane-02", 20)
        records = [convert.record_from_proto(r) for r in as_records(first + second)]
        await store.ingest("fusion-0", records[:25])
        await store.ingest("fusion-0", records[25:])
        await store.ingest("fusion-0", records)  # a resend stores nothing twice
    finally:
        await store.close()
    per_lane = "SELECT lane_id, COUNT(*) FROM {} GROUP BY lane_id ORDER BY lane_id"
    expected = [("lane-01", 20), ("lane-02", 20)]
    assert _rows(config.db_path, per_lane.format("events")) == expected
    assert _rows(config.db_path, per_lane.format("items")) == expected


async def test_an_old_database_keeps_its_events_and_takes_ids_per_lane(tmp_path):
    config = reporting_config(tmp_path)
    async with aiosqlite.connect(config.db_path, isolation_level=None) as conn:
        assert await migrate(conn, up_to=3) == 3
        await conn.execute(
            "INSERT INTO events VALUES ('pos-1', 'store-1', 'lane-01', 1, 0, 't1', 'item_added',"
            " 'pos', NULL)"
        )
    store = await ReportStore.open(config)
    try:
        records = as_records(_lane_items("store-1", "lane-02", 1), first_sequence=1)
        await store.ingest("fusion-0", [convert.record_from_proto(r) for r in records])
    finally:
        await store.close()
    assert _rows(config.db_path, "SELECT lane_id FROM events ORDER BY lane_id") == [
        ("lane-01",),
        ("lane-02",),
    ]


def _event(sequence: int, lane_id: str = "lane-01") -> events_pb2.LaneEvent:
    event = events_pb2.LaneEvent(
        event_id=f"{lane_id}-{sequence}",
        store_id="store-1",
        lane_id=lane_id,
        sequence=sequence,
        source_device_id="scanner-1",
    )
    event.lane_time.FromNanoseconds(time.time_ns())
    event.barcode_read.scanner_id = "scanner-1"
    event.barcode_read.gtin = "05000112637922"
    return event


async def test_a_sequence_far_ahead_cannot_swallow_the_lane(fusion_server):
    """1, then 2^62 (below the 2^63 bound, so it passes validation), then 2..101: the
    wild one is rejected naming the sequence, and every later event is applied."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{fusion_server.port}") as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        first = await ingest(stub, [_event(1), _event(1 << 62)], batch=1)
        assert first[-1].acked_sequence == 1
        [rejection] = first[-1].rejections
        assert rejection.sequence == 1 << 62 and rejection.field == "sequence"
        rest = await ingest(stub, [_event(n) for n in range(2, 102)])
        assert rest[-1].acked_sequence == 101
        assert sum(r.duplicates for r in rest) == 0
        assert not any(r.rejections for r in rest)
