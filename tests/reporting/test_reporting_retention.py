"""Retention: raw events and evidence purged on time; the rollups keep the reports whole."""

from __future__ import annotations

from lanesight.reporting import convert
from lanesight.reporting.model import PageRequest, ReportFilter
from lanesight.reporting.reports import Reports
from lanesight.reporting.retention import apply_retention
from lanesight.reporting.store import ReportStore
from lanesight.v1 import events_pb2

from tests.reporting.reporting_builders import (
    DAY,
    G1,
    HOUR,
    T0_MS,
    Lane,
    as_records,
    count,
    item,
    load_crafted,
    reporting_config,
)

ALL = PageRequest(page_size=1000)


async def snapshot(reports: Reports, f: ReportFilter):
    lanes, keyed, _ = await reports.lane_health(f, ALL)
    pos, _ = await reports.pos_exceptions(f, ALL)
    quality, transactions, _ = await reports.alert_quality(f, ALL)
    shrink, _ = await reports.shrink(f, ["lane", "day"], ALL)
    return lanes, keyed, pos, quality, transactions, shrink


async def test_purge_keeps_the_reports_and_drops_raw_events_and_evidence(tmp_path):
    config = reporting_config(tmp_path, raw_event_retention_days=30, evidence_retention_days=10)
    store = await ReportStore.open(config)
    try:
        await load_crafted(store)
        recent = Lane("s3", "1").event(
            T0_MS + 35 * DAY, drawer_state_changed=events_pb2.DrawerStateChanged()
        )
        await store.ingest("f", [convert.record_from_proto(r) for r in as_records([recent], 500)])
        reports = Reports(store.reader, config)
        days = ReportFilter(start_ms=T0_MS - 9 * HOUR, end_ms=T0_MS + 2 * DAY)
        before_all = await snapshot(reports, ReportFilter())
        before_days = await snapshot(reports, days)
        assert await count(config, "alert_evidence") == 2

        result = await apply_retention(store, T0_MS + 40 * DAY)

        assert result.purged_before_day == "2024-03-14"  # 40 - 30 days after T0
        assert await count(config, "events") == 1  # only the recent one is left
        for table in ("items", "pos_events", "lane_incidents", "transactions"):
            assert await count(config, table) == 0, table
        assert await count(config, "rollup_lane") > 0  # the rollups stay
        assert await count(config, "alert_evidence") == 0
        assert await count(config, "alerts") == 5  # alerts are aggregates: kept
        assert await snapshot(reports, ReportFilter()) == before_all
        assert await snapshot(reports, days) == before_days
        alerts, _ = await reports.list_alerts(ReportFilter(), "unspecified", ALL)
        assert all(a.supporting_event_ids == [] for a in alerts)

        # A late event for a purged day counts at once and is rolled up by the next pass.
        late = Lane("s1", "2").event(T0_MS + HOUR + 10_000, "t4", item_added=item("9", G1))
        await store.ingest("f", [convert.record_from_proto(r) for r in as_records([late], 900)])
        lanes, *_ = await snapshot(reports, ReportFilter())
        assert lanes[1].items_entered == before_all[0][1].items_entered + 1
        await apply_retention(store, T0_MS + 40 * DAY)
        assert await count(config, "items") == 0
        lanes_again, *_ = await snapshot(reports, ReportFilter())
        assert lanes_again == lanes
    finally:
        await store.close()


async def test_nothing_recent_is_purged(tmp_path):
    config = reporting_config(tmp_path, raw_event_retention_days=30, evidence_retention_days=10)
    store = await ReportStore.open(config)
    try:
        await load_crafted(store)
        events = await count(config, "events")
        result = await apply_retention(store, T0_MS + 5 * DAY)
        assert (result.raw_events_deleted, result.detail_rows_deleted) == (0, 0)
        assert result.evidence_references_deleted == 0
        assert await count(config, "events") == events
        assert await count(config, "alert_evidence") == 2
    finally:
        await store.close()
