"""Chain reporting: rollups equal the detail whatever the range, and the store comparison
of two stores (POSLog history, lane events, alerts) equals counts made here independently."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from lanesight.reporting import convert
from lanesight.reporting.config import StoreInfo
from lanesight.reporting.importer import import_poslog
from lanesight.reporting.model import InvalidArgument, PageRequest, ReportFilter
from lanesight.reporting.reports import Reports
from lanesight.reporting.store import ReportStore
from lanesight.v1 import alerts_pb2, events_pb2

from tests.conftest import SHARED_DATA
from tests.reporting.reporting_builders import (
    DAY,
    HOUR,
    T0_MS,
    Lane,
    alert,
    as_records,
    item,
    load_crafted,
    money,
    query,
    reporting_config,
)

ALL = PageRequest(page_size=1000)
NS = {"p": "http://www.nrf-arts.org/IXRetail/namespace/"}
POSLOG = SHARED_DATA / "poslog" / "sample" / "POSLog.xml"
A = alerts_pb2
E = events_pb2


def domain(records):
    return [convert.record_from_proto(r) for r in records]


async def test_rollups_and_detail_give_the_same_figures_for_any_range(store):
    """Ranges cut anywhere (mid-hour, mid-day, open-ended) read rollups for whole buckets and
    detail at the ends; the figures equal counts over the detail rows alone."""
    await load_crafted(store)
    lane = Lane("s2", "7")
    rng = random.Random(5)
    events = []
    for n in range(60):
        t = T0_MS + rng.randrange(3 * DAY)
        method = E.ENTRY_METHOD_KEYED if n % 4 == 0 else E.ENTRY_METHOD_SCANNED
        events.append(lane.event(t, f"r{n}", item_added=item(str(n), "00012345678905", method)))
        if n % 5 == 0:
            events.append(lane.event(t + 1, f"r{n}", item_voided=E.ItemVoided(line_id=str(n))))
    await store.ingest("r", domain(as_records(events, 5000)))
    await store.projected()  # the detail rows are counted directly below
    reports = Reports(store.reader, store.config)
    cuts = [None, *(T0_MS + rng.randrange(-DAY, 4 * DAY) for _ in range(12)), T0_MS + 2 * HOUR]
    for _ in range(12):
        start, end = sorted(rng.sample(cuts[1:], 2))
        for f in (
            ReportFilter(start_ms=start, end_ms=end),
            ReportFilter(start_ms=start),
            ReportFilter(end_ms=end),
        ):
            where = (
                " AND ".join(
                    [f"time_ms >= {f.start_ms}"] * (f.start_ms is not None)
                    + [f"time_ms < {f.end_ms}"] * (f.end_ms is not None)
                )
                or "1 = 1"
            )
            expected_items = dict(
                ((s, ln), (int(n), int(k)))
                for s, ln, n, k in await query(
                    store.config,
                    "SELECT store_id, lane_id, COUNT(*), "
                    "SUM(CASE WHEN entry_method = 'keyed' THEN 1 ELSE 0 END) "
                    f"FROM items WHERE {where} GROUP BY store_id, lane_id",
                )
            )
            expected_voids = sum(
                int(n)
                for (n,) in await query(
                    store.config, f"SELECT COUNT(*) FROM pos_events WHERE kind = 'void' AND {where}"
                )
            )
            expected_transactions = int(
                (await query(store.config, f"SELECT COUNT(*) FROM transactions WHERE {where}"))[0][
                    0
                ]
            )
            lanes, _, _ = await reports.lane_health(f, ALL)
            shown = {
                (r.store_id, r.lane_id): (r.items_entered, r.items_keyed)
                for r in lanes
                if r.items_entered
            }
            assert shown == expected_items, f
            pos, _ = await reports.pos_exceptions(f, ALL)
            assert sum(r.voids for r in pos) == expected_voids, f
            assert await reports.transactions(f) == expected_transactions, f


def _store_copy(tmp_path, store_id: str, keep: int):
    """POSLog.xml as another store's file: its first ``keep`` transactions, store id changed."""
    ET.register_namespace("", NS["p"])
    tree = ET.parse(POSLOG)
    root = tree.getroot()
    for index, txn in enumerate(root.findall("p:Transaction", NS)):
        if index >= keep:
            root.remove(txn)
        else:
            txn.find("p:RetailStoreID", NS).text = store_id
    path = tmp_path / f"store-{store_id}.xml"
    tree.write(path, xml_declaration=True, encoding="utf-8")
    return path


def _counted(path) -> tuple[int, int, int]:
    """(retail transactions, items, keyed items) of a POSLog file, by XPath."""
    root = ET.parse(path).getroot()
    lines = [
        li
        for li in root.findall("p:Transaction/p:RetailTransaction/p:LineItem", NS)
        if li.get("VoidFlag") != "true" and li.find("p:Sale", NS) is not None
    ]
    transactions = len(root.findall("p:Transaction[p:RetailTransaction]", NS))
    return transactions, len(lines), sum(1 for li in lines if li.get("EntryMethod") == "Keyed")


def _at(day_time: str, zone: str) -> int:
    local = datetime.fromisoformat(day_time).replace(tzinfo=ZoneInfo(zone))
    return int(local.timestamp() * 1000)


def _alert(alert_id, store, raised_ms, txn, risk, disposition=None, state=None):
    resolved = disposition is not None
    message = alert(
        alert_id,
        1,
        store,
        "1",
        A.ALERT_TYPE_MISSED_SCAN,
        raised_ms,
        at_risk=money(risk),
        state=state or (A.ALERT_STATE_RESOLVED if resolved else A.ALERT_STATE_OPEN),
        disposition=disposition or A.DISPOSITION_UNSPECIFIED,
        resolved_ms=raised_ms + 60_000 if resolved else None,
        rule="missed_scan_v1",
    )
    message.transaction_id = txn
    return message


async def test_store_comparison_of_two_stores_in_their_own_time_zones(tmp_path):
    stores = {
        "9": StoreInfo(name="Springfield", timezone="America/New_York", region="east"),
        "12": StoreInfo(name="Berlin Mitte", timezone="Europe/Berlin", region="east"),
        "30": StoreInfo(name="Faraway", region="west"),
    }
    config = reporting_config(tmp_path, stores=stores)
    store = await ReportStore.open(config)
    try:
        second = _store_copy(tmp_path, "12", keep=30)
        for path in (POSLOG, second):
            with path.open("rb") as source:
                await import_poslog(store, source, path.name)
        # Lane events of store 12 on the same local day: one transaction, 3 items, 1 keyed.
        lane = Lane("12", "live")
        t = _at("2017-10-01T18:00:00", "Europe/Berlin")
        live = [
            lane.event(t, "L1", transaction_started=E.TransactionStarted(operator_id="op")),
            lane.event(t + 1000, "L1", item_added=item("1", "00012345678905")),
            lane.event(t + 2000, "L1", item_added=item("2", "00012345678905")),
            lane.event(
                t + 3000, "L1", item_added=item("3", "00012345678905", E.ENTRY_METHOD_KEYED)
            ),
            lane.event(t + 4000, "L1", transaction_ended=E.TransactionEnded(total=money(597))),
        ]
        ny = _at("2017-10-01T15:20:00", "America/New_York")
        berlin = _at("2017-10-01T15:20:00", "Europe/Berlin")
        alerts = [
            _alert("a1", "9", ny, "x1", 500, A.DISPOSITION_RECOVERED),
            _alert("a2", "9", ny + 1, "x1", 300, A.DISPOSITION_RECOVERED),
            _alert("a3", "9", ny + 2, "x2", 200, A.DISPOSITION_FALSE_ALERT),
            _alert("a4", "9", ny + 3, "x3", 100),
            _alert("b1", "12", berlin, "y1", 700, A.DISPOSITION_FALSE_ALERT),
            _alert("b2", "12", berlin + 1, "y2", 250, A.DISPOSITION_SHOPPER_CORRECTED),
            _alert("b3", "12", berlin + 2, "y3", 999, state=A.ALERT_STATE_WITHDRAWN),
            # The day before, in store 9's time: the previous period.
            _alert("p1", "9", ny - DAY, "z1", 400, A.DISPOSITION_FALSE_ALERT),
        ]
        await store.ingest("f", domain(as_records(live + alerts)))
        reports = Reports(store.reader, config)

        rows = await reports.store_comparison(
            ReportFilter(), region="east", local_days=("2017-10-01", "2017-10-02")
        )
        by_id = {r.store_id: r for r in rows}
        assert sorted(by_id) == ["12", "9"]  # the west store is not in the region

        txn9, items9, keyed9 = _counted(POSLOG)
        txn12, items12, keyed12 = _counted(second)
        txn12, items12, keyed12 = txn12 + 1, items12 + 3, keyed12 + 1  # the live lane
        s9, s12 = by_id["9"], by_id["12"]
        assert (s9.name, s9.timezone, s12.name) == (
            "Springfield",
            "America/New_York",
            "Berlin Mitte",
        )
        assert s9.current.start_ms == _at("2017-10-01T00:00:00", "America/New_York")
        assert s12.current.start_ms == _at("2017-10-01T00:00:00", "Europe/Berlin")
        assert (s9.current.transactions, s12.current.transactions) == (txn9, txn12)
        assert s9.current.keyed_entry_rate == pytest.approx(keyed9 / items9)
        assert s12.current.keyed_entry_rate == pytest.approx(keyed12 / items12)
        # Store 9: 4 alerts, 3 resolved of which 1 false; 900 at risk; 1 transaction confirmed.
        assert (s9.current.alerts, s9.current.precision) == (4, pytest.approx(2 / 3))
        assert s9.current.at_risk_minor == 900 and s9.current.currency == "USD"
        assert s9.current.shrink_per_1000_minor == pytest.approx(900 * 1000 / txn9)
        assert s9.current.false_alerts_per_100_honest == pytest.approx(100 / (txn9 - 1))
        # Store 12: the withdrawn alert counts for nothing.
        assert (s12.current.alerts, s12.current.precision) == (2, pytest.approx(0.5))
        assert s12.current.shrink_per_1000_minor == pytest.approx(250 * 1000 / txn12)
        assert s12.current.false_alerts_per_100_honest == pytest.approx(100 / (txn12 - 1))
        lanes9 = [r for r in await reports.lane_rows(ReportFilter(store_ids=("9",)))]
        assert s9.current.health_score == pytest.approx(
            sum(r.health_score for r in lanes9) / len(lanes9), abs=0.05
        )
        # The previous period: store 9's day before holds one false alert and no sales.
        assert s9.previous is not None and s9.previous.transactions == 0
        assert (s9.previous.alerts, s9.previous.precision) == (1, 0.0)
        assert s9.previous.shrink_per_1000_minor is None  # n/a, not 0
        assert s9.previous.keyed_entry_rate is None
        assert s12.previous is not None and s12.previous.precision is None

        # One UTC range for every store: 18:00Z onwards holds New York's afternoon (19:15Z)
        # but not Berlin's (13:15Z); the previous period is the six hours before.
        start = int(datetime(2017, 10, 1, 18, tzinfo=UTC).timestamp() * 1000)
        rows = await reports.store_comparison(ReportFilter(start_ms=start, end_ms=start + 6 * HOUR))
        by_id = {r.store_id: r for r in rows}
        assert sorted(by_id) == ["12", "30", "9"]
        assert by_id["9"].current.transactions == txn9
        assert by_id["12"].current.transactions == 0
        assert by_id["12"].previous.transactions == txn12  # 13:15Z and the live lane at 16:00Z
        assert by_id["30"].current.health_score is None and by_id["30"].current.alerts == 0
        with pytest.raises(InvalidArgument, match="local_days"):
            await reports.store_comparison(ReportFilter(), local_days=("2017-10-02", "2017-10-01"))
    finally:
        await store.close()
