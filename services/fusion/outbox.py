"""Fusion's durable queue of records for reporting: SQLite (WAL), committed before lanes are acked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import aiosqlite

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (sequence INTEGER PRIMARY KEY, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS open_alerts (alert_id TEXT PRIMARY KEY, alert BLOB NOT NULL);
"""
_RETRY_S = 1.0


class ForwardOutbox:
    """Records (already framed for IngestRecords) keyed by record sequence, with group commit.

    The same pattern as the lane agent's outbox (``lanesight.device.outbox``): writes are
    queued without awaiting, one writer task commits everything queued so far in one
    transaction, and ``flushed()`` waits until what was queued before it is on disk.
    Unlike the lane outbox it never drops anything: a failing commit is retried, and
    whoever waits on ``flushed()`` (a lane's acknowledgement) waits with it. It also keeps
    the latest revision of every open alert (``remember_alert``), in the same commits, so
    the alerts open when fusion stopped can still be resolved after it starts again.
    """

    def __init__(self, path: str | Path, synchronous: str = "normal") -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self._db: aiosqlite.Connection | None = None
        self._appends: list[tuple[int, bytes]] = []
        self._delete_upto = 0
        self._alerts: dict[str, bytes | None] = {}  # alert id -> revision, None: forget
        #: Alert revisions that were open when the file was last closed (id -> bytes).
        self.open_alerts_at_start: dict[str, bytes] = {}
        self._next_sequence = 0
        self._queued = 0  # generation of the last queued change
        self._committed = 0  # generation known to be on disk
        self._waiters: list[tuple[int, asyncio.Future]] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task | None = None
        self._closing = False
        self.commit_failures = 0

    async def open(self) -> tuple[list[bytes], int]:
        """Open the file; returns the records not acknowledged yet (in order) and the next
        record sequence to hand out (0 when the file is new)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives any process crash (kill -9); FULL also a power cut.
        await db.execute(f"PRAGMA synchronous={self.synchronous}")
        await db.executescript(_SCHEMA)
        rows = await db.execute_fetchall("SELECT sequence, record FROM records ORDER BY sequence")
        meta = await db.execute_fetchall("SELECT value FROM meta WHERE key = 'next_sequence'")
        next_sequence = int(meta[0][0]) if meta else 0
        if rows:
            next_sequence = max(next_sequence, int(rows[-1][0]) + 1)
        self._next_sequence = next_sequence
        alerts = await db.execute_fetchall("SELECT alert_id, alert FROM open_alerts")
        self.open_alerts_at_start = {alert_id: bytes(alert) for alert_id, alert in alerts}
        self._writer = asyncio.create_task(self._write_loop(), name="fusion-forward-outbox")
        return [bytes(record) for _, record in rows], next_sequence

    @property
    def backlog(self) -> int:
        """Changes queued and not committed yet."""
        return self._queued - self._committed

    def append(self, first_sequence: int, records: list[bytes]) -> None:
        """Queue consecutive records (numbered from first_sequence) for the next commit."""
        numbers = range(first_sequence, first_sequence + len(records))
        self._appends.extend(zip(numbers, records, strict=True))
        self._next_sequence = first_sequence + len(records)
        self._changed()

    def delete_upto(self, sequence: int) -> None:
        """Queue the deletion of every record up to sequence (reporting stored them)."""
        if sequence > self._delete_upto:
            self._delete_upto = sequence
            self._changed()

    def remember_alert(self, alert_id: str, alert: bytes | None) -> None:
        """Queue an open alert's latest revision (None: it is closed, forget it)."""
        self._alerts[alert_id] = alert
        self._changed()

    def _changed(self) -> None:
        if self._closing and self._writer is None:
            raise RuntimeError("fusion forward outbox is closed")
        self._queued += 1
        self._wake.set()

    async def flushed(self) -> None:
        """Wait until every change queued before this call is committed."""
        target = self._queued
        if self._committed >= target:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        await asyncio.shield(future)

    async def close(self) -> None:
        """Commit what is queued and close; idempotent."""
        self._closing = True
        writer, self._writer = self._writer, None
        if writer is not None:
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(writer), timeout=10.0)
            except TimeoutError:
                log.error("fusion forward outbox: commit did not finish in 10 s; closing anyway")
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
        for _, future in self._waiters:
            if not future.done():
                future.set_exception(RuntimeError("fusion forward outbox closed"))
        self._waiters.clear()
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def _write_loop(self) -> None:
        while True:
            if self._committed >= self._queued:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            target = self._queued
            appends, self._appends = self._appends, []
            alerts, self._alerts = self._alerts, {}
            delete_upto = self._delete_upto
            try:
                await self._commit(appends, delete_upto, alerts)
            except Exception:
                # Keep everything queued and try again: nothing is acked meanwhile.
                self._appends[:0] = appends
                self._alerts = {**alerts, **self._alerts}
                self.commit_failures += 1
                if self.commit_failures == 1 or self.commit_failures % 100 == 0:
                    log.exception(
                        "fusion forward outbox %s: commit failed (%d times); lanes are not"
                        " acknowledged until it succeeds",
                        self.path,
                        self.commit_failures,
                    )
                if self._closing:
                    return
                await asyncio.sleep(_RETRY_S)
                continue
            self._committed = target
            still_waiting = []
            for wanted, future in self._waiters:
                if wanted <= target:
                    if not future.done():
                        future.set_result(None)
                else:
                    still_waiting.append((wanted, future))
            self._waiters = still_waiting

    async def _commit(
        self,
        appends: list[tuple[int, bytes]],
        delete_upto: int,
        alerts: dict[str, bytes | None],
    ) -> None:
        db = self._db
        assert db is not None
        await db.execute("BEGIN IMMEDIATE")
        try:
            if appends:
                await db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?)", appends)
            if delete_upto:
                await db.execute("DELETE FROM records WHERE sequence <= ?", (delete_upto,))
            if alerts:
                await db.executemany(
                    "INSERT OR REPLACE INTO open_alerts VALUES (?, ?)",
                    [(i, a) for i, a in alerts.items() if a is not None],
                )
                await db.executemany(
                    "DELETE FROM open_alerts WHERE alert_id = ?",
                    [(i,) for i, a in alerts.items() if a is None],
                )
            await db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('next_sequence', ?)", (self._next_sequence,)
            )
            await db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await db.execute("ROLLBACK")
            raise
