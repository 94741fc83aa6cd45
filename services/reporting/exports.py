"""Exports: any report as CSV, and every report on one self-contained HTML page with charts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from lanesight.reporting.config import ReportingConfig
from lanesight.reporting.localtime import StoreZones
from lanesight.reporting.model import (
    AlertQualityRow,
    AlertRecord,
    InvalidArgument,
    KeyedItem,
    LaneHealthRow,
    PageInfo,
    PageRequest,
    PosExceptionRow,
    ReportFilter,
    ShrinkRow,
    StoreComparisonRow,
)
from lanesight.reporting.page import Page
from lanesight.reporting.reports import Reports
from lanesight.reporting.tables import (
    alerts_table,
    iso_ms,
    lane_table,
    pos_table,
    quality_table,
    shrink_table,
    stores_table,
    to_csv,
)

KINDS = (
    "shrink",
    "alert_quality",
    "lane_health",
    "pos_exceptions",
    "alerts",
    "store_comparison",
    "all",
)
# The alert list on the HTML page stops at this many, newest first.
HTML_ALERTS = 100


@dataclass(slots=True)
class ReportBundle:
    """The reports an export needs; None where the export does not include a report."""

    filter: ReportFilter
    group_by: list[str]
    shrink: list[ShrinkRow] | None = None
    shrink_by_day: list[ShrinkRow] | None = None
    shrink_by_lane: list[ShrinkRow] | None = None
    quality: list[AlertQualityRow] | None = None
    transactions: int = 0
    lanes: list[LaneHealthRow] | None = None
    keyed: list[KeyedItem] = field(default_factory=list)
    pos: list[PosExceptionRow] | None = None
    alerts: list[AlertRecord] | None = None
    stores: list[StoreComparisonRow] | None = None
    by_hour: list[ShrinkRow] | None = None
    # Evidence event id -> (kind, lane time) of the alerts on the page, where still kept.
    evidence: dict[str, tuple[str, int]] = field(default_factory=dict)
    config: ReportingConfig | None = None
    zones: StoreZones = field(default_factory=StoreZones)


@dataclass(frozen=True, slots=True)
class Export:
    """An exported file."""

    content_type: str
    filename: str
    data: bytes


async def all_pages(fetch: Callable[[PageRequest], Awaitable[tuple[list, PageInfo]]], size: int):
    """Every row of a paged report."""
    rows, token = [], ""
    while True:
        chunk, info = await fetch(PageRequest(page_size=size, page_token=token))
        rows.extend(chunk)
        token = info.next_page_token
        if not token:
            return rows


async def gather(
    reports: Reports,
    kind: str,
    f: ReportFilter,
    group_by: list[str],
    region: str = "",
    local_days: tuple[str, str] | None = None,
) -> ReportBundle:
    """Run the reports ``kind`` needs ("all" for the whole page)."""
    size = reports.config.max_page_size
    bundle = ReportBundle(f, group_by or ["day"], config=reports.config, zones=reports.zones)
    if kind in ("shrink", "all"):
        bundle.shrink = await all_pages(lambda p: reports.shrink(f, bundle.group_by, p), size)
        # The charts' figures: one small grouping each over the alert rollup (one grouping
        # by lane, day and hour would return a row per lane-hour).
        bundle.shrink_by_lane = await reports.shrink_rows(f, ["lane"])
        bundle.shrink_by_day = (
            bundle.shrink if bundle.group_by == ["day"] else await reports.shrink_rows(f, ["day"])
        )
        bundle.by_hour = await reports.shrink_rows(f, ["hour_of_day"])
    if kind in ("alert_quality", "all"):
        rows, token = [], ""
        while True:
            chunk, bundle.transactions, info = await reports.alert_quality(
                f, PageRequest(size, token)
            )
            rows.extend(chunk)
            if not (token := info.next_page_token):
                break
        bundle.quality = rows
    if kind in ("lane_health", "all"):
        lanes, token = [], ""
        while True:
            lane_page, bundle.keyed, info = await reports.lane_health(f, PageRequest(size, token))
            lanes.extend(lane_page)
            if not (token := info.next_page_token):
                break
        bundle.lanes = lanes
    if kind in ("pos_exceptions", "all"):
        bundle.pos = await all_pages(lambda p: reports.pos_exceptions(f, p), size)
    if kind in ("store_comparison", "all"):
        bundle.stores = await reports.store_comparison(f, region, local_days)
    if kind == "alerts":
        bundle.alerts = await all_pages(lambda p: reports.list_alerts(f, "unspecified", p), size)
    elif kind == "all":
        bundle.alerts, _ = await reports.list_alerts(f, "unspecified", PageRequest(HTML_ALERTS))
        bundle.evidence = await reports.evidence_events(bundle.alerts)
    return bundle


async def export_report(
    reports: Reports,
    kind: str,
    fmt: str,
    f: ReportFilter,
    group_by: list[str],
    now_ms: int,
    region: str = "",
    local_days: tuple[str, str] | None = None,
) -> Export:
    """A report as a CSV file or an HTML page."""
    if kind not in KINDS:
        raise InvalidArgument("kind", f"unknown report {kind!r}")
    if fmt not in ("csv", "html"):
        raise InvalidArgument("format", f"unknown format {fmt!r}")
    if fmt == "csv" and kind == "all":
        raise InvalidArgument("format", "CSV holds one report; export ALL as HTML")
    f.validate()
    bundle = await gather(reports, kind, f, group_by, region, local_days)
    stamp = iso_ms(now_ms)[:10].replace("-", "")
    name = f"lanesight-{kind.replace('_', '-')}-{stamp}"
    if fmt == "csv":
        return Export("text/csv; charset=utf-8", f"{name}.csv", csv_of(bundle, kind).encode())
    page = render_html(bundle, now_ms)
    return Export("text/html; charset=utf-8", f"{name}.html", page.encode())


def csv_of(bundle: ReportBundle, kind: str) -> str:
    """The one table of a report as CSV."""
    tables = {
        "shrink": lambda: shrink_table(bundle.shrink or [], bundle.group_by),
        "alert_quality": lambda: quality_table(bundle.quality or []),
        "lane_health": lambda: lane_table(bundle.lanes or []),
        "pos_exceptions": lambda: pos_table(bundle.pos or []),
        "alerts": lambda: alerts_table(bundle.alerts or []),
        "store_comparison": lambda: stores_table(bundle.stores or []),
    }
    return to_csv(tables[kind]())


# --- HTML ------------------------------------------------------------------------------------


def render_html(bundle: ReportBundle, now_ms: int) -> str:
    """One self-contained page (inline CSS and SVG, no scripts) of the bundle's reports."""
    return Page(bundle).render(now_ms)
