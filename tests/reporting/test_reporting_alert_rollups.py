"""Alert rollups: reports read them, and they equal what the alert rows say, however the
alerts were revised (twice, out of order, resent) and whatever the range; and the lane
state the ingest path writes by hand."""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict

from lanesight.reporting import convert
from lanesight.reporting.alert_rollups import rebuild_alert_rollups
from lanesight.reporting.facts import LaneState
from lanesight.reporting.model import PageRequest, ReportFilter
from lanesight.reporting.reports import Reports
from lanesight.v1 import alerts_pb2

from tests.reporting.reporting_builders import HOUR, T0_MS, alert, as_records, money, query

ALL = PageRequest(page_size=1000)
A = alerts_pb2
_STATES = {
    "open": A.ALERT_STATE_OPEN,
    "acknowledged": A.ALERT_STATE_ACKNOWLEDGED,
    "resolved": A.ALERT_STATE_RESOLVED,
    "withdrawn": A.ALERT_STATE_WITHDRAWN,
}
_DISPOSITIONS = {
    "unspecified": A.DISPOSITION_UNSPECIFIED,
    "recovered": A.DISPOSITION_RECOVERED,
    "false_alert": A.DISPOSITION_FALSE_ALERT,
    "shopper_corrected": A.DISPOSITION_SHOPPER_CORRECTED,
}
_TYPES = [A.ALERT_TYPE_MISSED_SCAN, A.ALERT_TYPE_WEIGHT_MISMATCH]


def revision(alert_id: str, number: int, raised_ms: int, **kw) -> alerts_pb2.Alert:
    """An alert revision of lane s1/1 (the builder's defaults) with a transaction."""
    txn = kw.pop("transaction_id", "")
    message = alert(alert_id, number, kw.pop("store", "s1"), "1", kw.pop("type_", _TYPES[0]),
                    raised_ms, **kw)  # fmt: skip
    message.transaction_id = txn
    return message


async def ingest(store, alerts, sender: str = "f") -> None:
    records = as_records(alerts, await store.acked_sequence(sender) + 1)
    await store.ingest(sender, [convert.record_from_proto(r) for r in records])


async def test_an_alert_revised_twice_counts_once(store):
    reports = Reports(store.reader, store.config)
    raised = T0_MS + 10 * 60_000
    risk = money(500)
    opened = revision("X", 1, raised, at_risk=risk, transaction_id="t1")
    acked = revision(
        "X", 2, raised, at_risk=risk, state=A.ALERT_STATE_ACKNOWLEDGED, acked_ms=raised + 4000
    )
    acked.transaction_id = "t1"
    false = revision(
        "X",
        3,
        raised,
        at_risk=risk,
        state=A.ALERT_STATE_RESOLVED,
        disposition=A.DISPOSITION_FALSE_ALERT,
        acked_ms=raised + 4000,
        resolved_ms=raised + 30_000,
        transaction_id="t1",
    )
    await ingest(store, [opened])
    await ingest(store, [acked, opened])  # an old revision resent changes nothing
    await ingest(store, [false, acked])
    for f in (ReportFilter(), ReportFilter(start_ms=raised - 1, end_ms=raised + 1)):
        (row,) = await reports.shrink_rows(f, ["store"])
        assert (row.alerts, row.at_risk_minor, row.currency) == (1, 0, "USD")
        (quality,), _, _ = await reports.alert_quality(f, ALL)
        assert (quality.alerts, quality.resolved, quality.precision) == (1, 1, 0.0)
        assert (quality.acknowledge_p50_ms, quality.resolve_p95_ms) == (4000, 30_000)
        (period,) = [r.current for r in await reports.store_comparison(f)]
        assert (period.alerts, period.false_alerts, period.confirmed_transactions) == (1, 1, 0)
    # The rollup holds one alert net: each revision took back the previous one's counts.
    for table in ("rollup_alert", "rollup_alert_store"):
        sums = await query(store.config, f"SELECT SUM(raised), SUM(entries) FROM {table}")
        assert sums == [(1, 1)]
    assert await query(
        store.config, "SELECT measure, SUM(alerts) FROM rollup_alert_time GROUP BY 1 ORDER BY 1"
    ) == [("acknowledge", 1), ("resolve", 1)]


async def test_a_transaction_counts_once_by_its_first_confirmed_alert(store):
    reports = Reports(store.reader, store.config)
    t = T0_MS + HOUR

    def resolved(alert_id: str, number: int, at: int, disposition) -> alerts_pb2.Alert:
        return revision(
            alert_id,
            number,
            at,
            state=A.ALERT_STATE_RESOLVED,
            disposition=disposition,
            resolved_ms=at + 1000,
            transaction_id="t9",
        )

    await ingest(
        store,
        [
            resolved("A", 1, t, A.DISPOSITION_RECOVERED),
            resolved("B", 1, t + 2 * HOUR, A.DISPOSITION_RECOVERED),
        ],
    )

    async def confirmed(f: ReportFilter) -> int:
        return sum(r.current.confirmed_transactions for r in await reports.store_comparison(f))

    assert await confirmed(ReportFilter()) == 1
    assert await confirmed(ReportFilter(start_ms=t, end_ms=t + HOUR)) == 1
    assert await confirmed(ReportFilter(start_ms=t + HOUR, end_ms=t + 3 * HOUR)) == 0
    # A turns out a false alert: B now counts the transaction, in B's hour.
    await ingest(store, [resolved("A", 2, t, A.DISPOSITION_FALSE_ALERT)])
    assert await confirmed(ReportFilter()) == 1
    assert await confirmed(ReportFilter(start_ms=t, end_ms=t + HOUR)) == 0
    assert await confirmed(ReportFilter(start_ms=t + HOUR, end_ms=t + 3 * HOUR)) == 1
    flags = await query(
        store.config, "SELECT alert_id, counts_transaction FROM alerts ORDER BY alert_id"
    )
    assert flags == [("A", 0), ("B", 1)]


def _random_alerts(rng: random.Random) -> list[list[alerts_pb2.Alert]]:
    """Batches of revisions of 60 alerts over 60 hours, each alert revised up to four
    times, revisions shuffled across batches and some resent."""
    revisions = []
    for n in range(60):
        raised = T0_MS + rng.randrange(60 * HOUR)
        store = rng.choice(["s1", "s2"])
        type_ = rng.choice(_TYPES)
        txn = rng.choice(["", "t1", "t2", f"t{n}"])
        for number in range(1, rng.randint(1, 4) + 1):
            state = rng.choice(list(_STATES))
            disposition = rng.choice(list(_DISPOSITIONS)) if state == "resolved" else "unspecified"
            currency = rng.choice(["USD", "USD", "EUR", None])
            recovered = rng.choice([None, "USD", "EUR"]) if state == "resolved" else None
            acked = raised + rng.randrange(1, 90_000) if state != "open" else None
            message = revision(
                f"a{n}",
                number,
                raised,
                store=store,
                type_=type_,
                at_risk=money(rng.randrange(1, 900), currency) if currency else None,
                recovered=money(rng.randrange(1, 300), recovered) if recovered else None,
                state=_STATES[state],
                disposition=_DISPOSITIONS[disposition],
                acked_ms=acked,
                resolved_ms=acked + rng.randrange(1, 600_000) if state == "resolved" else None,
                category=rng.choice(["produce", "dairy"]),
                rule=rng.choice(["r1", "r2"]),
                transaction_id=txn,
            )
            revisions.append(message)
    rng.shuffle(revisions)
    batches = [revisions[i : i + 25] for i in range(0, len(revisions), 25)]
    batches.append(rng.sample(revisions, 20))  # resent: stored already
    return batches


def _expected(rows: list[dict], f: ReportFilter, by_lane: bool = True):
    """Shrink per (lane or store, hour of day, category, currency), alert quality per (type,
    rule) and the store comparison's alert figures, counted here from the alert rows."""
    inside = [
        r
        for r in rows
        if (f.start_ms is None or r["raised_ms"] >= f.start_ms)
        and (f.end_ms is None or r["raised_ms"] < f.end_ms)
        and (not f.lane_ids or r["lane_id"] in f.lane_ids)
    ]
    shrink: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    quality: dict[tuple, dict] = defaultdict(
        lambda: {"n": 0, "res": 0, "false": 0, "ack": [], "done": []}
    )
    stores: dict[str, list] = defaultdict(lambda: [0, 0, 0, set(), Counter()])
    for r in inside:
        where = f"{r['store_id']}/{r['lane_id']}" if by_lane else r["store_id"]
        key = (where, f"{r['local_hour']:02d}", r["category"])
        withdrawn = r["state"] == "withdrawn"
        risk_cur = r["at_risk_currency"] or ""
        row = shrink[(*key, risk_cur)]
        row[0] += 0 if withdrawn else 1
        if r["disposition"] != "false_alert" and not withdrawn:
            row[1] += r["at_risk_minor"] or 0
        if r["recovered_currency"] is not None:
            shrink[(*key, r["recovered_currency"])][2] += r["recovered_minor"]
        resolved = r["state"] == "resolved" and r["disposition"] != "unspecified"
        q = quality[(r["type"], r["rule"])]
        q["n"] += 1
        q["res"] += resolved
        q["false"] += resolved and r["disposition"] == "false_alert"
        if r["acknowledged_ms"] is not None:
            q["ack"].append(r["acknowledged_ms"] - r["raised_ms"])
        if r["resolved_ms"] is not None:
            q["done"].append(r["resolved_ms"] - r["raised_ms"])
        s = stores[r["store_id"]]
        s[0] += not withdrawn
        s[1] += resolved
        s[2] += resolved and r["disposition"] == "false_alert"
        if resolved and r["disposition"] != "false_alert" and r["transaction_id"]:
            s[3].add((r["lane_id"], r["transaction_id"]))
    return shrink, quality, stores


def _nearest_rank(values: list[int], pct: int) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(pct / 100 * len(ordered))) - 1] if ordered else 0


async def test_reports_equal_counts_from_the_alert_rows_whatever_the_range(store):
    rng = random.Random(5)
    for batch in _random_alerts(rng):
        await ingest(store, batch, sender=rng.choice(["f1", "f2"]))
    reports = Reports(store.reader, store.config)
    names = [
        "alert_id", "store_id", "lane_id", "transaction_id", "type", "rule", "category",
        "state", "disposition", "raised_ms", "acknowledged_ms", "resolved_ms", "local_hour",
        "at_risk_minor", "at_risk_currency", "recovered_minor", "recovered_currency",
    ]  # fmt: skip
    rows = [
        dict(zip(names, r, strict=True))
        for r in await query(store.config, f"SELECT {', '.join(names)} FROM alerts")
    ]
    assert len(rows) == 60
    ranges = [
        ReportFilter(),
        ReportFilter(start_ms=T0_MS + 3 * HOUR + 1234, end_ms=T0_MS + 17 * HOUR - 77),
        ReportFilter(start_ms=T0_MS + 5 * HOUR, end_ms=T0_MS + 9 * HOUR),
        ReportFilter(start_ms=T0_MS + 20 * HOUR + 60_000, end_ms=T0_MS + 20 * HOUR + 2_000_000),
        # A whole UTC day inside, partial days at both ends (the time histogram's days).
        ReportFilter(start_ms=T0_MS + 2 * HOUR + 5, end_ms=T0_MS + 50 * HOUR + 7),
        ReportFilter(lane_ids=("1",), start_ms=T0_MS + HOUR),
    ]
    for f in ranges:
        _, quality, stores = _expected(rows, f)
        for by_lane, first in ((True, "lane"), (False, "store")):
            shrink = _expected(rows, f, by_lane)[0]
            got = {
                (*r.keys, r.currency): [r.alerts, r.at_risk_minor, r.recovered_minor]
                for r in await reports.shrink_rows(f, [first, "hour_of_day", "category"])
            }
            # The report folds a group's moneyless alerts into its only currency: so here.
            for key in [k for k in shrink if k[-1] == ""]:
                priced = [k for k in shrink if k[:-1] == key[:-1] and k[-1] != ""]
                if len(priced) == 1:
                    shrink[priced[0]][0] += shrink.pop(key)[0]
            assert got == dict(shrink)
        got_quality, _, _ = await reports.alert_quality(f, ALL)
        assert {
            (q.type, q.rule): (
                (q.alerts, q.resolved),
                (q.acknowledge_p50_ms, q.acknowledge_p95_ms, q.resolve_p50_ms, q.resolve_p95_ms),
            )
            for q in got_quality
        } == {
            k: (
                (v["n"], v["res"]),
                tuple(_nearest_rank(v[m], p) for m in ("ack", "done") for p in (50, 95)),
            )
            for k, v in quality.items()
        }
        for row in await reports.store_comparison(f):
            alerts, resolved, false, confirmed, _ = stores[row.store_id]
            period = row.current
            assert (period.alerts, period.resolved, period.false_alerts) == (
                alerts,
                resolved,
                false,
            )
            if f.start_ms is None:  # a range may split a transaction's confirmed alerts
                assert period.confirmed_transactions == len(confirmed)
    # What ingest maintained equals a rebuild from the alert rows.
    counters = (
        "raised, alerts, resolved, false_alerts, corrected, priced, confirmed_transactions, "
        "at_risk_minor, recovered_minor"
    )
    rollups = [
        "SELECT store_id, lane_id, bucket_ms, local_day, local_hour, type, rule, category, "
        f"currency, {counters} FROM rollup_alert WHERE entries != 0 ORDER BY 1, 2, 3, 4, 5, "
        "6, 7, 8, 9",
        "SELECT store_id, bucket_ms, local_day, local_hour, type, rule, category, currency, "
        f"{counters} FROM rollup_alert_store WHERE entries != 0 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8",
        "SELECT * FROM rollup_alert_time WHERE alerts != 0 ORDER BY 1, 2, 3, 4, 5, 6",
    ]
    kept = [await query(store.config, sql) for sql in rollups]
    assert all(kept)
    async with store.write_transaction() as db:
        await rebuild_alert_rollups(db, page_size=7)  # reads the alerts in pages
    assert [await query(store.config, sql) for sql in rollups] == kept


def test_lane_state_json_holds_every_field():
    # to_json is written by hand (asdict is slow on the ingest path): it must not miss one.
    state = LaneState(
        operator_id="op",
        transaction_id="t",
        transaction_operator="op2",
        tender_started=True,
        reads_since_item=2,
        no_reads_since_item=1,
        faults={"scale:s": "not_zeroed"},
    )
    assert set(json.loads(state.to_json())) == set(LaneState.__slots__)
    assert LaneState.from_json(state.to_json()) == state


async def test_percentiles_come_from_the_rows_when_the_histogram_is_out_of_step(store):
    # As when a revision commits between the histogram read and the band read: every
    # count sits a doubling too high, so the band read finds nothing there.
    raised = T0_MS + HOUR
    await ingest(store, [revision("Y", 1, raised, state=A.ALERT_STATE_ACKNOWLEDGED,
                                  acked_ms=raised + 4321)])  # fmt: skip
    async with store.write_transaction() as db:
        await db.execute("UPDATE rollup_alert_time SET band = band + 8")
    reports = Reports(store.reader, store.config)
    (row,), _, _ = await reports.alert_quality(ReportFilter(), ALL)
    assert (row.acknowledge_p50_ms, row.acknowledge_p95_ms) == (4321, 4321)
