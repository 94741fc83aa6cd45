"""Retention: roll old detail up into daily aggregates, then purge raw events and evidence."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from lanesight.reporting.counters import unhealthy_intervals
from lanesight.reporting.rollups import CAMERA_UPSERT, hour_of
from lanesight.reporting.schema import HOUR_MS
from lanesight.reporting.store import ReportStore

log = logging.getLogger(__name__)

_DAY_MS = 86_400_000
_DETAIL_TABLES = ("transactions", "items", "pos_events", "lane_incidents")


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What one retention pass did."""

    purged_before_day: str
    raw_events_deleted: int
    detail_rows_deleted: int
    evidence_references_deleted: int


async def apply_retention(store: ReportStore, now_ms: int) -> RetentionResult:
    """Purge raw events and per-event detail older than the raw retention (rolled up first,
    by whole local days) and alert evidence references older than the evidence retention."""
    config = store.config
    local_time = store.local_time
    cutoff_day = local_time.day(now_ms - config.raw_event_retention_days * _DAY_MS)
    cutoff_ms = local_time.day_start_ms(cutoff_day)
    evidence_cutoff_ms = now_ms - config.evidence_retention_days * _DAY_MS
    # Old events still waiting for the projector are projected before anything goes.
    await store.projected()
    async with store.write_transaction() as db:
        # The rollups already hold every counter (kept on ingest); only the camera time,
        # which reports compute from the changes, is rolled up before they go.
        await _roll_up_camera(store, db, cutoff_ms)
        detail_deleted = 0
        for table in _DETAIL_TABLES:
            detail_deleted += await db.execute(
                f"DELETE FROM {table} WHERE local_day < ?", [cutoff_day]
            )
        # Never an event the projector has not reached (stored since the wait above).
        raw_deleted = await db.execute(
            "DELETE FROM events WHERE time_ms < ? AND (ingest_seq IS NULL OR ingest_seq <= "
            "(SELECT position FROM projection_cursor WHERE name = 'facts'))",
            [cutoff_ms],
        )
        evidence_deleted = await db.execute(
            "DELETE FROM alert_evidence WHERE alert_id IN "
            "(SELECT alert_id FROM alerts WHERE raised_ms < ?)",
            [evidence_cutoff_ms],
        )
        greatest = db.dialect.greatest("meta.value", "excluded.value")
        await db.execute(
            "INSERT INTO meta (key, value) VALUES ('detail_purged_before_day', ?) "
            f"ON CONFLICT (key) DO UPDATE SET value = {greatest}",
            [cutoff_day],
        )
    result = RetentionResult(cutoff_day, raw_deleted, detail_deleted, evidence_deleted)
    if raw_deleted or detail_deleted or evidence_deleted:
        log.info(
            "retention: purged %d raw events and %d detail rows before %s, %d evidence references",
            raw_deleted,
            detail_deleted,
            cutoff_day,
            evidence_deleted,
        )
    return result


async def _roll_up_camera(store: ReportStore, db, cutoff_ms: int) -> None:
    """Add unhealthy camera time before the cutoff to the lane rollup, per hour, and leave
    a carry-over change at the cutoff for cameras still unhealthy then."""
    local_time = store.local_time
    changes = await db.fetchall(
        "SELECT store_id, lane_id, camera_id, time_ms, healthy FROM camera_changes "
        "ORDER BY store_id, lane_id, camera_id, time_ms"
    )
    if not changes:
        return
    clock = {
        (s, ln): t
        for s, ln, t in await db.fetchall("SELECT store_id, lane_id, last_time_ms FROM lane_clock")
    }
    per_hour: dict[tuple[str, str, int], int] = defaultdict(int)
    for store_id, lane_id, begin, end in unhealthy_intervals(
        changes, lambda s, ln: clock.get((s, ln), 0)
    ):
        end = min(end, cutoff_ms)
        while begin < end:
            bucket = hour_of(begin)
            hour_end = min(end, bucket + HOUR_MS)
            per_hour[(store_id, lane_id, bucket)] += hour_end - begin
            begin = hour_end
    await db.executemany(
        CAMERA_UPSERT, [(*key, ms) for key, ms in sorted(per_hour.items()) if ms > 0]
    )
    carry = []
    last_before: dict[tuple[str, str, str], tuple] = {}
    for change in changes:
        if change[3] < cutoff_ms:
            last_before[change[:3]] = change
    for (store_id, lane_id, camera_id), change in last_before.items():
        if not change[4]:
            carry.append(
                (
                    f"carry:{store_id}:{lane_id}:{camera_id}:{cutoff_ms}",
                    store_id,
                    lane_id,
                    camera_id,
                    cutoff_ms,
                    local_time.day(cutoff_ms),
                    0,
                )
            )
    await db.execute("DELETE FROM camera_changes WHERE time_ms < ?", [cutoff_ms])
    await db.executemany(
        "INSERT INTO camera_changes VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", carry
    )
