"""The store's writer: a batch is one transaction in one trip to SQLite's writer thread,
rolled back whole when it fails, and the state the store keeps in memory follows the
database even when the caller is cancelled in the middle."""

from __future__ import annotations

import asyncio
import threading

import pytest
from lanesight.reporting import convert
from lanesight.reporting.db import SqliteWriter
from lanesight.reporting.store import ReportStore

from tests.reporting.reporting_builders import (
    T0_MS,
    Lane,
    as_records,
    count,
    item,
    query,
    reporting_config,
)

DEFERRED = {"projection_idle_s": 3600, "projection_max_delay_s": 3600}


def _records(n: int, first_sequence: int = 1, lane_id: str = "1"):
    lane = Lane("s1", lane_id)
    events = [
        lane.event(T0_MS + k * 1000, f"t{k // 5}", item_added=item(str(k), "4006381333931"))
        for k in range(n)
    ]
    return [convert.record_from_proto(r) for r in as_records(events, first_sequence)]


@pytest.mark.sqlite_only
async def test_each_batch_and_each_projection_is_one_trip_to_the_writer_thread(
    tmp_path, monkeypatch
):
    store = await ReportStore.open(reporting_config(tmp_path, batch_size=10, **DEFERRED))
    try:
        await store.ingest("fusion", _records(1))  # learns the sender's ack once
        trips = []
        original = SqliteWriter._trip

        async def counted(self, fn, *args):
            trips.append(fn)
            return await original(self, fn, *args)

        monkeypatch.setattr(SqliteWriter, "_trip", counted)
        assert await store.ingest("fusion", _records(30, first_sequence=2)) == 31
        assert len(trips) == 3  # three batches of 10: begin, rows, ack, commit in one trip
        trips.clear()
        assert await store._project(1000) == 31
        assert len(trips) == 1
    finally:
        await store.close()
    assert await count(store.config, "events") == 31
    assert await count(store.config, "items") == 31


async def test_a_failing_write_transaction_stores_nothing(tmp_path):
    store = await ReportStore.open(reporting_config(tmp_path, **DEFERRED))

    async def half_done(db):
        await db.execute(
            "INSERT INTO ingest_senders (sender_id, acked_sequence, updated_ms) VALUES (?, ?, ?)",
            ("half", 7, 0),
        )
        raise ValueError("the batch fails after its first statement")

    try:
        with pytest.raises(ValueError, match="first statement"):
            await store._write(half_done)
        # The writer goes on: the next batch is stored.
        assert await store.ingest("fusion", _records(3)) == 3
    finally:
        await store.close()
    assert await query(store.config, "SELECT sender_id FROM ingest_senders") == [("fusion",)]


@pytest.mark.sqlite_only
async def test_a_transaction_that_awaits_anything_but_its_connection_is_refused(tmp_path):
    store = await ReportStore.open(reporting_config(tmp_path, **DEFERRED))

    async def waits(db):
        await db.execute("INSERT INTO ingest_senders VALUES ('early', 1, 0)")
        await asyncio.sleep(0)  # would need the event loop, which the writer thread has not

    try:
        with pytest.raises(RuntimeError, match="awaited something besides its connection"):
            await store._write(waits)
        assert await store.ingest("fusion", _records(2)) == 2
    finally:
        await store.close()
    assert await query(store.config, "SELECT sender_id FROM ingest_senders") == [("fusion",)]


@pytest.mark.sqlite_only
async def test_an_ingest_cancelled_during_its_commit_keeps_the_store_in_step(tmp_path):
    """The trip to the writer thread cannot be stopped: a cancelled caller waits for it,
    and the ack, the projector's count and the event numbering follow what it committed."""
    config = reporting_config(tmp_path, **DEFERRED)
    store = await ReportStore.open(config)
    inside, release = threading.Event(), threading.Event()
    original = store._writer.transaction

    async def held(body):
        async def hold_then_run(db):
            inside.set()
            release.wait(10)  # the writer thread, held while the caller is cancelled
            return await body(db)

        return await original(hold_then_run)

    try:
        await store.ingest("fusion", _records(4))
        store._writer.transaction = held
        ingest = asyncio.create_task(store.ingest("fusion", _records(6, first_sequence=5)))
        await asyncio.to_thread(inside.wait, 10)
        ingest.cancel()
        await asyncio.sleep(0.05)
        assert not ingest.done()  # waiting for the trip, not abandoning it
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await ingest
        store._writer.transaction = original
        assert await store.acked_sequence("fusion") == 10
        assert store.projector.pending == 10
        await store.ingest("fusion", _records(3, first_sequence=11, lane_id="2"))
        await store.projected()
        assert await count(config, "items") == 13
    finally:
        release.set()
        await store.close()
    numbers = await query(config, "SELECT COUNT(DISTINCT ingest_seq), COUNT(*) FROM events")
    assert numbers == [(13, 13)]
