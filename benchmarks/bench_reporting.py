"""Reporting benchmark: events ingested per second against bare executemany, and report
latency over about a million generated events. Run: .venv/bin/python benchmarks/bench_reporting.py
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
from lanesight.common.config import LanesightConfig
from lanesight.common.server import start_server
from lanesight.reporting import convert
from lanesight.reporting.app import create_app
from lanesight.reporting.config import ReportingConfig
from lanesight.reporting.exports import export_report
from lanesight.reporting.localtime import LocalTime
from lanesight.reporting.model import PageRequest, ReportFilter
from lanesight.reporting.reports import Reports
from lanesight.reporting.store import ReportStore
from lanesight.v1 import common_pb2, events_pb2, reporting_pb2, reporting_pb2_grpc
from stdnum import ean

T0_MS = 1_709_542_800_000


def usd(minor: int) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=minor, currency_code="USD")


DAY_MS = 86_400_000
E = events_pb2


def lane_events(count: int, lanes: int = 20) -> list[events_pb2.LaneEvent]:
    """A realistic mix: per transaction a start, ten scanned items (read + added), an
    occasional no-read and keyed item, tender and end."""
    rng = random.Random(7)
    events: list[events_pb2.LaneEvent] = []
    sequences = [0] * lanes
    txn = 0
    while len(events) < count:
        lane = txn % lanes
        txn += 1
        t = T0_MS + txn * 30_000
        txn_id = f"t{txn}"

        def add(offset_ms: int, txn_id: str = txn_id, lane: int = lane, t: int = t, **payload):
            sequences[lane] += 1
            ((name, message),) = payload.items()
            event = events_pb2.LaneEvent(
                event_id=str(uuid.uuid4()),
                store_id="s1",
                lane_id=str(lane),
                sequence=sequences[lane],
                transaction_id=txn_id,
                source_device_id="bench",
                lane_time=convert.ms_ts(t + offset_ms),
            )
            getattr(event, name).CopyFrom(message)
            events.append(event)

        add(0, transaction_started=E.TransactionStarted(operator_id=f"op{lane}"))
        for n in range(10):
            if rng.random() < 0.05:
                add(n * 1000 + 1, scanner_no_read=E.ScannerNoRead(scanner_id="sc"))
            body = f"{rng.randrange(10**12):013d}"
            gtin = body + ean.calc_check_digit(body)  # valid, as the validator requires
            keyed = rng.random() < 0.03
            if not keyed:
                add(n * 1000 + 2, barcode_read=E.BarcodeRead(gtin=gtin))
            add(
                n * 1000 + 3,
                item_added=E.ItemAdded(
                    line_id=str(n),
                    gtin=gtin,
                    quantity=1,
                    entry_method=E.ENTRY_METHOD_KEYED if keyed else E.ENTRY_METHOD_SCANNED,
                    unit_price=usd(199),
                    extended_price=usd(199),
                ),
            )
        add(11_000, tender_started=E.TenderStarted(total=usd(1990)))
        add(
            12_000,
            tender_completed=E.TenderCompleted(tender_type=E.TENDER_TYPE_CARD, amount=usd(1990)),
        )
        add(13_000, transaction_ended=E.TransactionEnded(total=usd(1990), item_count=10))
    return events[:count]


def bare_executemany(path: Path, rows: list[tuple], batch: int) -> float:
    """Seconds to insert the raw event rows alone, batch by batch, as the baseline."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(
        "CREATE TABLE events (event_id TEXT NOT NULL UNIQUE, store_id TEXT NOT NULL, "
        "lane_id TEXT NOT NULL, sequence INTEGER NOT NULL, time_ms INTEGER NOT NULL, "
        "transaction_id TEXT NOT NULL, kind TEXT NOT NULL, source_device_id TEXT NOT NULL, "
        "raw BLOB)"
    )
    conn.execute("CREATE INDEX events_time ON events(time_ms)")
    start = time.perf_counter()
    for offset in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows[offset : offset + batch],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


async def bench_ingest(folder: Path, count: int, batch: int) -> list[tuple[str, float, str]]:
    protos = lane_events(count)
    records = [
        convert.record_from_proto(reporting_pb2.ReportRecord(record_sequence=i, event=e))
        for i, e in enumerate(protos, 1)
    ]
    rows = [
        (
            r.event.event_id,
            r.event.store_id,
            r.event.lane_id,
            r.event.sequence,
            r.event.time_ms,
            r.event.transaction_id,
            r.event.kind,
            r.event.source_device_id,
            r.event.raw,
        )
        for r in records
    ]
    baseline_s = bare_executemany(folder / "baseline.db", rows, batch)

    config = ReportingConfig(db_path=folder / "ingest.db", batch_size=batch, retention_interval_s=0)
    store = await ReportStore.open(config)
    start = time.perf_counter()
    for offset in range(0, len(records), batch):
        await store.ingest("bench", records[offset : offset + batch])
    store_s = time.perf_counter() - start
    await store.close()

    service = LanesightConfig(
        reporting=ReportingConfig(
            db_path=folder / "grpc.db", batch_size=batch, retention_interval_s=0
        )
    )
    running = await start_server(create_app(service), service, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = reporting_pb2_grpc.ReportingServiceStub(channel)
            call = stub.IngestRecords(timeout=600)
            requests = [
                reporting_pb2.IngestRecordsRequest(
                    sender_id="bench",
                    records=[
                        reporting_pb2.ReportRecord(record_sequence=i, event=e)
                        for i, e in enumerate(protos[offset : offset + batch], offset + 1)
                    ],
                )
                for offset in range(0, len(protos), batch)
            ]
            start = time.perf_counter()
            for request in requests:
                await call.write(request)
                await call.read()
            grpc_s = time.perf_counter() - start
            await call.done_writing()
    finally:
        await running.stop()

    base_rate = count / baseline_s
    return [
        ("bare executemany of the event rows (baseline)", base_rate, "events/s"),
        ("store.ingest: events + derived facts", count / store_s, "events/s"),
        ("IngestRecords over gRPC, end to end", count / grpc_s, "events/s"),
    ]


def generate(path: Path, events: int, lanes: int = 50, days: int = 30) -> dict[str, int]:
    """Fill a store's tables with executemany: ~``events`` raw events and their facts."""
    local_time = LocalTime()
    rng = random.Random(11)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    per_txn = 24  # start, 10 x (read, item), no-reads, tender x2, end
    transactions = events // per_txn
    span_ms = days * DAY_MS
    raw = b"\x0a\x24" + b"x" * 40
    event_rows, txn_rows, item_rows, pos_rows, incident_rows = [], [], [], [], []
    counter = 0
    for txn in range(transactions):
        lane = str(txn % lanes)
        t = T0_MS + txn * span_ms // transactions
        day = local_time.day(t)
        operator = f"op{txn % (lanes * 3)}"
        txn_id = f"t{txn}"
        txn_rows.append(
            (
                "s1",
                lane,
                txn_id,
                t,
                day,
                operator,
                "sale",
                0,
                t,
                t + 11_000,
                t + 13_000,
                "completed",
                1990,
                "USD",
                10,
                "lane",
            )
        )
        for n in range(per_txn):
            counter += 1
            event_rows.append(
                (f"e{counter:010d}", "s1", lane, counter, t + n * 500, txn_id, "k", "b", raw)
            )
        for n in range(10):
            keyed = rng.random() < 0.03
            item_rows.append(
                (
                    f"i{txn}-{n}",
                    "s1",
                    lane,
                    txn_id,
                    str(n),
                    t + n * 1000,
                    day,
                    operator,
                    f"{rng.randrange(5000):014d}",
                    "ITEM",
                    "keyed" if keyed else "scanned",
                    1,
                    0,
                    0,
                    199,
                    "USD",
                    None if keyed else int(rng.random() > 0.05),
                    1,
                )
            )
        if rng.random() < 0.2:
            pos_rows.append(
                (
                    f"p{txn}",
                    "s1",
                    lane,
                    txn_id,
                    operator,
                    t + 5000,
                    day,
                    rng.choice(["void", "void", "discount", "no_sale", "price_override"]),
                    int(rng.random() < 0.1),
                    199,
                    "USD",
                )
            )
        if rng.random() < 0.05:
            incident_rows.append(
                (
                    f"n{txn}",
                    "s1",
                    lane,
                    "sc",
                    t + 2000,
                    day,
                    rng.choice(["scanner_no_read", "scale_not_zeroed", "printer_paper_out"]),
                )
            )
    conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", event_rows)
    conn.executemany(f"INSERT INTO transactions VALUES ({','.join('?' * 16)})", txn_rows)
    conn.executemany(f"INSERT INTO items VALUES ({','.join('?' * 18)})", item_rows)
    conn.executemany(f"INSERT INTO pos_events VALUES ({','.join('?' * 11)})", pos_rows)
    conn.executemany(f"INSERT INTO lane_incidents VALUES ({','.join('?' * 7)})", incident_rows)
    alert_rows = []
    types = ["missed_scan", "weight_mismatch", "item_mismatch", "unscanned_item_in_bagging"]
    dispositions = ["recovered", "false_alert", "shopper_corrected", "honest_mistake"]
    for n in range(transactions // 5):
        t = T0_MS + rng.randrange(span_ms)
        day, hour = local_time.day_hour(t)
        disposition = rng.choice(dispositions)
        recovered = 300 if disposition in ("recovered", "shopper_corrected") else None
        alert_rows.append(
            (
                f"a{n}",
                3,
                "s1",
                str(rng.randrange(lanes)),
                "",
                rng.choice(types),
                "unspecified",
                "medium",
                0.8,
                300,
                "USD",
                recovered,
                "USD" if recovered else None,
                "r",
                "a",
                "resolved",
                disposition,
                "attendant",
                t,
                t + 20_000,
                t + 60_000,
                "att",
                "att",
                "",
                1,
                "",
                "",
                "",
                rng.choice(["produce", "dairy", "bakery"]),
                "rule",
                1,
                day,
                hour,
            )
        )
    conn.executemany(f"INSERT INTO alerts VALUES ({','.join('?' * 33)})", alert_rows)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return {
        "events": len(event_rows),
        "transactions": len(txn_rows),
        "items": len(item_rows),
        "alerts": len(alert_rows),
    }


async def timed(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def bench_reports(folder: Path, events: int) -> tuple[dict[str, int], list]:
    config = ReportingConfig(db_path=folder / "reports.db", retention_interval_s=0)
    store = await ReportStore.open(config)
    await store.close()
    start = time.perf_counter()
    sizes = generate(config.db_path, events)
    sizes["generate_s"] = round(time.perf_counter() - start, 1)
    store = await ReportStore.open(config)
    reports = Reports(store.reader, config)
    page = PageRequest(page_size=1000)
    everything = ReportFilter()
    one_day = ReportFilter(start_ms=T0_MS + 10 * DAY_MS, end_ms=T0_MS + 11 * DAY_MS)
    cases = [
        ("shrink by lane, day", lambda: reports.shrink(everything, ["lane", "day"], page)),
        (
            "shrink by hour of day, category",
            lambda: reports.shrink(everything, ["hour_of_day", "category"], page),
        ),
        ("alert quality", lambda: reports.alert_quality(everything, page)),
        ("lane health (all days)", lambda: reports.lane_health(everything, page)),
        ("lane health (one day)", lambda: reports.lane_health(one_day, page)),
        ("POS exceptions (all days)", lambda: reports.pos_exceptions(everything, page)),
        ("POS exceptions (one day)", lambda: reports.pos_exceptions(one_day, page)),
        (
            "list alerts, first page of 100",
            lambda: reports.list_alerts(everything, "unspecified", PageRequest(100)),
        ),
        (
            "HTML page, every report",
            lambda: export_report(reports, "all", "html", everything, [], T0_MS),
        ),
    ]
    results = []
    try:
        for name, fn in cases:
            results.append((name, await timed(fn)))
    finally:
        await store.close()
    return sizes, results


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ingest-events", type=int, default=30_000)
    parser.add_argument("--report-events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-reporting-") as tmp:
        folder = Path(tmp)
        ingest = await bench_ingest(folder, args.ingest_events, args.batch)
        sizes, reports = await bench_reports(folder, args.report_events)
    baseline = ingest[0][1]
    print(
        f"\nIngest ({args.ingest_events:,} lane events, {args.batch} per transaction, "
        "WAL, synchronous=FULL)"
    )
    print(f"{'path':<48} {'events/s':>12} {'vs baseline':>12}")
    for name, rate, _ in ingest:
        print(f"{name:<48} {rate:>12,.0f} {rate / baseline:>12.2f}")
    print(
        f"\nReports over {sizes['events']:,} events ({sizes['transactions']:,} transactions, "
        f"{sizes['items']:,} items, {sizes['alerts']:,} alerts; generated in "
        f"{sizes['generate_s']} s), median of 3"
    )
    print(f"{'report':<48} {'ms':>12}")
    for name, ms in reports:
        print(f"{name:<48} {ms:>12,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
