"""Each report on the crafted dataset, against figures counted by hand from the builders."""

from __future__ import annotations

import pytest
from lanesight.reporting.model import PageRequest, PosExceptionRow, ReportFilter
from lanesight.reporting.reports import mark_outliers, percentile

from tests.reporting.reporting_builders import DAY, G4, T0_MS

ALL = PageRequest(page_size=1000)


def shrink_rows(rows):
    return [(tuple(r.keys), r.currency, r.alerts, r.at_risk_minor, r.recovered_minor) for r in rows]


async def test_shrink_by_lane_never_mixes_currencies(loaded):
    _, reports = loaded
    rows, page = await reports.shrink(ReportFilter(), ["lane"], ALL)
    # s1/1: A1 (500 at risk, 500 recovered), A2 (false alert: nothing at risk), A5 (no money).
    assert shrink_rows(rows) == [
        (("s1/1",), "USD", 3, 500, 500),
        (("s1/2",), "USD", 1, 250, 250),
        (("s2/1",), "EUR", 1, 1000, 0),
    ]
    assert page.total_size == 3 and page.next_page_token == ""


async def test_shrink_by_store_hour_category_type_and_day(loaded):
    _, reports = loaded

    async def by(*dims):
        rows, _ = await reports.shrink(ReportFilter(), list(dims), ALL)
        return shrink_rows(rows)

    assert await by("store") == [(("s1",), "USD", 4, 750, 750), (("s2",), "EUR", 1, 1000, 0)]
    assert await by("hour_of_day") == [
        (("09",), "USD", 3, 500, 500),
        (("10",), "USD", 1, 250, 250),
        (("11",), "EUR", 1, 1000, 0),
    ]
    assert await by("category") == [
        (("",), "", 1, 0, 0),
        (("beverages",), "EUR", 1, 1000, 0),
        (("dairy",), "USD", 1, 250, 250),
        (("produce",), "USD", 2, 500, 500),
    ]
    assert await by("alert_type") == [
        (("camera_tamper",), "", 1, 0, 0),
        (("item_mismatch",), "EUR", 1, 1000, 0),
        (("missed_scan",), "USD", 2, 500, 500),
        (("weight_mismatch",), "USD", 1, 250, 250),
    ]
    assert await by("day") == [
        (("2024-03-04",), "USD", 4, 750, 750),
        (("2024-03-05",), "EUR", 1, 1000, 0),
    ]
    assert await by("store", "day") == [
        (("s1", "2024-03-04"), "USD", 4, 750, 750),
        (("s2", "2024-03-05"), "EUR", 1, 1000, 0),
    ]
    # Without grouping the alert that carried no money stays on its own row.
    assert await by() == [((), "", 1, 0, 0), ((), "EUR", 1, 1000, 0), ((), "USD", 3, 750, 750)]


async def test_shrink_filters_by_range_store_lane_and_type(loaded):
    _, reports = loaded
    rows, _ = await reports.shrink(ReportFilter(start_ms=T0_MS + DAY), ["lane"], ALL)
    assert shrink_rows(rows) == [(("s2/1",), "EUR", 1, 1000, 0)]
    rows, _ = await reports.shrink(ReportFilter(end_ms=T0_MS + DAY, lane_ids=("2",)), ["lane"], ALL)
    assert shrink_rows(rows) == [(("s1/2",), "USD", 1, 250, 250)]
    rows, _ = await reports.shrink(ReportFilter(alert_types=("missed_scan",)), ["store"], ALL)
    assert shrink_rows(rows) == [(("s1",), "USD", 2, 500, 500)]
    rows, _ = await reports.shrink(ReportFilter(store_ids=("nowhere",)), ["store"], ALL)
    assert rows == []


async def test_alert_quality_per_rule(loaded):
    _, reports = loaded
    rows, transactions, _ = await reports.alert_quality(ReportFilter(), ALL)
    assert transactions == 4  # t1, t2, t3 on s1/1 and t4 on s1/2
    by_rule = {r.rule: r for r in rows}
    missed = by_rule["missed_scan_v1"]
    assert (missed.type, missed.alerts, missed.resolved) == ("missed_scan", 2, 2)
    assert missed.precision == 0.5  # A1 recovered, A2 false
    assert missed.false_alerts_per_100_transactions == 25.0  # 1 false alert / 4 transactions
    assert missed.self_corrected_share == 0.0
    # Acknowledged after 30 s (A1) and 10 s (A2); resolved after 90 s and 40 s (nearest rank).
    assert (missed.acknowledge_p50_ms, missed.acknowledge_p95_ms) == (10_000, 30_000)
    assert (missed.resolve_p50_ms, missed.resolve_p95_ms) == (40_000, 90_000)
    weight = by_rule["weight_v1"]
    assert (weight.precision, weight.self_corrected_share) == (1.0, 1.0)
    assert (weight.acknowledge_p50_ms, weight.resolve_p95_ms) == (20_000, 60_000)
    switch = by_rule["switch_v1"]
    assert (switch.alerts, switch.resolved, switch.precision, switch.acknowledge_p50_ms) == (
        1,
        0,
        0.0,
        0,
    )
    camera = by_rule["camera_v1"]
    assert camera.precision == 1.0  # an honest mistake is not a false alert
    assert (camera.acknowledge_p95_ms, camera.resolve_p50_ms) == (5_000, 200_000)
    assert len(rows) == 4


async def test_alert_quality_denominator_follows_the_filter(loaded):
    _, reports = loaded
    rows, transactions, _ = await reports.alert_quality(ReportFilter(lane_ids=("1",)), ALL)
    assert transactions == 3
    missed = next(r for r in rows if r.rule == "missed_scan_v1")
    assert missed.false_alerts_per_100_transactions == pytest.approx(100 / 3)


def test_percentile_is_nearest_rank():
    values = list(range(1, 21))
    assert percentile(values, 50) == 10
    assert percentile(values, 95) == 19
    assert percentile([7], 95) == 7
    assert percentile([], 50) == 0


async def test_lane_health(loaded):
    _, reports = loaded
    rows, keyed, page = await reports.lane_health(ReportFilter(), ALL)
    assert [(r.store_id, r.lane_id) for r in rows] == [("s1", "1"), ("s1", "2")]
    lane = rows[0]
    assert lane.transactions == 3
    assert lane.items_entered == 7
    assert lane.items_scanned == 4
    assert lane.first_pass_scans == 2  # the no-read and the rescan cost two
    assert lane.scanner_first_pass_read_rate == 0.5
    assert lane.items_keyed == 2
    assert lane.keyed_entry_rate == pytest.approx(2 / 7)
    assert lane.items_weighed == 1
    assert lane.scanner_no_reads == 1
    assert (lane.scale_not_zeroed, lane.scale_over_capacity) == (2, 1)
    assert (lane.printer_paper_out, lane.printer_cover_open) == (1, 2)
    assert lane.device_disconnections == 2
    assert lane.camera_unhealthy_seconds == 150
    # 35*0.5 + 20*(5/7) + 15*(1-3/10) + 10*(1-3/10) + 10*(1-150/3600) + 10*(1-2/10)
    assert lane.health_score == 66.9
    healthy = rows[1]
    assert (healthy.items_scanned, healthy.first_pass_scans, healthy.health_score) == (2, 2, 100.0)
    assert [(k.item_code, k.entries, k.keyed) for k in keyed] == [(G4, 3, 2)]
    assert keyed[0].keyed_rate == pytest.approx(2 / 3)
    assert page.total_size == 2


async def test_lane_health_clips_camera_time_to_the_range(loaded):
    _, reports = loaded
    # Blocked 100..160 s, dark from 200 s until the lane's last event at 290 s.
    window = ReportFilter(start_ms=T0_MS + 150_000, end_ms=T0_MS + 250_000)
    rows, _, _ = await reports.lane_health(window, ALL)
    assert rows[0].camera_unhealthy_seconds == 10 + 50


async def test_pos_exceptions_per_operator_and_lane(loaded):
    _, reports = loaded
    rows, _ = await reports.pos_exceptions(ReportFilter(), ALL)
    table = {(r.store_id, r.lane_id, r.operator_id): r for r in rows}
    assert sorted(table) == [("s1", "1", "op-a"), ("s1", "1", "sup-1"), ("s1", "2", "op-b")]
    a = table[("s1", "1", "op-a")]
    assert a.transactions == 3
    assert (a.voids, a.voids_after_tender) == (2, 1)
    assert (a.refunds_with_receipt, a.refunds_without_receipt) == (1, 1)
    assert (a.no_sales, a.price_overrides, a.discounts) == (1, 1, 1)  # promotions don't count
    assert a.cancelled_transactions == 1
    assert table[("s1", "1", "sup-1")].attendant_overrides == 1
    assert table[("s1", "2", "op-b")].transactions == 1
    assert all(r.outliers == [] for r in rows)  # three rows are too few for a norm at z=2


def _row(operator: str, transactions: int, **counts) -> PosExceptionRow:
    return PosExceptionRow("s", operator, operator, transactions=transactions, **counts)


def test_outliers_against_the_store_norm():
    rows = [_row("o1", 10, voids=5), *(_row(f"o{i}", 10) for i in range(2, 7))]
    # Rates 0.5 and five 0: mean 1/12, population sd 0.1863, z = 2.236.
    mark_outliers(rows, 2.0)
    assert rows[0].outliers == ["voids"]
    assert all(r.outliers == [] for r in rows[1:])
    rows = [_row("o1", 10, voids=5), *(_row(f"o{i}", 10) for i in range(2, 7))]
    mark_outliers(rows, 2.5)
    assert rows[0].outliers == []


async def test_outliers_keep_the_store_norm_under_a_lane_filter(store):
    from lanesight.reporting import convert
    from lanesight.reporting.reports import Reports
    from lanesight.v1 import events_pb2 as E

    from tests.reporting.reporting_builders import Lane, as_records, money

    events = []
    for lane_no in range(1, 7):
        lane = Lane("s9", str(lane_no))
        for n in range(10):
            txn = f"{lane_no}-{n}"
            t = T0_MS + lane_no * 100_000 + n * 1000
            events.append(
                lane.event(
                    t, txn, transaction_started=E.TransactionStarted(operator_id=f"op{lane_no}")
                )
            )
            if lane_no == 1 and n < 5:
                voided = E.ItemVoided(line_id="1", amount=money(199))
                events.append(lane.event(t + 1, txn, item_voided=voided))
    await store.ingest("f", [convert.record_from_proto(r) for r in as_records(events)])
    reports = Reports(store.reader, store.config)
    rows, page = await reports.pos_exceptions(ReportFilter(lane_ids=("1",)), ALL)
    assert [(r.lane_id, r.voids, r.outliers) for r in rows] == [("1", 5, ["voids"])]
    assert page.total_size == 1
    rows, _ = await reports.pos_exceptions(ReportFilter(lane_ids=("1",)), ALL, outlier_z=2.5)
    assert rows[0].outliers == []


async def test_list_alerts_latest_revision_newest_first(loaded):
    _, reports = loaded
    alerts, page = await reports.list_alerts(ReportFilter(), "unspecified", ALL)
    assert [a.alert_id for a in alerts] == ["A4", "A3", "A5", "A2", "A1"]
    a1 = alerts[-1]
    assert (a1.revision, a1.state, a1.disposition) == (3, "resolved", "recovered")
    assert a1.supporting_event_ids == ["ev-1", "ev-2"]
    assert page.total_size == 5
    resolved, _ = await reports.list_alerts(ReportFilter(), "resolved", ALL)
    assert {a.alert_id for a in resolved} == {"A1", "A2", "A3", "A5"}


async def test_a_withdrawn_alert_puts_nothing_at_risk_and_is_listed_by_state(store):
    from lanesight.reporting import convert
    from lanesight.reporting.reports import Reports
    from lanesight.v1 import alerts_pb2

    from tests.reporting.reporting_builders import alert, as_records, money

    raised = alert(
        "W1", 1, "s1", "1", alerts_pb2.ALERT_TYPE_ITEM_MISMATCH, T0_MS, at_risk=money(700)
    )
    withdrawn = alert(
        "W1",
        2,
        "s1",
        "1",
        alerts_pb2.ALERT_TYPE_ITEM_MISMATCH,
        T0_MS,
        at_risk=money(700),
        state=alerts_pb2.ALERT_STATE_WITHDRAWN,
    )
    withdrawn.withdrawn_reason = "Later views of the item match the scanned product"
    kept = alert("K1", 1, "s1", "1", alerts_pb2.ALERT_TYPE_MISSED_SCAN, T0_MS, at_risk=money(300))
    records = [convert.record_from_proto(r) for r in as_records([raised, withdrawn, kept])]
    await store.ingest("fusion-test", records)
    reports = Reports(store.reader, store.config)
    rows, _ = await reports.shrink(ReportFilter(), ["lane"], ALL)
    assert shrink_rows(rows) == [(("s1/1",), "USD", 1, 300, 0)]
    listed, _ = await reports.list_alerts(ReportFilter(), "withdrawn", ALL)
    assert [a.alert_id for a in listed] == ["W1"]
