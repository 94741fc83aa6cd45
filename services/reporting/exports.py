"""Exports: any report as CSV, and every report on one self-contained HTML page with charts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from html import escape

from lanesight.common.money import format_minor
from lanesight.reporting import charts
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
)
from lanesight.reporting.reports import Reports
from lanesight.reporting.tables import (
    Table,
    alerts_table,
    iso_ms,
    keyed_table,
    lane_table,
    pos_table,
    quality_table,
    shrink_table,
    to_csv,
)

KINDS = ("shrink", "alert_quality", "lane_health", "pos_exceptions", "alerts", "all")
# The alert list on the HTML page stops at this many, newest first.
HTML_ALERTS = 100
_MAX_CHART_DAYS = 366


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


async def gather(reports: Reports, kind: str, f: ReportFilter, group_by: list[str]) -> ReportBundle:
    """Run the reports ``kind`` needs ("all" for the whole page)."""
    size = reports.config.max_page_size
    bundle = ReportBundle(f, group_by or ["day"])
    if kind in ("shrink", "all"):
        bundle.shrink = await all_pages(lambda p: reports.shrink(f, bundle.group_by, p), size)
        bundle.shrink_by_day = await all_pages(lambda p: reports.shrink(f, ["day"], p), size)
        bundle.shrink_by_lane = await all_pages(lambda p: reports.shrink(f, ["lane"], p), size)
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
    if kind == "alerts":
        bundle.alerts = await all_pages(lambda p: reports.list_alerts(f, "unspecified", p), size)
    elif kind == "all":
        bundle.alerts, _ = await reports.list_alerts(f, "unspecified", PageRequest(HTML_ALERTS))
    return bundle


async def export_report(
    reports: Reports, kind: str, fmt: str, f: ReportFilter, group_by: list[str], now_ms: int
) -> Export:
    """A report as a CSV file or an HTML page."""
    if kind not in KINDS:
        raise InvalidArgument("kind", f"unknown report {kind!r}")
    if fmt not in ("csv", "html"):
        raise InvalidArgument("format", f"unknown format {fmt!r}")
    if fmt == "csv" and kind == "all":
        raise InvalidArgument("format", "CSV holds one report; export ALL as HTML")
    f.validate()
    bundle = await gather(reports, kind, f, group_by)
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
    }
    return to_csv(tables[kind]())


# --- HTML ------------------------------------------------------------------------------------

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;color:#222;margin:24px;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:2px solid #ddd}
p.meta{color:#666;margin:0 0 16px}svg.chart{display:block;margin:8px 0 16px;max-width:100%}
table{border-collapse:collapse;margin:8px 0 16px;font-size:12px}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td.text,th.text{text-align:left}td.outlier{background:#fdebd0;font-weight:bold}
p.note{color:#555;font-size:12px}div.scroll{overflow-x:auto}
"""


def _table_html(table: Table, outlier_cells: set[tuple[int, int]] | None = None) -> str:
    numeric = [
        all(_looks_numeric(row[i]) for row in table.rows) and table.rows
        for i in range(len(table.headers))
    ]
    head = "".join(
        f'<th class="{"num" if numeric[i] else "text"}">{escape(h)}</th>'
        for i, h in enumerate(table.headers)
    )
    body = []
    for r, row in enumerate(table.rows):
        cells = []
        for c, cell in enumerate(row):
            classes = ["num" if numeric[c] else "text"]
            if outlier_cells and (r, c) in outlier_cells:
                classes.append("outlier")
            cells.append(f'<td class="{" ".join(classes)}">{escape(cell)}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    if not table.rows:
        body.append(f'<tr><td class="text" colspan="{len(table.headers)}">No rows.</td></tr>')
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _money_text(currency: str) -> Callable[[float], str]:
    def text(value: float) -> str:
        return f"{format_minor(round(value), currency)} {currency}".strip()

    return text


def _days(rows: list[ShrinkRow]) -> list[str]:
    days = sorted({r.keys[0] for r in rows if r.keys and r.keys[0]})
    if not days:
        return []
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    if (last - first).days >= _MAX_CHART_DAYS:
        return days
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _shrink_section(bundle: ReportBundle) -> str:
    parts = ["<h2>Shrink</h2>"]
    by_day = bundle.shrink_by_day or []
    currencies = sorted({r.currency for r in by_day if r.currency}) or [""]
    days = _days(by_day)
    for currency in currencies:
        risk: dict[str, int] = defaultdict(int)
        recovered: dict[str, int] = defaultdict(int)
        for r in by_day:
            if r.currency == currency:
                risk[r.keys[0]] += r.at_risk_minor
                recovered[r.keys[0]] += r.recovered_minor
        suffix = f" ({currency})" if currency else ""
        parts.append(
            charts.line_chart(
                f"shrink-over-time{'-' + currency if currency else ''}",
                f"Shrink over time{suffix}",
                days,
                [
                    ("amount at risk", [risk[d] for d in days]),
                    ("amount recovered", [recovered[d] for d in days]),
                ],
                _money_text(currency),
            )
        )
        lanes = [
            (r.keys[0], float(r.at_risk_minor))
            for r in bundle.shrink_by_lane or []
            if r.currency == currency
        ]
        parts.append(
            charts.bar_chart(
                f"shrink-by-lane{'-' + currency if currency else ''}",
                f"Amount at risk by lane{suffix}",
                lanes,
                _money_text(currency),
                color=charts.PALETTE[0],
            )
        )
    parts.append(_table_html(shrink_table(bundle.shrink or [], bundle.group_by)))
    parts.append(
        '<p class="note">Amounts never mix currencies: each row holds one. Alerts resolved as '
        "false alerts count as alerts but put nothing at risk.</p>"
    )
    return "".join(parts)


def _quality_section(bundle: ReportBundle) -> str:
    rows = bundle.quality or []
    bars = [(f"{r.type} / {r.rule}" if r.rule else r.type, r.precision) for r in rows]
    return "".join(
        [
            "<h2>Alert quality</h2>",
            f'<p class="meta">{bundle.transactions} transactions in range.</p>',
            charts.bar_chart(
                "alert-precision",
                "Alert precision per rule (share of resolved alerts that were not false)",
                bars,
                lambda v: f"{v * 100:.1f}%",
                max_value=1.0,
                color=charts.PALETTE[2],
            ),
            _table_html(quality_table(rows)),
        ]
    )


def _lane_section(bundle: ReportBundle) -> str:
    rows = bundle.lanes or []
    bars = [(f"{r.store_id}/{r.lane_id}", r.health_score) for r in rows]
    return "".join(
        [
            "<h2>Lane health</h2>",
            charts.bar_chart(
                "lane-health",
                "Lane health score (0-100)",
                bars,
                lambda v: f"{v:.1f}",
                max_value=100.0,
                color=charts.PALETTE[3],
            ),
            _table_html(lane_table(rows)),
            "<h2>Items often keyed</h2>",
            '<p class="note">A high keyed rate points at a bad or missing barcode label: '
            "check and reprint these.</p>",
            _table_html(keyed_table(bundle.keyed)),
        ]
    )


def _pos_section(bundle: ReportBundle) -> str:
    table = pos_table(bundle.pos or [])
    outliers = set()
    for r, row in enumerate(bundle.pos or []):
        for measure in row.outliers:
            outliers.add((r, table.headers.index(measure)))
    return "".join(
        [
            "<h2>POS exceptions</h2>",
            '<p class="note">Highlighted: a rate per transaction well above the store\'s norm '
            "(z-score). Worth a review, not proof of anything.</p>",
            _table_html(table, outliers),
        ]
    )


def _alerts_section(bundle: ReportBundle) -> str:
    return "<h2>Alerts</h2>" + _table_html(alerts_table(bundle.alerts or []))


def render_html(bundle: ReportBundle, now_ms: int) -> str:
    """One self-contained page (inline CSS and SVG, no scripts) of the bundle's reports."""
    f = bundle.filter
    scope = [
        f"from {iso_ms(f.start_ms)}" if f.start_ms is not None else "from the beginning",
        f"to {iso_ms(f.end_ms)}" if f.end_ms is not None else "to now",
    ]
    if f.store_ids:
        scope.append("stores " + ", ".join(f.store_ids))
    if f.lane_ids:
        scope.append("lanes " + ", ".join(f.lane_ids))
    sections = []
    if bundle.shrink is not None:
        sections.append(_shrink_section(bundle))
    if bundle.quality is not None:
        sections.append(_quality_section(bundle))
    if bundle.lanes is not None:
        sections.append(_lane_section(bundle))
    if bundle.pos is not None:
        sections.append(_pos_section(bundle))
    if bundle.alerts is not None:
        sections.append(_alerts_section(bundle))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>lanesight report</title><style>{_CSS}</style></head><body>"
        "<h1>lanesight report</h1>"
        f'<p class="meta">Generated {escape(iso_ms(now_ms))}; {escape(", ".join(scope))}.</p>'
        + "".join(sections)
        + "</body></html>"
    )
