"""The durable reporting store: SQLite through aiosqlite, idempotent by event id and revision."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite
from lanesight.reporting import convert
from lanesight.reporting.alert_rollups import (
    apply_revisions,
    rebuild_alert_rollups,
    stored_alerts,
)
from lanesight.reporting.config import ReportingConfig
from lanesight.reporting.db import (
    Connection,
    Dialect,
    PostgresConnection,
    SqliteConnection,
    SqliteWriter,
    TransactionBody,
    find_by_lane,
    postgres_transaction,
)
from lanesight.reporting.facts import TRANSACTION_COLUMNS, FactBatch, FactBuilder, LaneState
from lanesight.reporting.localtime import StoreZones, now_ms
from lanesight.reporting.model import (
    EVENT_ROW_COLUMNS,
    AlertRecord,
    FedRecord,
    IngestRecord,
    LaneEventRecord,
    fed_record,
)
from lanesight.reporting.projector import Projector
from lanesight.reporting.rollups import RollupDelta, rebuild_rollups
from lanesight.reporting.schema import current_version, migrate, migrate_postgres
from lanesight.v1 import events_pb2

log = logging.getLogger(__name__)

T = TypeVar("T")


_EVENT_COLUMNS = (*EVENT_ROW_COLUMNS, "ingest_seq")
_ITEM_COLUMNS = (
    "event_id",
    "store_id",
    "lane_id",
    "transaction_id",
    "line_id",
    "time_ms",
    "local_day",
    "operator_id",
    "item_code",
    "description",
    "entry_method",
    "quantity",
    "weighed",
    "weight_mg",
    "extended_minor",
    "currency",
    "first_pass",
    "label_item",
)


def _transaction_upsert(dialect: Dialect) -> str:
    least = dialect.least("excluded.time_ms", "transactions.time_ms")
    return f"""
INSERT INTO transactions ({TRANSACTION_COLUMNS}) VALUES ({", ".join("?" * 16)})
ON CONFLICT (store_id, lane_id, transaction_id) DO UPDATE SET
  local_day = CASE WHEN excluded.time_ms < transactions.time_ms
                   THEN excluded.local_day ELSE transactions.local_day END,
  time_ms = {least},
  operator_id = COALESCE(NULLIF(excluded.operator_id, ''), transactions.operator_id),
  kind = COALESCE(excluded.kind, transactions.kind),
  self_checkout = COALESCE(excluded.self_checkout, transactions.self_checkout),
  started_ms = COALESCE(excluded.started_ms, transactions.started_ms),
  tender_started_ms = COALESCE(transactions.tender_started_ms, excluded.tender_started_ms),
  ended_ms = COALESCE(excluded.ended_ms, transactions.ended_ms),
  outcome = COALESCE(excluded.outcome, transactions.outcome),
  total_minor = COALESCE(excluded.total_minor, transactions.total_minor),
  currency = COALESCE(excluded.currency, transactions.currency),
  item_count = COALESCE(excluded.item_count, transactions.item_count)
"""


# The writer's settings. FULL: an acknowledged record survives a power cut, not only a
# crash. The writer touches index pages all over the event-id and item indexes: keep them
# cached, and checkpoint less often so a page rewritten by many batches is copied into the
# database once (the WAL stays under about 40 MB).
_WRITER_PRAGMAS = (
    "PRAGMA synchronous = FULL",
    "PRAGMA busy_timeout = 10000",
    "PRAGMA cache_size = -65536",
    "PRAGMA wal_autocheckpoint = 10000",
)

# The page size of a new database. Ingest inserts each event into the index on (store,
# lane, event id) at a random place: with 16 KiB pages a batch dirties fewer pages of it
# to write to the WAL and sync, and the events table and its other indexes, which grow at
# their end, take fewer pages. Storing events costs about 0.9 of what it costs with
# SQLite's default 4 KiB pages (docs/reporting.md, "Metrics").
_PAGE_SIZE = 16384

_ALERT_COLUMNS = (
    "alert_id, revision, store_id, lane_id, transaction_id, type, pos_exception_kind, severity, "
    "confidence, at_risk_minor, at_risk_currency, recovered_minor, recovered_currency, reason, "
    "suggested_action, state, disposition, escalation, raised_ms, acknowledged_ms, resolved_ms, "
    "acknowledged_by, resolved_by, resolution_note, vision_available, gtin, plu, "
    "item_description, category, rule, merged_signals, local_day, local_hour"
)
_ALERT_NAMES = [c.strip() for c in _ALERT_COLUMNS.split(",")]
_ALERT_UPSERT = (
    f"INSERT INTO alerts ({_ALERT_COLUMNS}) VALUES ({', '.join('?' * len(_ALERT_NAMES))}) "
    "ON CONFLICT (alert_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _ALERT_NAMES[1:])
    + " WHERE excluded.revision > alerts.revision"
)


class ReportStore:
    """The reporting database: SQLite (one file) or PostgreSQL (``database_url``).

    One writer connection serialised by a lock, and a read connection (SQLite) or pool
    (PostgreSQL) that reports query through. Ingest stores raw events and acknowledges
    them; the projector derives their facts and rollups behind the ack, and every query
    through ``reader`` first waits for it to reach what was acknowledged before.
    """

    def __init__(
        self, config: ReportingConfig, writer: Connection, reader: Connection, closer
    ) -> None:
        self.config = config
        self.zones = StoreZones(config.timezone, config.store_zones())
        self.local_time = self.zones.default
        self._writer = writer
        self._reader = reader
        self._projected_reader = ProjectedReader(reader, self)
        self._closer = closer
        self._write_lock = asyncio.Lock()
        self._lane_states: dict[tuple[str, str], LaneState] = {}
        self._acked: dict[str, int] = {}
        self._facts = FactBuilder(self.zones)
        self._transaction_upsert = _transaction_upsert(writer.dialect)
        self._closed = False
        # PostgreSQL: months whose event and item partitions exist.
        self._partitions: set[int] = set()
        # The ingest_seq of the last stored event (events are numbered in storing order).
        self._last_seq = 0
        self.projector = Projector(self._project, config)

    @property
    def dialect(self) -> Dialect:
        return self._writer.dialect

    @classmethod
    async def open(cls, config: ReportingConfig, path: Path | None = None) -> ReportStore:
        """Open the database of the config (creating folders, schema and partitions)."""
        if config.database_url and path is None:
            return await cls._open_postgres(config)
        db_path = Path(path or config.db_path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        async with aiosqlite.connect(db_path, isolation_level=None) as migrating:
            # Only a new database takes it (one in WAL mode keeps its page size).
            await migrating.execute(f"PRAGMA page_size = {_PAGE_SIZE}")
            await migrating.execute("PRAGMA journal_mode = WAL")
            await migrating.execute("PRAGMA busy_timeout = 10000")
            before = await current_version(migrating)
            after = await migrate(migrating)
        writer = await SqliteWriter.connect(db_path, _WRITER_PRAGMAS)
        try:
            reader = await aiosqlite.connect(db_path, isolation_level=None)
        except BaseException:
            await writer.close()
            raise
        await reader.execute("PRAGMA query_only = 1")
        await reader.execute("PRAGMA busy_timeout = 10000")

        async def close() -> None:
            await reader.close()
            with contextlib.suppress(Exception):
                await writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await writer.close()

        store = cls(config, writer, SqliteConnection(reader), close)
        if 0 < before < 5 <= after:
            # Rollups arrived with version 5: fill them from what the database holds.
            async with store.write_transaction() as db:
                await rebuild_rollups(db, store.local_time.day_start_ms)
        if 0 < before < 6 <= after:
            # Alert rollups arrived with version 6.
            async with store.write_transaction() as db:
                await rebuild_alert_rollups(db)
        await store._start_projector()
        return store

    @classmethod
    async def _open_postgres(cls, config: ReportingConfig) -> ReportStore:
        import asyncpg

        writer = await asyncpg.connect(config.database_url)
        try:
            before, after = await migrate_postgres(writer)
            pool = await asyncpg.create_pool(
                config.database_url, min_size=1, max_size=config.pool_size
            )
        except BaseException:
            await writer.close()
            raise

        async def close() -> None:
            await pool.close()
            await writer.close()

        store = cls(config, PostgresConnection(writer), PostgresConnection(pool), close)
        if 0 < before < 6 <= after:
            # Alert rollups arrived with version 6: fill them from the alerts held.
            async with store.write_transaction() as db:
                await rebuild_alert_rollups(db)
        await store._start_projector()
        return store

    async def close(self, drain: bool = True) -> None:
        """Close the connections; idempotent. With ``drain`` (the default) the projector
        first projects everything acknowledged; without, the next start does (what a
        crash leaves)."""
        if self._closed:
            return
        self._closed = True
        await self.projector.stop(drain)
        async with self._write_lock:
            await self._closer()

    @property
    def reader(self) -> Connection:
        """The read connection reports query through: each query first waits for the
        projector to reach every event acknowledged before it."""
        return self._projected_reader

    async def projected(self) -> None:
        """Wait until every event acknowledged so far has its facts and rollups."""
        await self.projector.caught_up()

    @contextlib.asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[Connection]:
        """One transaction on the writer, committed on success, else rolled back."""
        async with self._write_lock:
            writer = self._writer
            if isinstance(writer, PostgresConnection):
                async with postgres_transaction(writer.conn):
                    yield writer
                return
            await writer.execute("BEGIN IMMEDIATE")
            try:
                yield writer
            except BaseException:
                await writer.execute("ROLLBACK")
                raise
            await writer.execute("COMMIT")

    async def _start_projector(self) -> None:
        """Load the lane states and the projection cursor, and start the projector (it
        resumes with any events stored and not projected before a crash)."""
        for store_id, lane_id, state in await self._writer.fetchall(
            "SELECT store_id, lane_id, state FROM lane_clock"
        ):
            self._lane_states[(store_id, lane_id)] = LaneState.from_json(state)
        position = await self._cursor(self._writer)
        row = await self._writer.fetchone("SELECT MAX(ingest_seq) FROM events")
        # Retention may have deleted the last numbered events: never reuse a number.
        self._last_seq = max(position, int(row[0]) if row and row[0] is not None else 0)
        row = await self._writer.fetchone(
            "SELECT COUNT(*) FROM events WHERE ingest_seq > ?", (position,)
        )
        pending = int(row[0]) if row else 0
        self.projector = Projector(self._project, self.config, pending)
        self.projector.start()

    @staticmethod
    async def _cursor(db: Connection) -> int:
        row = await db.fetchone("SELECT position FROM projection_cursor WHERE name = 'facts'")
        return int(row[0]) if row else 0

    # --- the feed ------------------------------------------------------------------------

    async def acked_sequence(self, sender_id: str) -> int:
        """The last record sequence stored for a sender; 0 when none."""
        if sender_id not in self._acked:
            # Through the reader: the writer may be inside another sender's transaction.
            row = await self._reader.fetchone(
                "SELECT acked_sequence FROM ingest_senders WHERE sender_id = ?", (sender_id,)
            )
            self._acked[sender_id] = int(row[0]) if row else 0
        return self._acked[sender_id]

    async def ingest(self, sender_id: str, records: Sequence[IngestRecord]) -> int:
        """Store a sender's records (in sequence order) idempotently; returns the ack.

        The ack is the last record's sequence: every record up to it is stored. Events
        already stored (same lane and event id) and alert revisions already stored are
        skipped. Raw events are stored and acknowledged here; their facts and rollups are
        derived by the projector behind the ack (reports wait for it).
        """
        return await self.ingest_fed(sender_id, [fed_record(r) for r in records])

    async def ingest_fed(self, sender_id: str, records: Sequence[FedRecord]) -> int:
        """``ingest`` of records already in their stored form (``model.FedRecord``: what
        IngestRecords' checks make, in worker processes or not)."""
        if not records:
            return await self.acked_sequence(sender_id)
        previous = await self.acked_sequence(sender_id)
        size = self.config.batch_size
        with self.projector.ingesting():
            for start in range(0, len(records), size):
                chunk = records[start : start + size]
                gaps = _gaps(previous, [r[0] for r in chunk])
                await self.projector.room()
                await self._store_chunk(sender_id, chunk, gaps)
                previous = chunk[-1][0]
        return previous

    async def _write(
        self, body: TransactionBody[T], committed: Callable[[T], None] | None = None
    ) -> T:
        """Run ``body(db)`` as one write transaction under the write lock (on SQLite in one
        trip to the writer's thread), then ``committed(result)``.

        A transaction under way is not abandoned when the caller is cancelled (SQLite's
        thread could not be stopped anyway): the cancellation waits for its end, and
        ``committed`` still runs if it committed, so the state kept in memory (acks, lane
        states, the projector's count) always follows the database.
        """
        async with self._write_lock:
            trip = asyncio.ensure_future(self._writer.transaction(body))
            try:
                result = await asyncio.shield(trip)
            except asyncio.CancelledError:
                while not trip.done():
                    # Deferred, not swallowed: re-raised below once the trip has ended.
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait({trip})
                if committed is not None and not trip.cancelled() and trip.exception() is None:
                    committed(trip.result())
                raise
            if committed is not None:
                committed(result)
            return result

    async def _store_chunk(
        self, sender_id: str, chunk: Sequence[FedRecord], gaps: list[tuple[int, int]]
    ) -> None:
        events = [r[1] for r in chunk if r[1] is not None]
        alerts = [r[2] for r in chunk if r[2] is not None]
        acked = chunk[-1][0]
        # Numbers for the chunk's events, taken now: one a duplicate or a failed batch
        # leaves unused is a harmless gap, and none is ever given twice.
        first_seq = self._last_seq + 1
        self._last_seq += len(events)

        async def store(db: Connection) -> tuple[int, set[int]]:
            months: set[int] = set()
            if self.dialect.name == "postgresql":
                fresh = await self._new_events(db, events)
                months = await self._ensure_partitions(db, [e[4] for e in fresh])
                if fresh:
                    await db.insert_new("events", _EVENT_COLUMNS, _numbered(fresh, first_seq))
                stored = len(fresh)
            elif events:
                marks = ", ".join("?" * len(_EVENT_COLUMNS))
                stored = await db.executemany_count(
                    f"INSERT INTO events ({', '.join(_EVENT_COLUMNS)}) VALUES ({marks}) "
                    # A resent event is skipped; a number given twice (never) would fail.
                    "ON CONFLICT (store_id, lane_id, event_id) DO NOTHING",
                    _numbered(events, first_seq),
                )
            else:
                stored = 0
            await self._write_alerts(db, alerts)
            now = now_ms()
            await db.execute(
                "INSERT INTO ingest_senders (sender_id, acked_sequence, updated_ms) VALUES (?, ?, ?) "
                "ON CONFLICT (sender_id) DO UPDATE SET acked_sequence = excluded.acked_sequence, "
                "updated_ms = excluded.updated_ms",
                (sender_id, acked, now),
            )
            if gaps:
                await db.executemany(
                    "INSERT INTO ingest_gaps VALUES (?, ?, ?, ?)",
                    [(sender_id, first, last, now) for first, last in gaps],
                )
            return stored, months

        def acknowledged(result: tuple[int, set[int]]) -> None:
            count, months = result
            self._partitions |= months
            self._acked[sender_id] = acked
            self.projector.acknowledged(count)
            for first, last in gaps:
                log.warning(
                    "records %d..%d of sender %s never arrived (the sender dropped them)",
                    first,
                    last,
                    sender_id,
                )

        await self._write(store, acknowledged)

    async def _new_events(self, db: Connection, events: list[tuple]) -> list[tuple]:
        """PostgreSQL: the event rows not stored yet (looked up under the write lock)."""
        # An event is known by its lane and id: two lanes may reuse an id (POS-supplied).
        unique: dict[tuple[str, str, str], tuple] = {}
        for row in events:
            unique.setdefault((row[1], row[2], row[0]), row)
        for key in await find_by_lane(db, "events", "event_id", list(unique)):
            unique.pop(tuple(key), None)
        return list(unique.values())

    # --- the projector -------------------------------------------------------------------

    async def _project(self, limit: int) -> int:
        """Derive the facts and rollups of up to ``limit`` stored events after the cursor,
        in storing order, and move the cursor, in one transaction; how many it derived."""

        async def project(db: Connection) -> tuple[int, dict[tuple[str, str], LaneState]]:
            position = await self._cursor(db)
            rows = await db.fetchall(
                "SELECT ingest_seq, event_id, store_id, lane_id, sequence, time_ms, "
                "transaction_id, kind, source_device_id, raw, data FROM events "
                "WHERE ingest_seq > ? ORDER BY ingest_seq LIMIT ?",
                (position, limit),
            )
            if not rows:
                return 0, {}
            events = [_stored_event(row) for row in rows]
            states = {
                lane: self._state_copy(lane) for lane in {(e.store_id, e.lane_id) for e in events}
            }
            facts = self._facts.build(events, states)
            await self._write_facts(db, facts, states)
            await db.execute(
                "UPDATE projection_cursor SET position = ? WHERE name = 'facts'", (rows[-1][0],)
            )
            return len(rows), states

        # Only after the commit: the in-memory lane state follows the database.
        projected, _ = await self._write(project, lambda done: self._lane_states.update(done[1]))
        return projected

    def _state_copy(self, lane: tuple[str, str]) -> LaneState:
        state = self._lane_states.get(lane)
        if state is None:
            return LaneState()
        return dataclasses.replace(state, faults=dict(state.faults))

    async def _ensure_partitions(self, db: Connection, times: list[int]) -> set[int]:
        """PostgreSQL: create the monthly event and item partitions these times need; the
        months created (remembered by the caller once the transaction commits)."""
        if self.dialect.name != "postgresql":
            return set()
        months = {_month(t) for t in times} - self._partitions
        for month in sorted(months):
            start, end = _month_bounds(month)
            suffix = f"{month // 12:04d}_{month % 12 + 1:02d}"
            for table in ("events", "items"):
                await db.execute(
                    f"CREATE TABLE IF NOT EXISTS {table}_{suffix} PARTITION OF {table} "
                    f"FOR VALUES FROM ({start}) TO ({end})"
                )
        return months

    async def _write_facts(
        self,
        db: Connection,
        facts: FactBatch,
        states: dict[tuple[str, str], LaneState] | None,
    ) -> None:
        """Write a batch's facts and add them to the rollups (facts of new events only)."""
        delta = RollupDelta()
        if facts.transactions:
            for txn in await self._new_transactions(db, facts):
                delta.transaction(txn.store_id, txn.lane_id, txn.operator_id, txn.time_ms)
            await db.executemany(
                self._transaction_upsert, [t.row() for t in facts.transactions.values()]
            )
        if facts.items:
            await self._ensure_partitions(db, [row[5] for row in facts.items])
            await db.insert_new("items", _ITEM_COLUMNS, facts.items)
        delta.add_items(facts.items)
        delta.add_incidents(facts.incidents)
        delta.add_pos_events(facts.pos_events)
        await delta.write(db)
        greatest = self.dialect.greatest("lane_clock.last_time_ms", "excluded.last_time_ms")
        for table, rows, width in (
            ("pos_events", facts.pos_events, 11),
            ("lane_incidents", facts.incidents, 7),
            ("camera_changes", facts.camera_changes, 7),
        ):
            if rows:
                marks = ", ".join("?" * width)
                await db.executemany(
                    f"INSERT INTO {table} VALUES ({marks}) ON CONFLICT DO NOTHING", rows
                )
        if states is not None and facts.lane_clock:
            await db.executemany(
                "INSERT INTO lane_clock (store_id, lane_id, last_time_ms, state) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (store_id, lane_id) DO UPDATE SET "
                f"last_time_ms = {greatest}, state = excluded.state",
                [(s, ln, t, states[(s, ln)].to_json()) for (s, ln), t in facts.lane_clock.items()],
            )
        elif facts.lane_clock:
            await db.executemany(
                "INSERT INTO lane_clock (store_id, lane_id, last_time_ms, state) VALUES (?, ?, ?, '') "
                "ON CONFLICT (store_id, lane_id) DO UPDATE SET "
                f"last_time_ms = {greatest}",
                [(s, ln, t) for (s, ln), t in facts.lane_clock.items()],
            )

    async def _new_transactions(self, db: Connection, facts: FactBatch) -> list:
        """The batch's transactions not in the database yet (the rollups count them)."""
        keys = list(facts.transactions)
        known = {tuple(k) for k in await find_by_lane(db, "transactions", "transaction_id", keys)}
        return [t for key, t in facts.transactions.items() if key not in known]

    async def _write_alerts(self, db: Connection, alerts: list[AlertRecord]) -> None:
        if not alerts:
            return
        # The highest revision of each alert in the batch replaces a lower stored one.
        latest: dict[str, int] = {}
        for a in alerts:
            latest[a.alert_id] = max(a.revision, latest.get(a.alert_id, a.revision))
        before = await stored_alerts(db, sorted(latest))
        replaced = {
            alert_id
            for alert_id, revision in latest.items()
            if alert_id not in before or revision > before[alert_id][0]
        }
        received = now_ms()
        await db.executemany(
            "INSERT INTO alert_revisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [
                (
                    a.alert_id,
                    a.revision,
                    a.state,
                    a.disposition,
                    a.acknowledged_ms,
                    a.resolved_ms,
                    a.acknowledged_by,
                    a.resolved_by,
                    a.resolution_note,
                    a.amount_recovered.amount_minor if a.amount_recovered else None,
                    a.amount_recovered.currency if a.amount_recovered else None,
                    received,
                )
                for a in alerts
            ],
        )
        await db.executemany(_ALERT_UPSERT, [self._alert_row(a) for a in alerts])
        await db.executemany(
            "INSERT INTO alert_changes VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [change for a in alerts for change in _alert_changes(a)],
        )
        evidence = [(a.alert_id, e) for a in alerts for e in a.supporting_event_ids]
        if evidence:
            await db.executemany(
                "INSERT INTO alert_evidence VALUES (?, ?) ON CONFLICT DO NOTHING", evidence
            )
        await apply_revisions(db, before, replaced)

    def _alert_row(self, a: AlertRecord) -> tuple:
        day, hour = self.zones.of(a.store_id).day_hour(a.raised_ms)
        risk, recovered = a.amount_at_risk, a.amount_recovered
        return (
            a.alert_id,
            a.revision,
            a.store_id,
            a.lane_id,
            a.transaction_id,
            a.type,
            a.pos_exception_kind,
            a.severity,
            float(a.confidence),
            risk.amount_minor if risk else None,
            risk.currency if risk else None,
            recovered.amount_minor if recovered else None,
            recovered.currency if recovered else None,
            a.reason,
            a.suggested_action,
            a.state,
            a.disposition,
            a.escalation,
            a.raised_ms,
            a.acknowledged_ms,
            a.resolved_ms,
            a.acknowledged_by,
            a.resolved_by,
            a.resolution_note,
            int(a.vision_available),
            a.gtin,
            a.plu,
            a.item_description,
            a.category,
            a.rule,
            a.merged_signals,
            day,
            hour,
        )

    # --- POSLog --------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def poslog_import(self, file_name: str) -> AsyncIterator[PosLogImport]:
        """One database transaction for one POSLog file: committed when the block ends
        normally, rolled back (nothing imported) when it raises."""
        async with self.write_transaction() as db:
            yield PosLogImport(self, db, file_name)

    async def import_transactions(
        self,
        file_name: str,
        documents: Iterable[tuple[tuple[str, str, str], list[LaneEventRecord]]],
    ) -> tuple[int, int]:
        """Store parsed POSLog transactions in one database transaction; (imported, duplicates)."""
        async with self.poslog_import(file_name) as batch:
            for key, events in documents:
                await batch.add(key, events)
        return batch.imported, batch.duplicates


class ProjectedReader(Connection):
    """A read connection whose every query first waits for the projector to reach each
    event acknowledged before it (a report sees everything acknowledged before it)."""

    def __init__(self, inner: Connection, store: ReportStore) -> None:
        self._inner = inner
        self._store = store
        self.dialect = inner.dialect

    async def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        await self._store.projected()
        return await self._inner.fetchall(sql, params)

    async def fetch_dicts(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        await self._store.projected()
        return await self._inner.fetch_dicts(sql, params)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        await self._store.projected()
        return await self._inner.execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self._store.projected()
        await self._inner.executemany(sql, rows)


class PosLogImport:
    """Adds imported POS transactions inside an open write transaction.

    A transaction imported before (same store, lane and transaction id) is skipped, so
    importing a file twice stores it once.
    """

    def __init__(self, store: ReportStore, db: Connection, file_name: str) -> None:
        self._store = store
        self._db = db
        self._file_name = file_name
        # Imported history carries its operator on every event: no lane state needed.
        self._facts = FactBuilder(store.zones, source="poslog")
        self.imported = 0
        self.duplicates = 0

    async def add(self, key: tuple[str, str, str], events: list[LaneEventRecord]) -> None:
        """Add one transaction's events unless it was imported before."""
        inserted = await self._db.execute(
            "INSERT INTO poslog_transactions VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (*key, self._file_name, now_ms()),
        )
        if inserted == 0:
            self.duplicates += 1
            return
        self.imported += 1
        await self._store._write_facts(self._db, self._facts.build(events, {}), None)


def _stored_event(row: tuple) -> LaneEventRecord:
    """A stored event as the fact builder needs it: its payload fields from its serialized
    form (or, for a data-quality record, from the data kept beside it)."""
    _, event_id, store_id, lane_id, sequence, time_ms, txn, kind, device, raw, data = row
    if raw is not None:
        return convert.event_from_proto(events_pb2.LaneEvent.FromString(bytes(raw)))
    return LaneEventRecord(
        event_id=event_id,
        store_id=store_id,
        lane_id=lane_id,
        sequence=int(sequence),
        time_ms=int(time_ms),
        transaction_id=txn,
        kind=kind,
        data=json.loads(data) if data else {},
        source_device_id=device,
    )


def _numbered(rows: list[tuple], first_seq: int) -> list[tuple]:
    """Event rows with their ingest_seq, numbered from ``first_seq`` in storing order."""
    return [row + (seq,) for seq, row in enumerate(rows, first_seq)]


def _month(time_ms: int) -> int:
    """Months since year 0 of an instant (UTC): the partition it belongs to."""
    moment = datetime.fromtimestamp(time_ms / 1000, UTC)
    return moment.year * 12 + moment.month - 1


def _month_bounds(month: int) -> tuple[int, int]:
    """The first instant of a month and of the next one, in epoch ms."""
    start = datetime(month // 12, month % 12 + 1, 1, tzinfo=UTC)
    following = month + 1
    end = datetime(following // 12, following % 12 + 1, 1, tzinfo=UTC)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def _gaps(previous: int, sequences: list[int]) -> list[tuple[int, int]]:
    """Ranges of sequence numbers skipped between the last ack and the records' sequences."""
    gaps = []
    last = previous
    for sequence in sequences:
        if last and sequence > last + 1:
            gaps.append((last + 1, sequence - 1))
        last = sequence
    return gaps


def _alert_changes(a: AlertRecord) -> list[tuple]:
    changes = [(a.alert_id, a.revision, "raised", "", "", a.raised_ms)]
    if a.acknowledged_ms is not None:
        changes.append(
            (a.alert_id, a.revision, "acknowledged", "", a.acknowledged_by, a.acknowledged_ms)
        )
    if a.state == "resolved" or a.resolved_ms is not None:
        at = a.resolved_ms if a.resolved_ms is not None else a.raised_ms
        changes.append((a.alert_id, a.revision, "resolved", "", a.resolved_by, at))
        if a.disposition != "unspecified":
            changes.append(
                (a.alert_id, a.revision, "disposition", a.disposition, a.resolved_by, at)
            )
    return changes
