"""The store: migrations, WAL, idempotency by event id and by alert revision, history."""

from __future__ import annotations

import sqlite3

import aiosqlite
import pytest
from lanesight.reporting import convert
from lanesight.reporting.model import PageRequest, ReportFilter
from lanesight.reporting.reports import Reports
from lanesight.reporting.schema import LATEST_VERSION, SchemaError, migrate
from lanesight.reporting.store import ReportStore
from lanesight.v1 import alerts_pb2, events_pb2

from tests.reporting.reporting_builders import (
    G1,
    T0_MS,
    Lane,
    alert,
    as_records,
    count,
    crafted_records,
    item,
    money,
    query,
    reporting_config,
)


async def scalar(config, sql: str):
    return (await query(config, sql))[0][0]


def domain(records):
    return [convert.record_from_proto(r) for r in records]


@pytest.mark.sqlite_only
async def test_fresh_database_is_migrated_in_order_with_wal(tmp_path):
    config = reporting_config(tmp_path, db_path=tmp_path / "deep" / "er" / "r.db")
    store = await ReportStore.open(config)
    await store.close()
    await store.close()  # idempotent
    path = config.db_path
    with sqlite3.connect(path) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        assert versions == list(range(1, LATEST_VERSION + 1))
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        indexes = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"events_time", "alerts_raised", "items_time", "pos_events_time"} <= indexes


@pytest.mark.sqlite_only
async def test_old_database_is_upgraded_keeping_its_data(tmp_path):
    path = tmp_path / "r.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, up_to=1) == 1
        await conn.execute("INSERT INTO ingest_senders VALUES ('fusion-a', 41, 0)")
    store = await ReportStore.open(reporting_config(tmp_path, db_path=path))
    try:
        assert await store.acked_sequence("fusion-a") == 41
    finally:
        await store.close()
    config = reporting_config(tmp_path, db_path=path)
    assert await scalar(config, "SELECT MAX(version) FROM schema_version") == LATEST_VERSION


@pytest.mark.sqlite_only
async def test_events_stored_before_version_9_keep_their_numbers_and_projection(tmp_path):
    """Version 9 makes ingest_seq the events table's key. Events stored before numbering
    (NULL) stay projected; numbered ones the projector had not reached are projected after
    the upgrade, and new events are numbered after every earlier one."""
    path = tmp_path / "r.db"
    lane = Lane("s1", "1")
    events = [
        lane.event(T0_MS + n * 1000, "t1", item_added=item(str(n), gtin=G1)) for n in range(5)
    ]
    rows = [convert.event_row(e) for e in events]
    columns = "event_id, store_id, lane_id, sequence, time_ms, transaction_id, kind, "
    columns += "source_device_id, raw, data, ingest_seq"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, up_to=8) == 8
        # Two stored before numbering (projected then), three numbered: the cursor at 3.
        for row, number in zip(rows, [None, None, 3, 7, 8], strict=True):
            await conn.execute(
                f"INSERT INTO events ({columns}) VALUES ({', '.join('?' * 11)})", (*row, number)
            )
        await conn.execute("UPDATE projection_cursor SET position = 3")
    config = reporting_config(tmp_path, db_path=path)
    store = await ReportStore.open(config)
    try:
        assert store.projector.pending == 2  # numbers 7 and 8
        await store.projected()
        later = lane.event(T0_MS + 9000, "t1", item_added=item("9", gtin=G1))
        await store.ingest("fusion", domain(as_records([later])))
        await store.projected()
    finally:
        await store.close()
    numbers = await query(
        config, "SELECT line_id, ingest_seq FROM events JOIN items USING (event_id) ORDER BY 2"
    )
    # Items derived: of the two the projector had not reached (the event numbered 3 it
    # had reached before the upgrade: not derived again) and of the new one, numbered
    # after every earlier event.
    assert numbers == [("3", 7), ("4", 8), ("9", 9)]
    assert [n for (n,) in await query(config, "SELECT ingest_seq FROM events ORDER BY 1")] == [
        -2,
        -1,
        3,
        7,
        8,
        9,
    ]
    with sqlite3.connect(path) as conn:
        assert (
            conn.execute("SELECT COUNT(*) FROM events WHERE rowid != ingest_seq").fetchone()[0] == 0
        )
        indexes = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "events_ingest_seq" not in indexes and "events_time" in indexes


@pytest.mark.sqlite_only
async def test_newer_database_is_refused(tmp_path):
    path = tmp_path / "r.db"
    store = await ReportStore.open(reporting_config(tmp_path, db_path=path))
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (999, 'future', 0)")
    with pytest.raises(SchemaError, match="newer"):
        await ReportStore.open(reporting_config(tmp_path, db_path=path))


async def test_the_same_records_twice_are_stored_once(store, tmp_path):
    records = crafted_records()
    assert await store.ingest("fusion-a", domain(records)) == len(records)
    await store.projected()  # the derived tables are counted directly
    config = store.config
    before = {
        t: await count(config, t)
        for t in ("events", "items", "pos_events", "lane_incidents", "transactions", "alerts")
    }
    revisions = await count(config, "alert_revisions")
    # Delivered again, by another sender and with other sequence numbers.
    again = as_records([r.event if r.HasField("event") else r.alert for r in records], 1000)
    assert await store.ingest("fusion-b", domain(again)) == 1000 + len(records) - 1
    await store.projected()
    after = {t: await count(config, t) for t in before}
    assert after == before
    assert await count(config, "alert_revisions") == revisions == 7
    reports = Reports(store.reader, store.config)
    rows, _, _ = await reports.lane_health(ReportFilter(), PageRequest())
    assert rows[0].items_entered == 7


async def test_duplicate_event_within_one_batch_is_stored_once(store):
    lane = Lane("s1", "1")
    event = lane.event(T0_MS, "t", item_added=item("1", gtin="00012345678905"))
    await store.ingest("f", domain(as_records([event, event, event])))
    await store.projected()
    assert await count(store.config, "items") == 1


async def test_latest_revision_wins_and_history_is_kept(store):
    A = alerts_pb2
    late = alert(
        "X",
        3,
        "s1",
        "1",
        A.ALERT_TYPE_WEIGHT_MISMATCH,
        T0_MS,
        state=A.ALERT_STATE_RESOLVED,
        disposition=A.DISPOSITION_RECOVERED,
        acked_ms=T0_MS + 5000,
        resolved_ms=T0_MS + 9000,
    )
    early = alert(
        "X",
        2,
        "s1",
        "1",
        A.ALERT_TYPE_WEIGHT_MISMATCH,
        T0_MS,
        state=A.ALERT_STATE_ACKNOWLEDGED,
        acked_ms=T0_MS + 5000,
    )
    first = alert("X", 1, "s1", "1", A.ALERT_TYPE_WEIGHT_MISMATCH, T0_MS)
    await store.ingest("f", domain(as_records([late, first, early])))
    config = store.config
    assert await scalar(config, "SELECT revision FROM alerts WHERE alert_id = 'X'") == 3
    assert await scalar(config, "SELECT COUNT(*) FROM alert_revisions WHERE alert_id = 'X'") == 3
    (state,) = await query(config, "SELECT state, disposition FROM alerts")
    assert state == ("resolved", "recovered")
    history = await Reports(store.reader, store.config).alert_history("X")
    assert history == [
        ("raised", "", "", T0_MS),
        ("acknowledged", "", "att-1", T0_MS + 5000),
        ("resolved", "", "att-2", T0_MS + 9000),
        ("disposition", "recovered", "att-2", T0_MS + 9000),
    ]


async def test_acked_sequence_survives_reopening_and_gaps_are_recorded(tmp_path):
    config = reporting_config(tmp_path)
    lane = Lane("s1", "1")
    events = [
        lane.event(T0_MS + i, drawer_state_changed=events_pb2.DrawerStateChanged())
        for i in range(4)
    ]
    store = await ReportStore.open(config)
    try:
        assert await store.ingest("f", domain(as_records(events[:2], 1))) == 2
        assert await store.ingest("f", []) == 2
    finally:
        await store.close()
    store = await ReportStore.open(config)
    try:
        assert await store.acked_sequence("f") == 2
        assert await store.ingest("f", domain(as_records(events[2:], 5))) == 6
    finally:
        await store.close()
    assert await query(config, "SELECT first_missing, last_missing FROM ingest_gaps") == [(3, 4)]


async def test_batches_larger_than_batch_size_are_split(tmp_path):
    store = await ReportStore.open(reporting_config(tmp_path, batch_size=7))
    try:
        records = crafted_records()
        assert await store.ingest("f", domain(records)) == len(records)
        assert await count(store.config, "events") == len(
            [r for r in records if r.HasField("event")]
        )
    finally:
        await store.close()


async def test_lane_state_survives_a_restart(tmp_path):
    """Voids after tender are still recognised when the store restarted mid-transaction."""
    config = reporting_config(tmp_path)
    lane = Lane("s1", "1")
    E = events_pb2
    before = [
        lane.event(T0_MS, "t", transaction_started=E.TransactionStarted(operator_id="op")),
        lane.event(T0_MS + 1, "t", tender_started=E.TenderStarted(total=money(199))),
    ]
    after = [lane.event(T0_MS + 2, "t", item_voided=E.ItemVoided(line_id="1", amount=money(199)))]
    store = await ReportStore.open(config)
    await store.ingest("f", domain(as_records(before)))
    await store.close()
    store = await ReportStore.open(config)
    await store.ingest("f", domain(as_records(after, 3)))
    await store.close()
    (row,) = await query(config, "SELECT operator_id, after_tender FROM pos_events")
    assert row == ("op", 1)


async def test_postgres_is_migrated_and_partitions_events_by_month(tmp_path, backend):
    if backend != "postgresql":
        pytest.skip("the PostgreSQL schema")
    config = reporting_config(tmp_path)
    lane = Lane("s1", "1")
    march, april = T0_MS, T0_MS + 31 * 86_400_000
    events = [
        lane.event(t, "t", item_added=item(str(n), gtin="00012345678905"))
        for n, t in enumerate((march, april))
    ]
    store = await ReportStore.open(config)
    try:
        await store.ingest("f", domain(as_records(events)))
    finally:
        await store.close()
    versions = await query(config, "SELECT version FROM schema_version ORDER BY 1")
    assert versions == [(4,), (5,), (6,), (7,), (8,)]
    partitions = await query(
        config,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname IN ('events', 'items') "
        "ORDER BY 1",
    )
    assert partitions == [
        ("events_2024_03",),
        ("events_2024_04",),
        ("items_2024_03",),
        ("items_2024_04",),
    ]
    assert await query(config, "SELECT COUNT(*) FROM ONLY events_2024_04") == [(1,)]
    # A newer database is refused, as on SQLite.
    await query(config, "INSERT INTO schema_version VALUES (999, 'future', 0)")
    with pytest.raises(SchemaError, match="newer"):
        await ReportStore.open(config)


@pytest.mark.sqlite_only
async def test_a_database_from_before_rollups_gets_them_filled_at_open(tmp_path):
    """Schema 4 kept detail rows and daily rollups (purged days); opening at 5 fills the
    rollups from both, so the reports read the same figures as before."""
    path = tmp_path / "r.db"
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn, up_to=4) == 4
        await conn.execute(
            "INSERT INTO transactions (store_id, lane_id, transaction_id, time_ms, local_day, "
            "operator_id, source) VALUES ('s1', '1', 't1', ?, '2024-03-04', 'op', 'lane')",
            [T0_MS],
        )
        await conn.executemany(
            "INSERT INTO items VALUES (?, 's1', '1', 't1', ?, ?, '2024-03-04', 'op', "
            "'00012345678905', 'X', ?, 1, 0, 0, 199, 'USD', NULL, 1)",
            [("e1", "1", T0_MS, "keyed"), ("e2", "2", T0_MS + 1, "scanned")],
        )
        zeros = ", ".join(["0"] * 11)
        await conn.execute(
            f"INSERT INTO daily_lane VALUES ('s1', '1', '2024-02-01', 5, 9, {zeros})"
        )
    config = reporting_config(tmp_path, db_path=path)
    store = await ReportStore.open(config)
    try:
        lanes, keyed, _ = await Reports(store.reader, config).lane_health(
            ReportFilter(), PageRequest()
        )
    finally:
        await store.close()
    assert [(r.transactions, r.items_entered, r.items_keyed) for r in lanes] == [(6, 11, 1)]
    assert [(k.item_code, k.entries, k.keyed) for k in keyed] == [("00012345678905", 2, 1)]
