"""The HTML page a store manager reads: every report in words, on a phone or a desk.

Headers are words, rates are percentages, durations are seconds, minutes or hours, "n/a"
stands where there is nothing to rate (never 0.0 %), stores go by their names and times by
each store's local time. Tables are as wide as the page: on a narrow screen each row turns
into a card of "label: value" lines, so nothing scrolls sideways or hides in a box. One
self-contained file: inline CSS and server-drawn SVG, no scripts, nothing fetched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote

from lanesight.common.money import format_minor
from lanesight.reporting import charts
from lanesight.reporting.model import (
    POS_MEASURES,
    AlertRecord,
    ShrinkRow,
    StoreComparisonRow,
    StorePeriod,
)

if TYPE_CHECKING:
    from lanesight.reporting.exports import ReportBundle

NA = "n/a"
_MAX_CHART_DAYS = 366

_CSS = """
*{box-sizing:border-box}
body{font-family:Helvetica,Arial,sans-serif;color:#222;margin:0 auto;padding:16px;max-width:1400px;
line-height:1.35;font-size:15px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;margin:32px 0 8px;border-bottom:2px solid #ddd;padding-bottom:4px}
p.meta{color:#555;margin:0 0 12px}p.note{color:#555;font-size:13px;margin:4px 0 12px}
svg.chart{display:block;margin:8px 0 16px;max-width:100%;height:auto}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px;width:100%}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:right;vertical-align:top;
overflow-wrap:break-word}
th{background:#f4f4f4;font-weight:bold}
td.text,th.text{text-align:left}
td.outlier{background:#fdebd0;font-weight:bold}
td .before{display:block;color:#777;font-size:11px}
td.reason{min-width:14em}
a{color:#1a5fa8}
nav{margin:8px 0 0;font-size:14px}nav a{margin-right:12px;display:inline-block}
dl.evidence{margin:0 0 12px}dl.evidence dt{font-weight:bold;margin-top:8px}
dl.evidence dd{margin:2px 0 0 16px;overflow-wrap:anywhere}
@media (max-width:900px){
 table.cards thead{display:none}
 table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:100%}
 table.cards tr{border:1px solid #ccc;border-radius:4px;margin:0 0 10px;padding:2px 0}
 table.cards td{border:none;border-bottom:1px solid #eee;display:flex;justify-content:space-between;
 gap:12px;text-align:right;min-width:0;overflow-wrap:anywhere}
 table.cards td:last-child{border-bottom:none}
 table.cards td::before{content:attr(data-label);font-weight:bold;text-align:left;flex:0 0 45%;
 color:#444}
 table.cards td.reason{min-width:0}
}
"""


# --- formats -------------------------------------------------------------------------------


def percent(value: float | None) -> str:
    """A share as a percentage; n/a for None."""
    return NA if value is None else f"{value * 100:.1f} %"


def duration(ms: int | None) -> str:
    """Milliseconds as seconds, minutes or hours; n/a for None."""
    if ms is None:
        return NA
    seconds = ms / 1000
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def amount(minor: int | float | None, currency: str) -> str:
    """Money as a decimal of its currency, with the code; n/a for None."""
    if minor is None:
        return NA
    return f"{format_minor(round(minor), currency)} {currency}".strip()


def words(code: str) -> str:
    """An enum-like name in words: "missed_scan" -> "Missed scan"."""
    text = code.replace("_", " ").strip()
    return text[:1].upper() + text[1:] if text else NA


# --- tables --------------------------------------------------------------------------------


class Column:
    """A table column: its header in words and whether its cells are text or numbers."""

    def __init__(self, header: str, text: bool = False, css: str = "") -> None:
        self.header = header
        self.text = text
        self.css = css


def table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    highlight: set[tuple[int, int]] | None = None,
    empty: str = "Nothing in this period.",
) -> str:
    """A table that turns into cards on narrow screens. Cells are HTML (escape first)."""
    head = "".join(
        f'<th class="{"text" if c.text else "num"}" scope="col">{escape(c.header)}</th>'
        for c in columns
    )
    body = []
    for r, row in enumerate(rows):
        cells = []
        for c, (column, cell) in enumerate(zip(columns, row, strict=True)):
            classes = ["text" if column.text else "num", column.css]
            if highlight and (r, c) in highlight:
                classes.append("outlier")
            cells.append(
                f'<td class="{" ".join(x for x in classes if x)}" '
                f'data-label="{escape(column.header)}">{cell}</td>'
            )
        body.append(f"<tr>{''.join(cells)}</tr>")
    if not rows:
        body.append(f'<tr><td class="text" colspan="{len(columns)}">{escape(empty)}</td></tr>')
    return (
        f'<table class="cards"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


# --- the page ------------------------------------------------------------------------------


class Page:
    """Renders a report bundle for people."""

    def __init__(self, bundle: ReportBundle) -> None:
        self.b = bundle
        self.config = bundle.config
        self.zones = bundle.zones

    def store(self, store_id: str) -> str:
        return escape(self.config.store_name(store_id)) if self.config else escape(store_id)

    def local(self, store_id: str, ms: int | None) -> str:
        """An instant in the store's local time, with the zone's abbreviation."""
        if ms is None:
            return NA
        zone = self.zones.of(store_id).zone
        return datetime.fromtimestamp(ms / 1000, zone).strftime("%Y-%m-%d %H:%M %Z")

    def render(self, now_ms: int) -> str:
        b = self.b
        sections: list[tuple[str, str, str]] = []
        if b.stores is not None and (len(b.stores) > 1 or not b.shrink):
            sections.append(("stores", "Stores compared", self.stores_section()))
        if b.shrink is not None:
            sections.append(("shrink", "Shrink", self.shrink_section()))
        if b.by_hour is not None:
            sections.append(("hours", "Alerts by hour of day", self.hours_section()))
        if b.quality is not None:
            sections.append(("quality", "Alert quality", self.quality_section()))
        if b.lanes is not None:
            sections.append(("lanes", "Lane health", self.lane_section()))
        if b.pos is not None:
            sections.append(("pos", "POS exceptions", self.pos_section()))
        if b.alerts is not None:
            sections.append(("alerts", "Alerts", self.alerts_section()))
        nav = "".join(f'<a href="#{key}">{escape(title)}</a>' for key, title, _ in sections)
        body = "".join(
            f'<section id="{key}"><h2>{escape(title)}</h2>{html}</section>'
            for key, title, html in sections
        )
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Loss prevention report</title><style>{_CSS}</style></head><body>"
            "<h1>Loss prevention report</h1>"
            f'<p class="meta">{escape(self.scope())}. Made '
            f"{escape(self.local('', now_ms))}.</p>"
            f"<nav>{nav}</nav>{body}</body></html>"
        )

    def scope(self) -> str:
        f = self.b.filter
        parts = [
            "From " + (self.local("", f.start_ms) if f.start_ms is not None else "the beginning"),
            "to " + (self.local("", f.end_ms) if f.end_ms is not None else "now"),
        ]
        if f.store_ids:
            names = (self.config.store_name(s) if self.config else s for s in f.store_ids)
            parts.append("stores " + ", ".join(names))
        if f.lane_ids:
            parts.append("lanes " + ", ".join(f.lane_ids))
        return " ".join(parts[:2]) + "".join(f"; {p}" for p in parts[2:])

    # --- sections --------------------------------------------------------------------------

    def stores_section(self) -> str:
        rows = self.b.stores or []

        def both(
            get: Callable[[StorePeriod], str], row: StoreComparisonRow
        ) -> str:  # this period, and the one before under it
            now = escape(get(row.current))
            if row.previous is None:
                return now
            return f'{now}<span class="before">before: {escape(get(row.previous))}</span>'

        def shrink(p: StorePeriod) -> str:
            return (
                amount(p.shrink_per_1000_minor, p.currency)
                if p.currency
                else (NA if p.shrink_per_1000_minor is None else "0")
            )

        def health(p: StorePeriod) -> str:
            return NA if p.health_score is None else f"{p.health_score:.0f} of 100"

        def per_100(p: StorePeriod) -> str:
            value = p.false_alerts_per_100_honest
            return NA if value is None else f"{value:.2f}"

        columns = [
            Column("Store", text=True),
            Column("Region", text=True),
            Column("Transactions"),
            Column("Shrink per 1,000 transactions"),
            Column("Alert precision"),
            Column("False alerts per 100 honest transactions"),
            Column("Lane health"),
            Column("Keyed entries"),
        ]
        cells = [
            [
                f'{escape(r.name)}<span class="before">{escape(r.timezone)}</span>',
                escape(r.region) or NA,
                both(lambda p: f"{p.transactions:,}", r),
                both(shrink, r),
                both(lambda p: percent(p.precision), r),
                both(per_100, r),
                both(health, r),
                both(lambda p: percent(p.keyed_entry_rate), r),
            ]
            for r in rows
        ]
        return (
            '<p class="note">Each store in its own local time; under each figure the '
            "period before, as long. Honest transactions: those without a confirmed loss. "
            "Shrink is the amount alerts put at risk.</p>" + table(columns, cells)
        )

    def shrink_section(self) -> str:
        b = self.b
        parts = []
        by_day = b.shrink_by_day or []
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
                (self._lane_name(r.keys[0]), float(r.at_risk_minor))
                for r in b.shrink_by_lane or []
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
        headers = {
            "store": "Store",
            "lane": "Lane",
            "hour_of_day": "Hour of day",
            "category": "Category",
            "alert_type": "Alert type",
            "day": "Day",
        }
        columns = [Column(headers[d], text=True) for d in b.group_by] + [
            Column("Alerts"),
            Column("Amount at risk"),
            Column("Recovered"),
        ]
        rows = [
            [
                *(self._key(d, k) for d, k in zip(b.group_by, r.keys, strict=True)),
                f"{r.alerts:,}",
                escape(amount(r.at_risk_minor, r.currency)),
                escape(amount(r.recovered_minor, r.currency)),
            ]
            for r in b.shrink or []
        ]
        parts.append(table(columns, rows))
        parts.append(
            '<p class="note">Amounts never mix currencies: each row holds one. Alerts found to '
            "be false, and alerts withdrawn, count as alerts but put nothing at risk.</p>"
        )
        return "".join(parts)

    def hours_section(self) -> str:
        counts = [0] * 24
        for r in self.b.by_hour or []:
            if r.keys and r.keys[0].isdigit():
                counts[int(r.keys[0])] += r.alerts
        bars = [(f"{h:02d}:00 to {(h + 1) % 24:02d}:00", float(n)) for h, n in enumerate(counts)]
        return (
            '<p class="note">Alerts raised in each hour of the day, in each store\'s local '
            "time: when to have an attendant near the lanes.</p>"
            + charts.bar_chart(
                "alerts-by-hour",
                "Alerts by hour of day (local time)",
                bars if any(counts) else [],
                lambda v: f"{v:.0f}",
                color=charts.PALETTE[4],
            )
        )

    def quality_section(self) -> str:
        rows = self.b.quality or []
        bars = [
            (f"{words(r.type)} / {r.rule}" if r.rule else words(r.type), r.precision)
            for r in rows
            if r.resolved
        ]
        columns = [
            Column("Alert type", text=True),
            Column("Rule", text=True),
            Column("Alerts"),
            Column("Resolved"),
            Column("Precision"),
            Column("False alerts per 100 transactions"),
            Column("Shopper corrected"),
            Column("Time to acknowledge (median, slowest 5 %)"),
            Column("Time to resolve (median, slowest 5 %)"),
        ]
        cells = []
        for r in rows:
            acked = r.acknowledge_p50_ms or r.acknowledge_p95_ms
            cells.append(
                [
                    escape(words(r.type)),
                    escape(r.rule) or NA,
                    f"{r.alerts:,}",
                    f"{r.resolved:,}",
                    percent(r.precision if r.resolved else None),
                    f"{r.false_alerts_per_100_transactions:.2f}" if self.b.transactions else NA,
                    percent(r.self_corrected_share if r.resolved else None),
                    _pair(r.acknowledge_p50_ms, r.acknowledge_p95_ms, bool(acked)),
                    _pair(r.resolve_p50_ms, r.resolve_p95_ms, bool(r.resolved)),
                ]
            )
        return "".join(
            [
                f'<p class="meta">{self.b.transactions:,} transactions in this period.</p>',
                charts.bar_chart(
                    "alert-precision",
                    "Alert precision per rule (share of resolved alerts that were not false)",
                    bars,
                    lambda v: f"{v * 100:.1f} %",
                    max_value=1.0,
                    color=charts.PALETTE[2],
                ),
                table(columns, cells),
            ]
        )

    def lane_section(self) -> str:
        rows = self.b.lanes or []
        bars = [(self._lane_name(f"{r.store_id}/{r.lane_id}"), r.health_score) for r in rows]
        columns = [
            Column("Store", text=True),
            Column("Lane", text=True),
            Column("Health score"),
            Column("First-pass scan rate"),
            Column("Keyed entries"),
            Column("Transactions"),
            Column("Items"),
            Column("Weighed items"),
            Column("Scanner no-reads"),
            Column("Scale faults"),
            Column("Printer faults"),
            Column("Camera not working"),
            Column("Disconnections"),
        ]
        cells = [
            [
                self.store(r.store_id),
                escape(r.lane_id),
                f"{r.health_score:.0f} of 100",
                percent(r.scanner_first_pass_read_rate if r.items_scanned else None),
                percent(r.keyed_entry_rate if r.items_entered else None),
                f"{r.transactions:,}",
                f"{r.items_entered:,}",
                f"{r.items_weighed:,}",
                f"{r.scanner_no_reads:,}",
                f"{r.scale_not_zeroed + r.scale_over_capacity:,}",
                f"{r.printer_paper_out + r.printer_cover_open:,}",
                duration(r.camera_unhealthy_ms),
                f"{r.device_disconnections:,}",
            ]
            for r in rows
        ]
        keyed_columns = [
            Column("Item", text=True),
            Column("Description", text=True),
            Column("Times sold"),
            Column("Times keyed"),
            Column("Keyed share"),
        ]
        keyed = [
            [
                escape(i.item_code),
                escape(i.description) or NA,
                f"{i.entries:,}",
                f"{i.keyed:,}",
                percent(i.keyed_rate if i.entries else None),
            ]
            for i in self.b.keyed
        ]
        return "".join(
            [
                charts.bar_chart(
                    "lane-health",
                    "Lane health score (0 to 100)",
                    bars,
                    lambda v: f"{v:.1f}",
                    max_value=100.0,
                    color=charts.PALETTE[3],
                ),
                table(columns, cells),
                "<h3>Items often keyed</h3>",
                '<p class="note">An item keyed in by hand again and again has a bad or missing '
                "barcode label: check and reprint these.</p>",
                table(keyed_columns, keyed, empty="No item was keyed in this period."),
            ]
        )

    def pos_section(self) -> str:
        rows = self.b.pos or []
        names = {
            "voids": "Voided items",
            "voids_after_tender": "Voids after payment started",
            "refunds_with_receipt": "Refunds with receipt",
            "refunds_without_receipt": "Refunds without receipt",
            "no_sales": "Drawer opened without a sale",
            "price_overrides": "Price overrides",
            "discounts": "Manual discounts",
            "cancelled_transactions": "Cancelled transactions",
            "attendant_overrides": "Attendant overrides",
        }
        columns = [
            Column("Store", text=True),
            Column("Lane", text=True),
            Column("Operator", text=True),
            Column("Transactions"),
            *(Column(names[m]) for m in POS_MEASURES),
        ]
        highlight = set()
        cells = []
        for r_index, r in enumerate(rows):
            for measure in r.outliers:
                highlight.add((r_index, 4 + POS_MEASURES.index(measure)))
            cells.append(
                [
                    self.store(r.store_id),
                    escape(r.lane_id),
                    escape(r.operator_id) or NA,
                    f"{r.transactions:,}",
                    *(f"{getattr(r, m):,}" for m in POS_MEASURES),
                ]
            )
        return (
            '<p class="note">Highlighted: a rate per transaction well above the store\'s norm. '
            "Worth a review, not proof of anything.</p>" + table(columns, cells, highlight)
        )

    def alerts_section(self) -> str:
        alerts = self.b.alerts or []
        columns = [
            Column("Raised (local time)", text=True),
            Column("Store", text=True),
            Column("Lane", text=True),
            Column("What", text=True),
            Column("Reason", text=True, css="reason"),
            Column("State", text=True),
            Column("Outcome", text=True),
            Column("At risk"),
            Column("Evidence", text=True),
        ]
        cells = [
            [
                escape(self.local(a.store_id, a.raised_ms)),
                self.store(a.store_id),
                escape(a.lane_id),
                escape(_what(a)),
                escape(a.reason) or NA,
                escape(words(a.state)),
                escape(words(a.disposition)) if a.disposition != "unspecified" else NA,
                escape(
                    amount(a.amount_at_risk.amount_minor, a.amount_at_risk.currency)
                    if a.amount_at_risk
                    else NA
                ),
                self._evidence_link(a),
            ]
            for a in alerts
        ]
        parts = [table(columns, cells, empty="No alerts in this period.")]
        with_evidence = [a for a in alerts if a.supporting_event_ids]
        if with_evidence and not self._evidence_url():
            parts.append('<h3>Evidence</h3><dl class="evidence">')
            for a in with_evidence:
                parts.append(
                    f'<dt id="evidence-{escape(a.alert_id)}">{escape(_what(a))}, '
                    f"{escape(self.local(a.store_id, a.raised_ms))}, "
                    f"{self.store(a.store_id)} lane {escape(a.lane_id)}</dt>"
                )
                for event_id in a.supporting_event_ids:
                    seen = self.b.evidence.get(event_id)
                    what = (
                        f"{words(seen[0])} at {self.local(a.store_id, seen[1])}"
                        if seen
                        else "no longer kept"
                    )
                    parts.append(f"<dd>{escape(what)} (event {escape(event_id)})</dd>")
            parts.append("</dl>")
        return "".join(parts)

    # --- helpers ---------------------------------------------------------------------------

    def _evidence_url(self) -> str:
        return self.config.evidence_url if self.config else ""

    def _evidence_link(self, a: AlertRecord) -> str:
        if not a.supporting_event_ids:
            return NA
        template = self._evidence_url()
        if template:
            links = (
                f'<a href="{escape(template.format(event_id=quote(e, safe=""), alert_id=quote(a.alert_id, safe="")))}">'
                f"event {n}</a>"
                for n, e in enumerate(a.supporting_event_ids, 1)
            )
            return ", ".join(links)
        count = len(a.supporting_event_ids)
        label = f"{count} event{'s' if count != 1 else ''}"
        return f'<a href="#evidence-{escape(a.alert_id)}">{label}</a>'

    def _lane_name(self, key: str) -> str:
        store, _, lane = key.partition("/")
        name = self.config.store_name(store) if self.config else store
        return f"{name} lane {lane}" if lane else name

    def _key(self, dimension: str, value: str) -> str:
        if dimension == "store":
            return self.store(value)
        if dimension == "lane":
            return escape(self._lane_name(value))
        if dimension == "alert_type":
            return escape(words(value))
        if dimension == "hour_of_day" and value.isdigit():
            return f"{value}:00"
        return escape(value) or NA


def _what(a: AlertRecord) -> str:
    item = f": {a.item_description}" if a.item_description else ""
    return words(a.type) + item


def _pair(p50: int, p95: int, known: bool) -> str:
    if not known:
        return NA
    return f"{duration(p50)}, {duration(p95)}"


def _money_text(currency: str) -> Callable[[float], str]:
    def text(value: float) -> str:
        return amount(value, currency)

    return text


def _days(rows: list[ShrinkRow]) -> list[str]:
    days = sorted({r.keys[0] for r in rows if r.keys and r.keys[0]})
    if not days:
        return []
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    if (last - first).days >= _MAX_CHART_DAYS:
        return days
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]
