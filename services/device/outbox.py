"""The lane agent's durable outbox: every event is committed to SQLite (WAL) before it is sent.

Rows are deleted only when fusion acknowledges them. The next sequence number, the
acknowledged sequence, recently submitted POS event ids and executed lane command ids
survive a restart. The outbox is bounded by event count and age; it warns before it
would drop anything and then drops the oldest device readings (then, only if it must,
the oldest POS events), counting them. It knows nothing
of gRPC or protobuf: payloads are opaque bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    sequence INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    lane_time_ns INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS submitted_ids (
    event_id TEXT PRIMARY KEY,
    sequence INTEGER NOT NULL,
    recorded_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS executed_commands (
    command_id TEXT PRIMARY KEY,
    executed_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS owner (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_KEEP_IDS = 200_000  # remembered POS event ids / command ids, newest kept
_KEEP_IDS_NS = 24 * 3600 * 10**9


class OutboxOwnedElsewhere(Exception):
    """The outbox file holds unacknowledged events of another store/lane."""


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One stamped event as stored: its sequence, id, lane time and serialized payload."""

    sequence: int
    event_id: str
    lane_time_ns: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    """How much the outbox may hold before it drops the oldest events."""

    max_events: int = 100_000
    max_age_s: float = 7 * 24 * 3600.0
    warn_fraction: float = 0.8
    #: Appends waiting for their commit before record() applies backpressure.
    max_pending_writes: int = 10_000
    synchronous: str = "full"


@dataclass(frozen=True, slots=True)
class DroppedEvents:
    """Events the outbox dropped to stay within its bounds."""

    first_sequence: int
    last_sequence: int
    count: int
    reason: str


@dataclass
class _Op:
    kind: str
    args: Any
    future: asyncio.Future = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Outbox:
    """SQLite outbox with group commit; all writes go through one writer task, in order."""

    def __init__(
        self,
        path: str | Path,
        limits: OutboxLimits = OutboxLimits(),
        on_drop: Callable[[DroppedEvents], None] | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.path = Path(path)
        self.limits = limits
        self._on_drop = on_drop
        self._clock_ns = clock_ns
        self._db: aiosqlite.Connection | None = None
        self._ops: list[_Op] = []
        self._ops_ready = asyncio.Event()
        self._space = asyncio.Condition()
        self._writer: asyncio.Task | None = None
        self._closed = False
        self.last_sequence = 0  # the last sequence handed out
        self.committed_sequence = 0  # the last sequence known to be on disk
        self.acked_sequence = 0
        self.pending = 0  # rows on disk not yet acknowledged
        self.dropped = 0
        self.oldest_pending_ns: int | None = None
        self._warned = False
        self._unlogged_drop: DroppedEvents | None = None
        self._last_drop_log = -1e9
        self._closing = False
        self._next_age_check = 0.0
        self._next_prune = 0.0
        #: Called after every commit (the fusion link wakes up to send new rows).
        self.commit_listeners: list[Callable[[], None]] = []

    async def open(self, owner: str = "") -> None:
        """Open (creating if needed) the database and load the counters.

        ``owner`` ("store/lane") ties the file to one lane: sequences are per lane, so
        a file of another lane with nothing pending starts again at sequence 1, and one
        with events still pending is refused rather than mixed into this lane's stream.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        sync = "FULL" if self.limits.synchronous == "full" else "NORMAL"
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute(f"PRAGMA synchronous={sync}")
        await self._db.executescript(_SCHEMA)
        meta = dict(await self._db.execute_fetchall("SELECT key, value FROM meta"))
        (max_seq, count, oldest), *_ = await self._db.execute_fetchall(
            "SELECT MAX(sequence), COUNT(*), MIN(lane_time_ns) FROM events"
        )
        self.last_sequence = max(int(meta.get("last_sequence", 0)), int(max_seq or 0))
        self.committed_sequence = self.last_sequence
        self.acked_sequence = int(meta.get("acked_sequence", 0))
        self.pending = int(count)
        self.oldest_pending_ns = oldest
        if owner:
            await self._claim(owner)
        self._writer = asyncio.create_task(self._write_loop(), name="outbox-writer")
        log.info(
            "outbox %s: %d pending, last sequence %d, acked %d",
            self.path,
            self.pending,
            self.last_sequence,
            self.acked_sequence,
        )

    async def _claim(self, owner: str) -> None:
        db = self._db
        assert db is not None
        rows = await db.execute_fetchall("SELECT value FROM owner WHERE key = 'lane'")
        previous = rows[0][0] if rows else ""
        if previous == owner:
            return
        if previous and self.pending:
            await db.close()
            self._db = None
            raise OutboxOwnedElsewhere(
                f"outbox {self.path} holds {self.pending} unacknowledged events of lane "
                f"{previous}, not {owner}; run that lane's agent until they are sent, or "
                "point outbox.path elsewhere"
            )
        await db.execute("BEGIN IMMEDIATE")
        await db.execute("INSERT OR REPLACE INTO owner VALUES ('lane', ?)", (owner,))
        if previous:
            log.warning(
                "outbox %s was lane %s; starting %s at sequence 1", self.path, previous, owner
            )
            await db.execute("DELETE FROM submitted_ids")
            await self._write_meta(db, 0, 0)
            self.last_sequence = self.committed_sequence = self.acked_sequence = 0
        await db.execute("COMMIT")

    async def close(self) -> None:
        """Finish queued writes and close the database; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._closing = True
        if self._writer is not None:
            self._ops_ready.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), timeout=10.0)
            except TimeoutError:
                log.error("outbox writer did not finish within 10 s; closing anyway")
                self._writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._writer
        for op in self._ops:
            if not op.future.done():
                op.future.set_exception(RuntimeError("outbox closed"))
        self._ops.clear()
        if self._db is not None:
            await self._db.close()
            self._db = None

    # -- writes (all through the writer task) ------------------------------------------

    async def wait_for_room(self) -> None:
        """Wait until fewer than max_pending_writes appends are waiting for a commit."""
        async with self._space:
            await self._space.wait_for(lambda: len(self._ops) < self.limits.max_pending_writes)

    def next_sequence(self) -> int:
        """Hand out the next sequence number (call, then append before awaiting anything)."""
        self.last_sequence += 1
        return self.last_sequence

    def append_nowait(self, row: OutboxRow, submitted_id: str = "") -> Awaitable[None]:
        """Queue a row for the next commit; await the result to know it is on disk.

        Queue rows in sequence order; ``submitted_id`` remembers a POS event id for
        idempotent resubmission.
        """
        return self._submit("append", (row, submitted_id))

    async def ack(self, sequence: int) -> int:
        """Delete every row up to sequence; returns how many were deleted."""
        if sequence <= self.acked_sequence:
            return 0
        return await self._submit("ack", sequence)

    async def mark_command(self, command_id: str) -> bool:
        """Remember a lane command id; False when it had been executed before."""
        return await self._submit("command", command_id)

    def _submit(self, kind: str, args: Any) -> asyncio.Future:
        if self._closing or self._db is None:
            raise RuntimeError("outbox is not open")
        op = _Op(kind, args)
        self._ops.append(op)
        self._ops_ready.set()
        return op.future

    async def _write_loop(self) -> None:
        while not (self._closing and not self._ops):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ops_ready.wait(), timeout=1.0)
            self._ops_ready.clear()
            ops, self._ops = self._ops[:2000], self._ops[2000:]
            if self._ops:
                self._ops_ready.set()
            if ops:
                try:
                    results = await self._run_transaction(ops)
                except Exception as exc:
                    log.exception("outbox write failed; %d operations lost", len(ops))
                    for op in ops:
                        if not op.future.done():
                            op.future.set_exception(exc)
                else:
                    for op, result in zip(ops, results, strict=True):
                        if not op.future.done():
                            op.future.set_result(result)
                async with self._space:
                    self._space.notify_all()
                for listener in self.commit_listeners:
                    listener()
            if time.monotonic() >= self._next_age_check and not self._closing:
                self._next_age_check = time.monotonic() + 1.0
                try:
                    await self._enforce_age()
                except Exception:
                    log.exception("outbox age check failed")

    async def _run_transaction(self, ops: list[_Op]) -> list[Any]:
        db = self._db
        assert db is not None
        rows: list[OutboxRow] = []
        ids: list[tuple[str, int, int]] = []
        results: list[Any] = []
        new_pending, acked_to = self.pending, self.acked_sequence
        now = self._clock_ns()
        await db.execute("BEGIN IMMEDIATE")
        try:
            for op in ops:
                if op.kind == "append":
                    row, submitted_id = op.args
                    rows.append(row)
                    if submitted_id:
                        ids.append((submitted_id, row.sequence, now))
                    results.append(None)
                elif op.kind == "ack":
                    results.append(0)  # filled in below, after the inserts
                elif op.kind == "command":
                    cursor = await db.execute(
                        "INSERT OR IGNORE INTO executed_commands VALUES (?, ?)", (op.args, now)
                    )
                    results.append(cursor.rowcount == 1)
            if rows:
                await db.executemany(
                    "INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?)",
                    [(r.sequence, r.event_id, r.lane_time_ns, r.payload) for r in rows],
                )
                new_pending += len(rows)
            if ids:
                await db.executemany("INSERT OR REPLACE INTO submitted_ids VALUES (?, ?, ?)", ids)
            for index, op in enumerate(ops):
                if op.kind == "ack" and op.args > acked_to:
                    cursor = await db.execute("DELETE FROM events WHERE sequence <= ?", (op.args,))
                    results[index] = cursor.rowcount
                    new_pending -= cursor.rowcount
                    acked_to = op.args
            if new_pending >= self.limits.max_events * self.limits.warn_fraction:
                self._check_warning(new_pending)
            drops = await self._enforce_size(db, new_pending)
            new_pending -= sum(d.count for d in drops)
            max_seq = max((r.sequence for r in rows), default=self.committed_sequence)
            if drops or acked_to != self.acked_sequence:
                # Rows are about to disappear: keep the sequence counter in meta. While
                # rows only get added, MAX(sequence) of the table already says it.
                await self._write_meta(db, max(max_seq, self.committed_sequence), acked_to)
            await db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await db.execute("ROLLBACK")
            raise
        self.committed_sequence = max(self.committed_sequence, max_seq)
        self.acked_sequence = acked_to
        self.pending = max(new_pending, 0)
        if rows and self.oldest_pending_ns is None:
            self.oldest_pending_ns = rows[0].lane_time_ns
        if drops or any(op.kind == "ack" for op in ops):
            self.oldest_pending_ns = await self._oldest(db)
        self._check_warning()
        for drop in drops:
            self._report_drop(drop)
        return results

    @staticmethod
    async def _write_meta(db: aiosqlite.Connection, last_sequence: int, acked: int) -> None:
        await db.executemany(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            [("last_sequence", last_sequence), ("acked_sequence", acked)],
        )

    async def _oldest(self, db: aiosqlite.Connection) -> int | None:
        # Lane time never goes backwards with sequence, so the first row is the oldest.
        rows = await db.execute_fetchall(
            "SELECT lane_time_ns FROM events ORDER BY sequence LIMIT 1"
        )
        return rows[0][0] if rows else None

    async def _enforce_size(self, db: aiosqlite.Connection, pending: int) -> list[DroppedEvents]:
        excess = pending - self.limits.max_events
        if excess <= 0:
            return []
        # Device readings go first: POS events were acknowledged to the POS (which is
        # refused new ones while the outbox is full), so they are the last to be dropped.
        victims = (
            "SELECT sequence FROM events WHERE event_id NOT IN (SELECT event_id FROM "
            "submitted_ids) ORDER BY sequence LIMIT ?"
        )
        rows = await db.execute_fetchall(
            f"SELECT MIN(sequence), MAX(sequence), COUNT(*) FROM ({victims})", (excess,)
        )
        first, last, count = rows[0]
        if count:
            await db.execute(f"DELETE FROM events WHERE sequence IN ({victims})", (excess,))
        if count < excess:
            rows = await db.execute_fetchall(
                "SELECT MIN(sequence), MAX(sequence), COUNT(*) FROM "
                "(SELECT sequence FROM events ORDER BY sequence LIMIT ?)",
                (excess - count,),
            )
            pos_first, pos_last, pos_count = rows[0]
            await db.execute("DELETE FROM events WHERE sequence <= ?", (pos_last,))
            first = pos_first if first is None else min(first, pos_first)
            last = pos_last if last is None else max(last, pos_last)
            count += pos_count
        reason = f"outbox full ({self.limits.max_events} events)"
        return [DroppedEvents(int(first), int(last), int(count), reason)]

    async def _enforce_age(self) -> None:
        db = self._db
        if db is None:
            return
        self._check_warning()
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + 60.0
            await self._prune_ids()
        cutoff = self._clock_ns() - int(self.limits.max_age_s * 1e9)
        if self.oldest_pending_ns is None or self.oldest_pending_ns >= cutoff:
            return
        await db.execute("BEGIN IMMEDIATE")
        try:
            (first, last, count), *_ = await db.execute_fetchall(
                "SELECT MIN(sequence), MAX(sequence), COUNT(*) FROM events WHERE lane_time_ns < ?",
                (cutoff,),
            )
            await db.execute("DELETE FROM events WHERE lane_time_ns < ?", (cutoff,))
            await self._write_meta(db, self.committed_sequence, self.acked_sequence)
            await db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await db.execute("ROLLBACK")
            raise
        self.pending = max(self.pending - int(count), 0)
        self.oldest_pending_ns = await self._oldest(db)
        if count:
            reason = f"older than the outbox age bound ({self.limits.max_age_s:g} s)"
            self._report_drop(DroppedEvents(int(first), int(last), int(count), reason))

    async def _prune_ids(self) -> None:
        db = self._db
        assert db is not None
        cutoff = self._clock_ns() - _KEEP_IDS_NS
        await db.execute("BEGIN IMMEDIATE")
        try:
            await db.execute("DELETE FROM submitted_ids WHERE recorded_ns < ?", (cutoff,))
            await db.execute("DELETE FROM executed_commands WHERE executed_ns < ?", (cutoff,))
            await db.execute(
                "DELETE FROM submitted_ids WHERE sequence <= "
                "(SELECT MAX(sequence) - ? FROM submitted_ids)",
                (_KEEP_IDS,),
            )
            await db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await db.execute("ROLLBACK")
            raise

    def _check_warning(self, pending: int | None = None) -> None:
        """Warn once each time the outbox crosses warn_fraction of a bound."""
        limits = self.limits
        pending = self.pending if pending is None else pending
        count_fraction = pending / limits.max_events
        age_s = 0.0
        if self.oldest_pending_ns is not None:
            age_s = max(0.0, (self._clock_ns() - self.oldest_pending_ns) / 1e9)
        age_fraction = age_s / limits.max_age_s
        over = max(count_fraction, age_fraction) >= limits.warn_fraction
        if over and not self._warned:
            log.warning(
                "outbox %s is filling up: %d of %d events, oldest %.0f s of %.0f s; fusion has "
                "acknowledged up to sequence %d. When a bound is reached the OLDEST EVENTS WILL "
                "BE DROPPED. Check the link to fusion.",
                self.path,
                pending,
                limits.max_events,
                age_s,
                limits.max_age_s,
                self.acked_sequence,
            )
        self._warned = over

    def _report_drop(self, drop: DroppedEvents) -> None:
        """Count a drop; log it at once, then at most every 10 s while drops go on."""
        self.dropped += drop.count
        unlogged = self._unlogged_drop
        if unlogged is not None:
            drop = DroppedEvents(
                min(unlogged.first_sequence, drop.first_sequence),
                max(unlogged.last_sequence, drop.last_sequence),
                unlogged.count + drop.count,
                drop.reason,
            )
        now = time.monotonic()
        if now - self._last_drop_log < 10.0:
            self._unlogged_drop = drop
            return
        self._unlogged_drop = None
        self._last_drop_log = now
        log.error(
            "outbox DROPPED %d events (sequences %d..%d, %d dropped since start): %s",
            drop.count,
            drop.first_sequence,
            drop.last_sequence,
            self.dropped,
            drop.reason,
        )
        if self._on_drop is not None:
            self._on_drop(drop)

    # -- reads ----------------------------------------------------------------------------

    async def read_after(self, sequence: int, limit: int) -> list[OutboxRow]:
        """Committed rows with a sequence above the given one, in order, at most limit."""
        assert self._db is not None
        rows = await self._db.execute_fetchall(
            "SELECT sequence, event_id, lane_time_ns, payload FROM events "
            "WHERE sequence > ? AND sequence <= ? ORDER BY sequence LIMIT ?",
            (sequence, self.committed_sequence, limit),
        )
        return [OutboxRow(int(s), e, int(t), bytes(p)) for s, e, t, p in rows]

    async def command_executed(self, command_id: str) -> bool:
        """True when a lane command id was carried out before."""
        assert self._db is not None
        rows = await self._db.execute_fetchall(
            "SELECT 1 FROM executed_commands WHERE command_id = ?", (command_id,)
        )
        return bool(rows)

    async def submitted_sequences(self, event_ids: list[str]) -> dict[str, int]:
        """The sequences POS event ids were recorded under, for those already recorded."""
        assert self._db is not None
        found: dict[str, int] = {}
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = await self._db.execute_fetchall(
                f"SELECT event_id, sequence FROM submitted_ids WHERE event_id IN ({marks})", chunk
            )
            found.update({e: int(s) for e, s in rows})
        return found
