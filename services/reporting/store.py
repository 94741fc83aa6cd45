"""The durable reporting store: SQLite through aiosqlite, idempotent by event id and revision."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from pathlib import Path

import aiosqlite
from lanesight.reporting.config import ReportingConfig
from lanesight.reporting.facts import TRANSACTION_COLUMNS, FactBatch, FactBuilder, LaneState
from lanesight.reporting.localtime import LocalTime, now_ms
from lanesight.reporting.model import AlertRecord, IngestRecord, LaneEventRecord
from lanesight.reporting.schema import migrate

log = logging.getLogger(__name__)

# SQLite's limit on host parameters is 32766 since 3.32; stay well below it.
_IN_CHUNK = 500

_TRANSACTION_UPSERT = f"""
INSERT INTO transactions ({TRANSACTION_COLUMNS}) VALUES ({", ".join("?" * 16)})
ON CONFLICT (store_id, lane_id, transaction_id) DO UPDATE SET
  local_day = CASE WHEN excluded.time_ms < transactions.time_ms
                   THEN excluded.local_day ELSE transactions.local_day END,
  time_ms = MIN(excluded.time_ms, transactions.time_ms),
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
    """The reporting database. One writer connection (serialised by a lock), one reader."""

    def __init__(self, config: ReportingConfig, writer, reader) -> None:
        self.config = config
        self.local_time = LocalTime(config.timezone)
        self._writer: aiosqlite.Connection = writer
        self._reader: aiosqlite.Connection = reader
        self._write_lock = asyncio.Lock()
        self._lane_states: dict[tuple[str, str], LaneState] = {}
        self._acked: dict[str, int] = {}
        self._facts = FactBuilder(self.local_time)
        self._closed = False

    @classmethod
    async def open(cls, config: ReportingConfig, path: Path | None = None) -> ReportStore:
        """Open (creating folders and schema as needed) the database at path or config.db_path."""
        db_path = Path(path or config.db_path)
        db_path.parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(db_path, isolation_level=None)
        try:
            await writer.execute("PRAGMA journal_mode = WAL")
            # FULL: an acknowledged record survives a power cut, not only a crash.
            await writer.execute("PRAGMA synchronous = FULL")
            await writer.execute("PRAGMA busy_timeout = 10000")
            await migrate(writer)
            reader = await aiosqlite.connect(db_path, isolation_level=None)
        except BaseException:
            await writer.close()
            raise
        await reader.execute("PRAGMA query_only = 1")
        await reader.execute("PRAGMA busy_timeout = 10000")
        store = cls(config, writer, reader)
        await store._load_lane_states()
        return store

    async def close(self) -> None:
        """Close both connections; idempotent."""
        if self._closed:
            return
        self._closed = True
        async with self._write_lock:
            await self._reader.close()
            with contextlib.suppress(Exception):
                await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await self._writer.close()

    @property
    def reader(self) -> aiosqlite.Connection:
        """The read connection reports query through."""
        return self._reader

    @contextlib.asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One IMMEDIATE transaction on the writer, committed on success, else rolled back."""
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def _load_lane_states(self) -> None:
        async with self._writer.execute("SELECT store_id, lane_id, state FROM lane_clock") as cur:
            async for store_id, lane_id, state in cur:
                self._lane_states[(store_id, lane_id)] = LaneState.from_json(state)

    # --- the feed ------------------------------------------------------------------------

    async def acked_sequence(self, sender_id: str) -> int:
        """The last record sequence stored for a sender; 0 when none."""
        if sender_id not in self._acked:
            async with self._writer.execute(
                "SELECT acked_sequence FROM ingest_senders WHERE sender_id = ?", (sender_id,)
            ) as cur:
                row = await cur.fetchone()
            self._acked[sender_id] = int(row[0]) if row else 0
        return self._acked[sender_id]

    async def ingest(self, sender_id: str, records: Sequence[IngestRecord]) -> int:
        """Store a sender's records (in sequence order) idempotently; returns the ack.

        The ack is the last record's sequence: every record up to it is stored. Events
        already stored (same event id) and alert revisions already stored are skipped.
        """
        if not records:
            return await self.acked_sequence(sender_id)
        previous = await self.acked_sequence(sender_id)
        size = self.config.batch_size
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            gaps = _gaps(previous, [r.record_sequence for r in chunk])
            await self._store_chunk(sender_id, chunk, gaps)
            previous = chunk[-1].record_sequence
        return previous

    async def _store_chunk(
        self, sender_id: str, chunk: Sequence[IngestRecord], gaps: list[tuple[int, int]]
    ) -> None:
        events = [r.event for r in chunk if r.event is not None]
        alerts = [r.alert for r in chunk if r.alert is not None]
        acked = chunk[-1].record_sequence
        async with self.write_transaction() as db:
            fresh = await self._new_events(db, events)
            states = {
                lane: self._state_copy(lane) for lane in {(e.store_id, e.lane_id) for e in fresh}
            }
            facts = self._facts.build(fresh, states)
            await self._write_events(db, fresh)
            await self._write_facts(db, facts, states)
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
        # Only after the commit: the in-memory state follows the database.
        self._lane_states.update(states)
        self._acked[sender_id] = acked
        for first, last in gaps:
            log.warning(
                "records %d..%d of sender %s never arrived (the sender dropped them)",
                first,
                last,
                sender_id,
            )

    def _state_copy(self, lane: tuple[str, str]) -> LaneState:
        state = self._lane_states.get(lane)
        return LaneState.from_json(state.to_json()) if state else LaneState()

    async def _new_events(
        self, db: aiosqlite.Connection, events: list[LaneEventRecord]
    ) -> list[LaneEventRecord]:
        # An event is known by its lane and id: two lanes may reuse an id (POS-supplied).
        unique: dict[tuple[str, str, str], LaneEventRecord] = {}
        for event in events:
            unique.setdefault((event.store_id, event.lane_id, event.event_id), event)
        ids = list({key[2] for key in unique})
        for start in range(0, len(ids), _IN_CHUNK):
            part = ids[start : start + _IN_CHUNK]
            marks = ",".join("?" * len(part))
            async with db.execute(
                f"SELECT store_id, lane_id, event_id FROM events WHERE event_id IN ({marks})",
                part,
            ) as cur:
                async for key in cur:
                    unique.pop(tuple(key), None)
        return list(unique.values())

    async def _write_events(self, db: aiosqlite.Connection, events: list[LaneEventRecord]) -> None:
        if events:
            await db.executemany(
                "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.event_id,
                        e.store_id,
                        e.lane_id,
                        e.sequence,
                        e.time_ms,
                        e.transaction_id,
                        e.kind,
                        e.source_device_id,
                        e.raw,
                    )
                    for e in events
                ],
            )

    async def _write_facts(
        self,
        db: aiosqlite.Connection,
        facts: FactBatch,
        states: dict[tuple[str, str], LaneState] | None,
    ) -> None:
        if facts.transactions:
            await db.executemany(
                _TRANSACTION_UPSERT, [t.row() for t in facts.transactions.values()]
            )
        for table, rows, width in (
            ("items", facts.items, 18),
            ("pos_events", facts.pos_events, 11),
            ("lane_incidents", facts.incidents, 7),
            ("camera_changes", facts.camera_changes, 7),
        ):
            if rows:
                marks = ", ".join("?" * width)
                await db.executemany(f"INSERT OR IGNORE INTO {table} VALUES ({marks})", rows)
        if states is not None and facts.lane_clock:
            await db.executemany(
                "INSERT INTO lane_clock (store_id, lane_id, last_time_ms, state) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (store_id, lane_id) DO UPDATE SET "
                "last_time_ms = MAX(last_time_ms, excluded.last_time_ms), state = excluded.state",
                [(s, ln, t, states[(s, ln)].to_json()) for (s, ln), t in facts.lane_clock.items()],
            )
        elif facts.lane_clock:
            await db.executemany(
                "INSERT INTO lane_clock (store_id, lane_id, last_time_ms, state) VALUES (?, ?, ?, '') "
                "ON CONFLICT (store_id, lane_id) DO UPDATE SET "
                "last_time_ms = MAX(last_time_ms, excluded.last_time_ms)",
                [(s, ln, t) for (s, ln), t in facts.lane_clock.items()],
            )

    async def _write_alerts(self, db: aiosqlite.Connection, alerts: list[AlertRecord]) -> None:
        if not alerts:
            return
        received = now_ms()
        await db.executemany(
            "INSERT OR IGNORE INTO alert_revisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            "INSERT OR IGNORE INTO alert_changes VALUES (?, ?, ?, ?, ?, ?)",
            [change for a in alerts for change in _alert_changes(a)],
        )
        evidence = [(a.alert_id, e) for a in alerts for e in a.supporting_event_ids]
        if evidence:
            await db.executemany("INSERT OR IGNORE INTO alert_evidence VALUES (?, ?)", evidence)

    def _alert_row(self, a: AlertRecord) -> tuple:
        day, hour = self.local_time.day_hour(a.raised_ms)
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
            a.confidence,
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


class PosLogImport:
    """Adds imported POS transactions inside an open write transaction.

    A transaction imported before (same store, lane and transaction id) is skipped, so
    importing a file twice stores it once.
    """

    def __init__(self, store: ReportStore, db: aiosqlite.Connection, file_name: str) -> None:
        self._store = store
        self._db = db
        self._file_name = file_name
        # Imported history carries its operator on every event: no lane state needed.
        self._facts = FactBuilder(store.local_time, source="poslog")
        self.imported = 0
        self.duplicates = 0

    async def add(self, key: tuple[str, str, str], events: list[LaneEventRecord]) -> None:
        """Add one transaction's events unless it was imported before."""
        cursor = await self._db.execute(
            "INSERT OR IGNORE INTO poslog_transactions VALUES (?, ?, ?, ?, ?)",
            (*key, self._file_name, now_ms()),
        )
        if cursor.rowcount == 0:
            self.duplicates += 1
            return
        self.imported += 1
        await self._store._write_facts(self._db, self._facts.build(events, {}), None)


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
