"""Rollups kept on ingest, so that reports read aggregates whatever the history.

``rollup_lane`` (lane-health counters) and ``rollup_operator`` (POS-exception counters)
hold one row per lane (and operator) and UTC hour; ``rollup_item`` one row per store, item
and UTC day. Every write of facts adds its counts here in the same database transaction,
so the rollups always equal the facts. A report over [start, end) reads the buckets wholly
inside the range from the rollups and the partial buckets at its two ends from the detail
rows (at most an hour, or a day for the items list, at each end): exact figures whose cost
does not grow with history. UTC buckets keep this independent of store time zones.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from lanesight.reporting.counters import (
    LANE_COUNTERS,
    OPERATOR_COUNTERS,
    item_detail_part,
    lane_detail_parts,
    operator_detail_parts,
)
from lanesight.reporting.db import Connection
from lanesight.reporting.schema import DAY_MS, HOUR_MS

_LANE_INDEX = {c: i for i, c in enumerate(LANE_COUNTERS)}
_OPERATOR_INDEX = {c: i for i, c in enumerate(OPERATOR_COUNTERS)}
_INCIDENT_COUNTERS = {
    "scanner_no_read": "scanner_no_reads",
    "scale_not_zeroed": "scale_not_zeroed",
    "scale_over_capacity": "scale_over_capacity",
    "printer_paper_out": "printer_paper_out",
    "printer_cover_open": "printer_cover_open",
    "device_disconnected": "device_disconnections",
}
_POS_COUNTERS = {
    "void": "voids",
    "refund_with_receipt": "refunds_with_receipt",
    "refund_without_receipt": "refunds_without_receipt",
    "no_sale": "no_sales",
    "price_override": "price_overrides",
    "discount": "discounts",
    "cancelled": "cancelled_transactions",
    "attendant_override": "attendant_overrides",
}


def _upsert(table: str, keys: tuple[str, ...], counters: tuple[str, ...]) -> str:
    columns = (*keys, *counters)
    marks = ", ".join("?" * len(columns))
    adds = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in counters)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {adds}"
    )


_LANE_KEYS = ("store_id", "lane_id", "bucket_ms")
_OPERATOR_KEYS = ("store_id", "lane_id", "operator_id", "bucket_ms")
LANE_UPSERT = _upsert("rollup_lane", _LANE_KEYS, LANE_COUNTERS)
OPERATOR_UPSERT = _upsert("rollup_operator", _OPERATOR_KEYS, OPERATOR_COUNTERS)
ITEM_UPSERT = (
    "INSERT INTO rollup_item (store_id, bucket_ms, item_code, description, entries, keyed) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (store_id, bucket_ms, item_code) DO UPDATE SET "
    "entries = rollup_item.entries + excluded.entries, keyed = rollup_item.keyed + excluded.keyed"
)
CAMERA_UPSERT = (
    "INSERT INTO rollup_lane (store_id, lane_id, bucket_ms, camera_unhealthy_ms) "
    "VALUES (?, ?, ?, ?) ON CONFLICT (store_id, lane_id, bucket_ms) DO UPDATE SET "
    "camera_unhealthy_ms = rollup_lane.camera_unhealthy_ms + excluded.camera_unhealthy_ms"
)


def hour_of(time_ms: int) -> int:
    return time_ms - time_ms % HOUR_MS


def day_of(time_ms: int) -> int:
    return time_ms - time_ms % DAY_MS


@dataclass
class RollupDelta:
    """Counts to add to the rollups, gathered from one batch of facts."""

    lanes: dict[tuple[str, str, int], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0] * len(LANE_COUNTERS))
    )
    operators: dict[tuple[str, str, str, int], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0] * len(OPERATOR_COUNTERS))
    )
    items: dict[tuple[str, int, str], list] = field(default_factory=dict)

    def transaction(self, store: str, lane: str, operator: str, time_ms: int) -> None:
        bucket = hour_of(time_ms)
        self.lanes[(store, lane, bucket)][_LANE_INDEX["transactions"]] += 1
        self.operators[(store, lane, operator, bucket)][_OPERATOR_INDEX["transactions"]] += 1

    def add_items(self, rows: Iterable[tuple]) -> None:
        """Item fact rows (facts.FactBuilder._item_added's layout)."""
        scanned, first, keyed_i, weighed_i = (
            _LANE_INDEX[c]
            for c in ("items_scanned", "first_pass_scans", "items_keyed", "items_weighed")
        )
        entered = _LANE_INDEX["items_entered"]
        for row in rows:
            store, lane, time_ms, code, description, method = (
                row[1],
                row[2],
                row[5],
                row[8],
                row[9],
                row[10],
            )
            counts = self.lanes[(store, lane, hour_of(time_ms))]
            counts[entered] += 1
            keyed = method == "keyed"
            if method == "scanned":
                counts[scanned] += 1
                if row[16] == 1:
                    counts[first] += 1
            elif keyed:
                counts[keyed_i] += 1
            if row[12]:
                counts[weighed_i] += 1
            if row[17]:
                key = (store, day_of(time_ms), code)
                item = self.items.get(key)
                if item is None:
                    self.items[key] = [description, 1, int(keyed)]
                else:
                    item[0] = max(item[0], description)
                    item[1] += 1
                    item[2] += int(keyed)

    def add_incidents(self, rows: Iterable[tuple]) -> None:
        for row in rows:
            counter = _INCIDENT_COUNTERS.get(row[6])
            if counter is not None:
                self.lanes[(row[1], row[2], hour_of(row[4]))][_LANE_INDEX[counter]] += 1

    def add_pos_events(self, rows: Iterable[tuple]) -> None:
        after = _OPERATOR_INDEX["voids_after_tender"]
        for row in rows:
            counter = _POS_COUNTERS.get(row[7])
            if counter is None:
                continue
            counts = self.operators[(row[1], row[2], row[4], hour_of(row[5]))]
            counts[_OPERATOR_INDEX[counter]] += 1
            if counter == "voids" and row[8]:
                counts[after] += 1

    async def write(self, db: Connection) -> None:
        if self.lanes:
            await db.executemany(LANE_UPSERT, [(*k, *v) for k, v in sorted(self.lanes.items())])
        if self.operators:
            await db.executemany(
                OPERATOR_UPSERT, [(*k, *v) for k, v in sorted(self.operators.items())]
            )
        if self.items:
            await db.executemany(ITEM_UPSERT, [(*k, *v) for k, v in sorted(self.items.items())])


async def rebuild_rollups(db: Connection, day_start_ms: Callable[[str], int]) -> None:
    """Recompute every rollup from the detail rows (and SQLite's former daily rollups).

    Used once when a database is migrated to rollups, and by the benchmark after it loads
    detail rows directly. Runs inside the caller's transaction. ``day_start_ms`` maps a
    local day of the former daily rollups to its first instant.
    """
    for table in ("rollup_lane", "rollup_operator", "rollup_item"):
        await db.execute(f"DELETE FROM {table}")
    hour = f"time_ms - time_ms % {HOUR_MS}"
    for upsert, counters, keys, parts, daily in (
        (LANE_UPSERT, LANE_COUNTERS, "store_id, lane_id", lane_detail_parts, "daily_lane"),
        (
            OPERATOR_UPSERT,
            OPERATOR_COUNTERS,
            "store_id, lane_id, operator_id",
            operator_detail_parts,
            "daily_operator",
        ),
    ):
        width = keys.count(",") + 1
        union = [
            p.replace(f"SELECT {keys}, {hour},", f"SELECT {keys}, {hour} AS bucket_ms,", 1)
            for p in parts(f"{keys}, {hour}", "1 = 1")
        ]
        sums = ", ".join(f"SUM({c})" for c in counters)
        rows = await db.fetchall(
            f"SELECT {keys}, bucket_ms, {sums} FROM ({' UNION ALL '.join(union)}) AS u "
            f"GROUP BY {keys}, bucket_ms",
        )
        await db.executemany(
            upsert, [(*r[:width], *(int(v or 0) for v in r[width:])) for r in rows]
        )
        if db.dialect.name == "sqlite" and await _has_table(db, daily):
            rows = await db.fetchall(
                f"SELECT {keys}, local_day, {sums} FROM {daily} GROUP BY {keys}, local_day"
            )
            await db.executemany(
                upsert,
                [
                    (
                        *r[:width],
                        hour_of(day_start_ms(r[width])),
                        *(int(v or 0) for v in r[width + 1 :]),
                    )
                    for r in rows
                ],
            )
    day = f"time_ms - time_ms % {DAY_MS}"
    part = item_detail_part(f"store_id, {day}", "1 = 1").replace(
        f"SELECT store_id, {day},", f"SELECT store_id, {day} AS bucket_ms,", 1
    )
    rows = await db.fetchall(
        f"SELECT store_id, bucket_ms, item_code, description, entries, keyed FROM ({part}) AS u"
    )
    await db.executemany(
        ITEM_UPSERT, [(s, int(b), c, d or "", int(e), int(k)) for s, b, c, d, e, k in rows]
    )
    if db.dialect.name == "sqlite" and await _has_table(db, "daily_item"):
        rows = await db.fetchall(
            "SELECT store_id, local_day, item_code, MAX(description), SUM(entries), SUM(keyed) "
            "FROM daily_item GROUP BY store_id, local_day, item_code"
        )
        await db.executemany(
            ITEM_UPSERT,
            [(s, day_of(day_start_ms(d)), c, n, int(e), int(k)) for s, d, c, n, e, k in rows],
        )


async def _has_table(db: Connection, name: str) -> bool:
    rows = await db.fetchall(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]
    )
    return bool(rows)
