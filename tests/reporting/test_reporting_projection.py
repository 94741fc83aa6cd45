"""Ingest acknowledges stored raw events; the projector derives facts and rollups behind
the ack: a crash in between loses nothing, reports see every acknowledged event, and the
lag is measured."""

from __future__ import annotations

import asyncio

from lanesight.reporting import convert, metrics
from lanesight.reporting.app import create_app
from lanesight.reporting.model import PageRequest, ReportFilter
from lanesight.reporting.reports import Reports
from lanesight.reporting.store import ReportStore
from lanesight.v1 import events_pb2

from tests.reporting.reporting_builders import (
    T0_MS,
    Lane,
    as_records,
    count,
    crafted_records,
    item,
    reporting_config,
    service_config,
)

# The projector never starts on its own within a test: only a report (or close) starts it.
DEFERRED = {"projection_idle_s": 3600, "projection_max_delay_s": 3600}
DERIVED = ("items", "transactions", "pos_events", "lane_incidents")


def domain(records):
    return [convert.record_from_proto(r) for r in records]


async def _figures(store: ReportStore) -> tuple:
    reports = Reports(store.reader, store.config)
    lanes, keyed, _ = await reports.lane_health(ReportFilter(), PageRequest())
    pos, _ = await reports.pos_exceptions(ReportFilter(), PageRequest())
    _, transactions, _ = await reports.alert_quality(ReportFilter(), PageRequest())
    return lanes, keyed, pos, transactions


async def test_acked_events_lost_to_a_crash_before_projection_are_projected_on_restart(
    tmp_path,
):
    # The reference: the same records ingested and projected in one go (SQLite, its own file).
    reference = await ReportStore.open(
        reporting_config(tmp_path, db_path=tmp_path / "ref.db", database_url="")
    )
    try:
        await reference.ingest("fusion", domain(crafted_records()))
        expected = await _figures(reference)
        await reference.projected()
        expected_counts = {t: await count(reference.config, t) for t in DERIVED}
    finally:
        await reference.close()
    assert expected_counts["items"] > 0 and expected[0]

    config = reporting_config(tmp_path, **DEFERRED)
    store = await ReportStore.open(config)
    records = crafted_records()
    assert await store.ingest("fusion", domain(records)) == len(records)
    # Acknowledged: the raw events are stored, the facts not derived yet.
    stored = await count(config, "events")
    assert stored > 0
    assert {t: await count(config, t) for t in DERIVED} == dict.fromkeys(DERIVED, 0)
    assert store.projector.pending == stored
    # The process dies before the projector ran (nothing more is written).
    await store.close(drain=False)

    store = await ReportStore.open(config)
    try:
        assert store.projector.pending == stored  # resumed from the durable cursor
        await store.projected()
        assert {t: await count(config, t) for t in DERIVED} == expected_counts
        assert await _figures(store) == expected
        # A resend after the restart changes nothing (idempotent by event id).
        await store.ingest("fusion", domain(records))
        await store.projected()
        assert {t: await count(config, t) for t in DERIVED} == expected_counts
    finally:
        await store.close()


async def test_a_crash_between_two_projected_batches_resumes_at_the_cursor(tmp_path):
    lane = Lane("s1", "1")
    events = []
    for n in range(40):
        txn = f"t{n}"
        events.append(lane.event(T0_MS + n * 60_000, txn, transaction_started=_started()))
        events.append(
            lane.event(T0_MS + n * 60_000 + 1, txn, item_added=item("1", "4006381333931"))
        )
    config = reporting_config(tmp_path, projection_batch_events=25, **DEFERRED)
    store = await ReportStore.open(config)
    await store.ingest("f", domain(as_records(events)))
    # Two batches derived (as a report would start them), then the process dies.
    assert await store._project(25) == 25
    assert await store._project(25) == 25
    assert await count(config, "items") == 25
    await store.close(drain=False)

    store = await ReportStore.open(config)
    try:
        assert store.projector.pending == 30
        lanes, _, _ = await Reports(store.reader, config).lane_health(ReportFilter(), PageRequest())
        assert (lanes[0].transactions, lanes[0].items_entered) == (40, 40)
        assert await count(config, "items") == 40
    finally:
        await store.close()


def _started() -> events_pb2.TransactionStarted:
    return events_pb2.TransactionStarted(operator_id="op1")


async def test_a_report_right_after_ingest_sees_every_acked_event(tmp_path):
    config = reporting_config(tmp_path, **DEFERRED)
    store = await ReportStore.open(config)
    try:
        reports = Reports(store.reader, config)
        lane = Lane("s1", "1")
        seen = 0
        for n in range(5):
            batch = [
                lane.event(T0_MS + n * 1000 + k, f"t{n}", item_added=item(str(k), "4006381333931"))
                for k in range(20)
            ]
            await store.ingest("f", domain(as_records(batch, n * 20 + 1)))
            seen += len(batch)
            # Nothing derived yet when the report starts; it waits for the projector.
            assert store.projector.pending == len(batch)
            lanes, _, _ = await reports.lane_health(ReportFilter(), PageRequest())
            assert lanes[0].items_entered == seen
            assert store.projector.pending == 0
    finally:
        await store.close()


async def test_concurrent_reports_and_ingest_each_see_what_was_acked_before_them(tmp_path):
    config = reporting_config(tmp_path, projection_batch_events=7)
    store = await ReportStore.open(config)
    try:
        reports = Reports(store.reader, config)
        lane = Lane("s1", "1")
        acked = 0

        async def feed():
            nonlocal acked
            for n in range(10):
                batch = [
                    lane.event(
                        T0_MS + n * 1000 + k, f"t{n}", item_added=item(str(k), "4006381333931")
                    )
                    for k in range(10)
                ]
                await store.ingest("f", domain(as_records(batch, n * 10 + 1)))
                acked += len(batch)
                await asyncio.sleep(0)

        async def read():
            for _ in range(10):
                before = acked
                lanes, _, _ = await reports.lane_health(ReportFilter(), PageRequest())
                assert (lanes[0].items_entered if lanes else 0) >= before
                await asyncio.sleep(0)

        await asyncio.gather(feed(), read(), read())
        lanes, _, _ = await reports.lane_health(ReportFilter(), PageRequest())
        assert lanes[0].items_entered == 100
    finally:
        await store.close()


async def test_the_lag_is_bounded_and_measured(tmp_path):
    config = reporting_config(tmp_path, projection_max_lag_events=30, **DEFERRED)
    app = create_app(service_config(tmp_path, projection_max_lag_events=30, **DEFERRED))
    await app.start()
    try:
        store = app.store
        assert store is not None
        lane = Lane("s1", "1")
        batch = [
            lane.event(T0_MS + k, "t", item_added=item(str(k), "4006381333931")) for k in range(20)
        ]
        await store.ingest("f", domain(as_records(batch)))
        await asyncio.sleep(0.01)
        assert [o.value for o in metrics.projection_lag()] == [20]
        (age,) = [o.value for o in metrics.projection_age()]
        assert age > 0
        # Over the bound, ingest waits for the projector: the lag never passes it by a batch.
        more = [
            lane.event(T0_MS + 100 + k, "t", item_added=item(str(k), "4006381333931"))
            for k in range(40)
        ]
        for k in range(0, 40, 10):
            await store.ingest("f", domain(as_records(more[k : k + 10], 21 + k)))
            assert store.projector.pending <= 30 + 10
        await store.projected()
        assert [o.value for o in metrics.projection_lag()] == [0]
        assert [o.value for o in metrics.projection_age()] == [0.0]
        assert await count(config, "items") == 60
    finally:
        await app.stop()


async def test_a_stop_while_projection_fails_leaves_the_events_to_the_next_start(tmp_path):
    config = reporting_config(tmp_path)
    store = await ReportStore.open(config)

    async def database_gone(limit: int) -> int:
        raise RuntimeError("the database is gone")

    store.projector._project = database_gone
    lane = Lane("s1", "1")
    batch = [lane.event(T0_MS + k, "t", item_added=item(str(k), "4006381333931")) for k in range(5)]
    await store.ingest("f", domain(as_records(batch)))
    async with asyncio.timeout(10):
        await store.close()  # does not wait for a projection that keeps failing
    assert await count(config, "items") == 0

    store = await ReportStore.open(config)
    try:
        lanes, _, _ = await Reports(store.reader, config).lane_health(ReportFilter(), PageRequest())
        assert lanes[0].items_entered == 5
    finally:
        await store.close()
