"""Retention: roll old detail up into daily aggregates, then purge raw events and evidence."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

from lanesight.reporting.counters import (
    LANE_COUNTERS,
    OPERATOR_COUNTERS,
    item_detail_part,
    lane_detail_parts,
    operator_detail_parts,
    unhealthy_intervals,
)
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


def _upsert(
    table: str, keys: str, counters: tuple[str, ...], union_parts: list[str], zeros: tuple = ()
) -> str:
    """INSERT ... SELECT of summed counters that adds onto existing rollup rows.

    ``zeros`` names further columns of the rollup table that this source sets to 0.
    """
    columns = ", ".join([*counters, *zeros])
    sums = ", ".join([f"SUM({c})" for c in counters] + ["0"] * len(zeros))
    updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
    # "WHERE true" keeps SQLite from reading ON CONFLICT as part of the SELECT's join.
    return (
        f"INSERT INTO {table} ({keys}, {columns}) "
        f"SELECT {keys}, {sums} FROM ({' UNION ALL '.join(union_parts)}) WHERE true "
        f"GROUP BY {keys} ON CONFLICT ({keys}) DO UPDATE SET {updates}"
    )


async def apply_retention(store: ReportStore, now_ms: int) -> RetentionResult:
    """Purge raw events and per-event detail older than the raw retention (rolled up first,
    by whole local days) and alert evidence references older than the evidence retention."""
    config = store.config
    local_time = store.local_time
    cutoff_day = local_time.day(now_ms - config.raw_event_retention_days * _DAY_MS)
    cutoff_ms = local_time.day_start_ms(cutoff_day)
    evidence_cutoff_ms = now_ms - config.evidence_retention_days * _DAY_MS
    old = "local_day < ?"
    async with store.write_transaction() as db:
        lane_keys = "store_id, lane_id, local_day"
        parts = lane_detail_parts(lane_keys, old)
        await db.execute(
            _upsert("daily_lane", lane_keys, LANE_COUNTERS, parts, ("camera_unhealthy_ms",)),
            [cutoff_day] * len(parts),
        )
        op_keys = "store_id, lane_id, operator_id, local_day"
        parts = operator_detail_parts(op_keys, old)
        await db.execute(
            _upsert("daily_operator", op_keys, OPERATOR_COUNTERS, parts),
            [cutoff_day] * len(parts),
        )
        await db.execute(
            "INSERT INTO daily_item (store_id, lane_id, local_day, item_code, description, "
            "entries, keyed) SELECT * FROM ("
            + item_detail_part("store_id, lane_id, local_day", old)
            + ") WHERE true ON CONFLICT (store_id, lane_id, local_day, item_code) DO UPDATE SET "
            "entries = daily_item.entries + excluded.entries, "
            "keyed = daily_item.keyed + excluded.keyed",
            [cutoff_day],
        )
        await _roll_up_camera(store, db, cutoff_ms)
        detail_deleted = 0
        for table in _DETAIL_TABLES:
            cursor = await db.execute(f"DELETE FROM {table} WHERE local_day < ?", [cutoff_day])
            detail_deleted += cursor.rowcount
        cursor = await db.execute("DELETE FROM events WHERE time_ms < ?", [cutoff_ms])
        raw_deleted = cursor.rowcount
        cursor = await db.execute(
            "DELETE FROM alert_evidence WHERE alert_id IN "
            "(SELECT alert_id FROM alerts WHERE raised_ms < ?)",
            [evidence_cutoff_ms],
        )
        evidence_deleted = cursor.rowcount
        await db.execute(
            "INSERT INTO meta (key, value) VALUES ('detail_purged_before_day', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
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
    """Add unhealthy camera time before the cutoff to daily_lane, per local day, and leave a
    carry-over change at the cutoff for cameras still unhealthy then."""
    local_time = store.local_time
    async with db.execute(
        "SELECT store_id, lane_id, camera_id, time_ms, healthy FROM camera_changes "
        "ORDER BY store_id, lane_id, camera_id, time_ms"
    ) as cursor:
        changes = list(await cursor.fetchall())
    if not changes:
        return
    async with db.execute("SELECT store_id, lane_id, last_time_ms FROM lane_clock") as cursor:
        clock = {(s, ln): t for s, ln, t in await cursor.fetchall()}
    per_day: dict[tuple[str, str, str], int] = defaultdict(int)
    for store_id, lane_id, begin, end in unhealthy_intervals(
        changes, lambda s, ln: clock.get((s, ln), 0)
    ):
        end = min(end, cutoff_ms)
        while begin < end:
            day = local_time.day(begin)
            day_end = min(end, local_time.day_start_ms(local_time.next_day(day)))
            per_day[(store_id, lane_id, day)] += day_end - begin
            begin = day_end
    zeros = ", ".join("0" for _ in LANE_COUNTERS)
    await db.executemany(
        f"INSERT INTO daily_lane (store_id, lane_id, local_day, {', '.join(LANE_COUNTERS)}, "
        f"camera_unhealthy_ms) VALUES (?, ?, ?, {zeros}, ?) "
        "ON CONFLICT (store_id, lane_id, local_day) DO UPDATE SET "
        "camera_unhealthy_ms = daily_lane.camera_unhealthy_ms + excluded.camera_unhealthy_ms",
        [(*key, ms) for key, ms in per_day.items() if ms > 0],
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
    await db.executemany("INSERT OR IGNORE INTO camera_changes VALUES (?, ?, ?, ?, ?, ?, ?)", carry)
