"""Reporting benchmark: events ingested per second against bare executemany, and report
latency as history grows (1 M, 3 M, 10 M events) on SQLite and PostgreSQL, against a bare
aggregate query in the same run and database.

Run: .venv/bin/python benchmarks/bench_reporting.py [--report-events 1e6,3e6,1e7]
     .venv/bin/python benchmarks/bench_reporting.py --ingest-only --rounds 5   (seconds)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import multiprocessing
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
from lanesight.common.config import LanesightConfig
from lanesight.common.server import start_server
from lanesight.fusion.config import FusionConfig
from lanesight.fusion.forwarder import ReportingForwarder
from lanesight.reporting import convert
from lanesight.reporting.alert_rollups import rebuild_alert_rollups
from lanesight.reporting.app import create_app
from lanesight.reporting.config import ReportingConfig
from lanesight.reporting.exports import export_report
from lanesight.reporting.localtime import LocalTime
from lanesight.reporting.model import EVENT_ROW_COLUMNS, PageRequest, ReportFilter
from lanesight.reporting.reports import Reports
from lanesight.reporting.rollups import rebuild_rollups
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


async def bench_ingest(
    folder: Path, count: int, batch: int, workers: str = "auto"
) -> list[tuple[str, float, float]]:
    """One round: (path, events/s, events/s of the baseline run just before that path).

    The baseline runs again right before each path, so a ratio compares two runs seconds
    apart rather than one baseline with paths measured up to a minute later on a machine
    whose load changes.
    """
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
    baselines = itertools.count(1)

    def baseline_rate() -> float:
        return count / bare_executemany(folder / f"baseline-{next(baselines)}.db", rows, batch)

    results = []
    base = baseline_rate()
    results.append(("bare executemany of the event rows (baseline)", base, base))
    base = baseline_rate()
    config = ReportingConfig(db_path=folder / "ingest.db", batch_size=batch, retention_interval_s=0)
    store = await ReportStore.open(config)
    start = time.perf_counter()
    for offset in range(0, len(records), batch):
        await store.ingest("bench", records[offset : offset + batch])
    store_s = time.perf_counter() - start
    # The facts and rollups are derived behind the ack: until they are all there.
    await projected(store)
    store_projected_s = time.perf_counter() - start
    await store.close()
    results.append(("store.ingest: acknowledged", count / store_s, base))
    results.append(
        ("store.ingest: until facts + rollups projected", count / store_projected_s, base)
    )

    base = baseline_rate()
    grpc_s, grpc_projected_s = await ingest_over_grpc(
        folder / "grpc.db", protos, batch, workers=workers
    )
    results.append(("IngestRecords, as fusion sends: acknowledged", count / grpc_s, base))
    results.append(
        ("IngestRecords, as fusion sends: until projected", count / grpc_projected_s, base)
    )
    base = baseline_rate()
    own_s, own_projected_s = await ingest_over_grpc(
        folder / "own.db", protos, batch, workers=workers, own_process=True
    )
    results.append(("IngestRecords, fusion's own process: acknowledged", count / own_s, base))
    results.append(
        ("IngestRecords, fusion's own process: until projected", count / own_projected_s, base)
    )
    base = baseline_rate()
    lockstep_s, _ = await ingest_over_grpc(
        folder / "lockstep.db", protos, batch, lockstep=True, workers=workers
    )
    results.append(("IngestRecords, each ack awaited: acknowledged", count / lockstep_s, base))
    return results


def workers_setting(workers: str) -> dict[str, object]:
    """The ingest_workers setting, for code that has it (the script also measures the
    code before it)."""
    if "ingest_workers" not in ReportingConfig.model_fields:
        return {}
    return {"ingest_workers": workers if workers == "auto" else int(workers)}


def _sender_process(address: str, batch: int, payloads: list[bytes], conn) -> None:
    """Fusion's side in a process of its own, as deployed: queue the events in a
    ReportingForwarder, say "ready", and on "go" send them all, reporting the seconds
    until every one is acknowledged."""
    asyncio.run(_send_all(address, batch, payloads, conn))


async def _send_all(address: str, batch: int, payloads: list[bytes], conn) -> None:
    protos = [events_pb2.LaneEvent.FromString(p) for p in payloads]
    config = LanesightConfig(fusion=FusionConfig(forward_batch_max=batch, sender_id="bench"))
    forwarder = ReportingForwarder(config, address)
    forwarder.add_events(protos)
    conn.send("ready")
    conn.recv()
    start = time.perf_counter()
    await forwarder.start()
    try:
        while forwarder.pending:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
        conn.send(time.perf_counter() - start)
    finally:
        await forwarder.stop()


async def ingest_over_grpc(
    path: Path,
    protos: list[events_pb2.LaneEvent],
    batch: int,
    lockstep: bool = False,
    workers: str = "auto",
    own_process: bool = False,
) -> tuple[float, float]:
    """Seconds until every event is acknowledged over gRPC, and until it is projected.

    By default the records go out as fusion sends them: through its ReportingForwarder,
    which sends request after request without waiting for acks (what it holds after a
    reconnect; encoded before the clock starts, as fusion encodes on queueing), here in
    the reporting service's own process and event loop. With ``own_process`` the
    forwarder runs in a process of its own, as fusion does when deployed (the clock is
    the sender's, from "go" to the last ack). With ``lockstep`` a plain client waits for
    each ack before the next request (the figure earlier rounds measured).
    """
    service = LanesightConfig(
        reporting=ReportingConfig(
            db_path=path, batch_size=batch, retention_interval_s=0, **workers_setting(workers)
        ),
        fusion=FusionConfig(forward_batch_max=batch, sender_id="bench"),
    )
    app = create_app(service)
    running = await start_server(app, service, port=0)
    address = f"127.0.0.1:{running.port}"
    # The service's check workers start with the first ingest stream and check nothing
    # until they run (a second or so): started before the clock, as in a running service.
    checker = getattr(app, "ingest_checker", None)
    if checker is not None:
        await checker.ready()
    try:
        if own_process:
            context = multiprocessing.get_context("spawn")
            ours, theirs = context.Pipe()
            payloads = [e.SerializeToString() for e in protos]
            sender = context.Process(
                target=_sender_process, args=(address, batch, payloads, theirs), daemon=True
            )
            sender.start()
            try:
                # (Waiting on the pipe in a thread keeps this loop serving the stream.)
                await asyncio.to_thread(ours.recv)
                start = time.perf_counter()
                ours.send("go")
                acked_s = await asyncio.to_thread(ours.recv)
                await projected(app.store)
                projected_s = time.perf_counter() - start
            finally:
                await asyncio.to_thread(sender.join, 30)
            return acked_s, projected_s
        if lockstep:
            async with grpc.aio.insecure_channel(address) as channel:
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
                acked_s = time.perf_counter() - start
                await projected(app.store)
                projected_s = time.perf_counter() - start
                await call.done_writing()
            return acked_s, projected_s
        forwarder = ReportingForwarder(service, address)
        forwarder.add_events(protos)
        start = time.perf_counter()
        await forwarder.start()
        try:
            # The forwarder has no event for "all acknowledged": a 1 ms poll costs at most 1 ms.
            while forwarder.pending:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            acked_s = time.perf_counter() - start
            await projected(app.store)
            projected_s = time.perf_counter() - start
        finally:
            await forwarder.stop()
        return acked_s, projected_s
    finally:
        await running.stop()


async def projected(store) -> None:
    """Wait for the projector (code from before it derived facts in the ack: nothing)."""
    wait = getattr(store, "projected", None)
    if wait is not None:
        await wait()


def generate_chunks(
    events: int, first_txn: int = 0, lanes: int = 50, days: int = 30, chunk: int = 20_000
):
    """Rows of ~``events`` raw events and their facts, spread over ``days``, in chunks.

    Yields (table, rows) pairs; transaction numbers start at ``first_txn`` so that a
    database can grow (1 M, then 3 M, then 10 M events over the same days: denser history).
    Rows are valid for both backends (SQLite and PostgreSQL).
    """
    local_time = LocalTime()
    rng = random.Random(11 + first_txn)
    per_txn = 24  # start, 10 x (read, item), no-reads, tender x2, end
    transactions = events // per_txn
    span_ms = days * DAY_MS
    raw = b"\x0a\x24" + b"x" * 40
    tables: dict[str, list[tuple]] = defaultdict(list)
    for number in range(transactions):
        txn = first_txn + number
        lane = str(txn % lanes)
        # Interleave the growth steps: step n's transactions sit between the earlier ones.
        t = T0_MS + (number * span_ms // transactions + (first_txn % 997) * 7) % span_ms
        day = local_time.day(t)
        operator = f"op{txn % (lanes * 3)}"
        txn_id = f"t{txn}"
        tables["transactions"].append(
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
            event = txn * per_txn + n
            tables["events"].append(
                (f"e{event:011d}", "s1", lane, event, t + n * 500, txn_id, "k", "b", raw)
            )
        for n in range(10):
            keyed = rng.random() < 0.03
            tables["items"].append(
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
            tables["pos_events"].append(
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
            tables["lane_incidents"].append(
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
        if number % 5 == 0:
            tables["alerts"].append(_alert_row(rng, local_time, f"a{txn}", lanes, span_ms))
        if len(tables["events"]) >= chunk:
            yield from tables.items()
            tables.clear()
    yield from tables.items()


def _alert_row(rng, local_time, alert_id: str, lanes: int, span_ms: int) -> tuple:
    types = ["missed_scan", "weight_mismatch", "item_mismatch", "unscanned_item_in_bagging"]
    dispositions = ["recovered", "false_alert", "shopper_corrected", "honest_mistake"]
    t = T0_MS + rng.randrange(span_ms)
    day, hour = local_time.day_hour(t)
    disposition = rng.choice(dispositions)
    recovered = 300 if disposition in ("recovered", "shopper_corrected") else None
    # Times to acknowledge and resolve to the millisecond, as attendants take them: the
    # time rollup keeps exact durations, so it gains nothing from repeated values.
    acknowledged = t + rng.randrange(2_000, 120_000)
    resolved = acknowledged + rng.randrange(5_000, 600_000)
    return (
        alert_id,
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
        acknowledged,
        resolved,
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
        0,  # counts_transaction: set by rebuild_alert_rollups
    )


_COLUMNS = {
    "events": 9,
    "transactions": 16,
    "items": 18,
    "pos_events": 11,
    "lane_incidents": 7,
    "alerts": 34,
}


# Tables whose generated rows fill only some columns: the raw events come with their facts
# already made (no ingest_seq: nothing for the projector).
_NAMED = {"events": [column for column in EVENT_ROW_COLUMNS if column != "data"]}


async def load(store: ReportStore, events: int, first_txn: int) -> dict[str, int]:
    """Append generated rows to the store's tables, then recompute the rollups."""
    counts: dict[str, int] = defaultdict(int)
    if store.dialect.name == "sqlite":
        conn = sqlite3.connect(store.config.db_path, isolation_level=None)
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("BEGIN")
        for table, rows in generate_chunks(events, first_txn):
            marks = ",".join("?" * _COLUMNS[table])
            names = f"({', '.join(_NAMED[table])})" if table in _NAMED else ""
            conn.executemany(f"INSERT INTO {table} {names} VALUES ({marks})", rows)
            counts[table] += len(rows)
        conn.execute("COMMIT")
        conn.close()
    else:
        import asyncpg

        async with store.write_transaction() as db:
            await store._ensure_partitions(db, [T0_MS, T0_MS + 31 * DAY_MS])
        conn = await asyncpg.connect(store.config.database_url)
        try:
            for table, rows in generate_chunks(events, first_txn):
                await conn.copy_records_to_table(table, records=rows, columns=_NAMED.get(table))
                counts[table] += len(rows)
        finally:
            await conn.close()
    async with store.write_transaction() as db:
        await rebuild_rollups(db, store.local_time.day_start_ms)
        await rebuild_alert_rollups(db)
    if store.dialect.name == "sqlite":
        conn = sqlite3.connect(store.config.db_path, isolation_level=None)
        conn.execute("ANALYZE")
        conn.close()
    else:
        await store.reader.execute("ANALYZE")
    return counts


async def timed(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


# The baseline of the report curve: the plain aggregate a report without rollups runs
# (lane-health counters straight from the items rows), in the same run and database.
BARE_AGGREGATE = (
    "SELECT store_id, lane_id, COUNT(*), "
    "SUM(CASE WHEN entry_method = 'scanned' THEN 1 ELSE 0 END), "
    "SUM(CASE WHEN entry_method = 'keyed' THEN 1 ELSE 0 END), SUM(weighed) "
    "FROM items GROUP BY store_id, lane_id"
)


def report_cases(reports: Reports) -> list[tuple[str, object]]:
    page = PageRequest(page_size=1000)
    everything = ReportFilter()
    one_day = ReportFilter(start_ms=T0_MS + 10 * DAY_MS, end_ms=T0_MS + 11 * DAY_MS)
    return [
        ("bare aggregate over items (baseline)", lambda: reports.db.fetchall(BARE_AGGREGATE)),
        ("shrink by lane, day", lambda: reports.shrink(everything, ["lane", "day"], page)),
        ("alert quality", lambda: reports.alert_quality(everything, page)),
        ("lane health (all days)", lambda: reports.lane_health(everything, page)),
        ("lane health (one day)", lambda: reports.lane_health(one_day, page)),
        ("POS exceptions (all days)", lambda: reports.pos_exceptions(everything, page)),
        ("POS exceptions (one day)", lambda: reports.pos_exceptions(one_day, page)),
        ("store comparison", lambda: reports.store_comparison(everything)),
        (
            "list alerts, first page of 100",
            lambda: reports.list_alerts(everything, "unspecified", PageRequest(100)),
        ),
        (
            "HTML page, every report",
            lambda: export_report(reports, "all", "html", everything, [], T0_MS),
        ),
    ]


async def bench_curve(config: ReportingConfig, sizes: list[int]) -> tuple[list, dict]:
    """Report latency as the same store grows through ``sizes`` events."""
    store = await ReportStore.open(config)
    results: dict[int, dict[str, float]] = {}
    loaded: dict[int, dict[str, int]] = {}
    try:
        total, first_txn = 0, 0
        for size in sizes:
            start = time.perf_counter()
            counts = await load(store, size - total, first_txn)
            first_txn += counts["transactions"]
            total = size
            reports = Reports(store.reader, config)
            loaded[size] = {**counts, "load_s": round(time.perf_counter() - start)}
            results[size] = {name: await timed(fn) for name, fn in report_cases(reports)}
            print(
                f"  {config.database_url and 'postgresql' or 'sqlite'}: {size:,} events "
                f"loaded in {loaded[size]['load_s']} s",
                file=sys.stderr,
            )
    finally:
        await store.close()
    return [results[s] for s in sizes], loaded


def print_curve(backend: str, sizes: list[int], results: list[dict[str, float]]) -> None:
    print(f"\nReport latency, {backend}, ms (median of 3) as history grows")
    header = "".join(f"{f'{s / 1e6:g} M events':>16}" for s in sizes)
    print(f"{'report':<42}{header}")
    for name in results[0]:
        print(f"{name:<42}" + "".join(f"{r[name]:>16,.0f}" for r in results))
    base = "bare aggregate over items (baseline)"
    for name in ("lane health (all days)", "HTML page, every report"):
        print(
            f"{name + ' / baseline':<42}" + "".join(f"{r[name] / r[base]:>16.2f}" for r in results)
        )
    first = results[0]
    for name in ("lane health (all days)", "HTML page, every report"):
        print(
            f"{name + ' / itself at ' + f'{sizes[0] / 1e6:g} M':<42}"
            + "".join(f"{r[name] / first[name]:>16.2f}" for r in results)
        )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ingest-events", type=int, default=30_000)
    parser.add_argument(
        "--report-events", default="1000000", help="comma-separated sizes, e.g. 1e6,3e6,1e7"
    )
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument(
        "--ingest-only", action="store_true", help="measure ingest alone (no report curve)"
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="ingest rounds; the median ratio of each path"
    )
    parser.add_argument(
        "--ingest-workers",
        default="auto",
        help="the service's reporting.ingest_workers for the gRPC paths: a number or 'auto'",
    )
    parser.add_argument(
        "--postgres",
        default="auto",
        help="'auto' starts a throwaway cluster when PostgreSQL is installed; a URL of an "
        "empty database; or 'off'",
    )
    args = parser.parse_args()
    sizes = [int(float(s)) for s in args.report_events.split(",")]
    with (
        tempfile.TemporaryDirectory(prefix="bench-reporting-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        folder = Path(tmp)
        url = ""
        if args.postgres == "auto" and not args.ingest_only:
            from tests.reporting.postgres import cluster, find_bin

            if find_bin("initdb"):
                url = stack.enter_context(cluster()) + "/postgres"
        elif args.postgres != "off":
            url = args.postgres
        rounds = []
        for n in range(args.rounds):
            round_folder = folder / f"ingest-{n}"
            round_folder.mkdir()
            rounds.append(
                await bench_ingest(
                    round_folder, args.ingest_events, args.batch, args.ingest_workers
                )
            )
        print(
            f"\nIngest ({args.ingest_events:,} lane events, {args.batch} per transaction, "
            f"WAL, synchronous=FULL; median of {len(rounds)} round(s), each path against "
            "the baseline run just before it)"
        )
        print(f"{'path':<52} {'events/s':>12} {'vs baseline':>12}   ratio per round")
        for i, (name, _, _) in enumerate(rounds[0]):
            rates = [r[i][1] for r in rounds]
            ratios = [r[i][1] / r[i][2] for r in rounds]
            print(
                f"{name:<52} {statistics.median(rates):>12,.0f} "
                f"{statistics.median(ratios):>12.2f}   " + " ".join(f"{x:.2f}" for x in ratios)
            )
        if args.ingest_only:
            return 0
        backends = [
            ("sqlite", ReportingConfig(db_path=folder / "reports.db", retention_interval_s=0))
        ]
        if url:
            backends.append(
                ("postgresql", ReportingConfig(database_url=url, retention_interval_s=0))
            )
        for backend, config in backends:
            results, loaded = await bench_curve(config, sizes)
            last = loaded[sizes[-1]]
            print(
                f"\n{backend}: at {sizes[-1]:,} events the tables hold "
                + ", ".join(f"{v:,} {k}" for k, v in last.items() if k != "load_s")
                + " (the last step's additions)"
            )
            print_curve(backend, sizes, results)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
