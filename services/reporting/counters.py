"""The additive counters behind lane health and POS exceptions, over detail facts or rollups.

Reports and retention share these definitions: retention rolls detail rows up per day with
the same SQL the reports run over the detail rows that remain, so a report reads the same
figures before and after a purge.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from lanesight.reporting.model import POS_MEASURES

LANE_COUNTERS = (
    "transactions",
    "items_entered",
    "items_scanned",
    "first_pass_scans",
    "items_keyed",
    "items_weighed",
    "scanner_no_reads",
    "scale_not_zeroed",
    "scale_over_capacity",
    "printer_paper_out",
    "printer_cover_open",
    "device_disconnections",
)
OPERATOR_COUNTERS = ("transactions", *POS_MEASURES)


def _count(condition: str) -> str:
    """SQL counting the rows where ``condition`` holds (both backends)."""
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


# Detail table -> {counter: SQL aggregate}; counters a table does not feed are 0.
_LANE_SOURCES: dict[str, dict[str, str]] = {
    "transactions": {"transactions": "COUNT(*)"},
    "items": {
        "items_entered": "COUNT(*)",
        "items_scanned": _count("entry_method = 'scanned'"),
        "first_pass_scans": _count("first_pass = 1"),
        "items_keyed": _count("entry_method = 'keyed'"),
        "items_weighed": "SUM(weighed)",
    },
    "lane_incidents": {
        "scanner_no_reads": _count("kind = 'scanner_no_read'"),
        "scale_not_zeroed": _count("kind = 'scale_not_zeroed'"),
        "scale_over_capacity": _count("kind = 'scale_over_capacity'"),
        "printer_paper_out": _count("kind = 'printer_paper_out'"),
        "printer_cover_open": _count("kind = 'printer_cover_open'"),
        "device_disconnections": _count("kind = 'device_disconnected'"),
    },
}
_OPERATOR_SOURCES: dict[str, dict[str, str]] = {
    "transactions": {"transactions": "COUNT(*)"},
    "pos_events": {
        "voids": _count("kind = 'void'"),
        "voids_after_tender": _count("kind = 'void' AND after_tender = 1"),
        "refunds_with_receipt": _count("kind = 'refund_with_receipt'"),
        "refunds_without_receipt": _count("kind = 'refund_without_receipt'"),
        "no_sales": _count("kind = 'no_sale'"),
        "price_overrides": _count("kind = 'price_override'"),
        "discounts": _count("kind = 'discount'"),
        "cancelled_transactions": _count("kind = 'cancelled'"),
        "attendant_overrides": _count("kind = 'attendant_override'"),
    },
}


def _parts(sources: dict[str, dict[str, str]], counters: tuple[str, ...], keys: str, where: str):
    for table, exprs in sources.items():
        columns = ", ".join(
            f"COALESCE({exprs[c]}, 0) AS {c}" if c in exprs else f"0 AS {c}" for c in counters
        )
        yield f"SELECT {keys}, {columns} FROM {table} WHERE {where} GROUP BY {keys}"


def lane_detail_parts(keys: str, where: str) -> list[str]:
    """SELECTs of the lane counters per ``keys`` from the detail tables matching ``where``."""
    return list(_parts(_LANE_SOURCES, LANE_COUNTERS, keys, where))


def operator_detail_parts(keys: str, where: str) -> list[str]:
    """SELECTs of the per-operator counters per ``keys`` from the detail tables."""
    return list(_parts(_OPERATOR_SOURCES, OPERATOR_COUNTERS, keys, where))


def item_detail_part(keys: str, where: str) -> str:
    """SELECT of per-item entries and keyed entries (label-bearing items only) per ``keys``
    (which may be empty) and item code."""
    lead = f"{keys}, " if keys else ""
    return (
        f"SELECT {lead}item_code, MAX(description) AS description, COUNT(*) AS entries, "
        f"SUM(CASE WHEN entry_method = 'keyed' THEN 1 ELSE 0 END) AS keyed "
        f"FROM items WHERE label_item = 1 AND ({where}) "
        f"GROUP BY {lead}item_code"
    )


def rollup_part(table: str, counters: tuple[str, ...], keys: str, where: str) -> str:
    """SELECT of the same counters from a daily rollup table."""
    columns = ", ".join(f"SUM({c}) AS {c}" for c in counters)
    return f"SELECT {keys}, {columns} FROM {table} WHERE {where} GROUP BY {keys}"


CameraChange = tuple[str, str, str, int, int]  # store, lane, camera, time_ms, healthy


def unhealthy_intervals(
    changes: Iterable[CameraChange], lane_clock: Callable[[str, str], int]
) -> Iterable[tuple[str, str, int, int]]:
    """(store, lane, start_ms, end_ms) of every unhealthy stretch of every camera.

    ``changes`` must be ordered by store, lane, camera and time. A stretch still open at
    the camera's last change ends at the lane's last known event time (``lane_clock``).
    """
    previous: CameraChange | None = None
    for change in changes:
        if previous is not None and previous[:3] == change[:3]:
            if not previous[4]:
                yield previous[0], previous[1], previous[3], change[3]
        elif previous is not None and not previous[4]:
            yield previous[0], previous[1], previous[3], lane_clock(previous[0], previous[1])
        previous = change
    if previous is not None and not previous[4]:
        yield previous[0], previous[1], previous[3], lane_clock(previous[0], previous[1])


def clipped_unhealthy_ms(
    intervals: Iterable[tuple[str, str, int, int]], start_ms: int | None, end_ms: int | None
) -> dict[tuple[str, str], int]:
    """Unhealthy milliseconds per lane within [start_ms, end_ms)."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for store, lane, begin, end in intervals:
        if start_ms is not None:
            begin = max(begin, start_ms)
        if end_ms is not None:
            end = min(end, end_ms)
        if end > begin:
            totals[(store, lane)] += end - begin
    return totals
