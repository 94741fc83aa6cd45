"""Reports as plain tables of text, shared by the CLI, the CSV export and the HTML page."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime

from lanesight.common.money import format_minor
from lanesight.reporting.model import (
    POS_MEASURES,
    AlertQualityRow,
    AlertRecord,
    KeyedItem,
    LaneHealthRow,
    PosExceptionRow,
    ShrinkRow,
    StoreComparisonRow,
    StorePeriod,
)


@dataclass(slots=True)
class Table:
    """A titled table: header names and rows of text cells."""

    title: str
    headers: list[str]
    rows: list[list[str]]


def _rate(value: float) -> str:
    return f"{value:.4f}"


def iso_ms(ms: int | None) -> str:
    """An epoch-ms instant as ISO 8601 UTC text; "" for None."""
    if ms is None:
        return ""
    return (
        datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def shrink_table(rows: list[ShrinkRow], group_by: list[str]) -> Table:
    """The shrink report; amounts as decimals of their currency."""
    return Table(
        "Shrink",
        [*group_by, "currency", "alerts", "amount_at_risk", "amount_recovered"],
        [
            [
                *r.keys,
                r.currency,
                str(r.alerts),
                format_minor(r.at_risk_minor, r.currency),
                format_minor(r.recovered_minor, r.currency),
            ]
            for r in rows
        ],
    )


def quality_table(rows: list[AlertQualityRow]) -> Table:
    """The alert quality report."""
    return Table(
        "Alert quality",
        [
            "type",
            "rule",
            "alerts",
            "resolved",
            "precision",
            "false_alerts_per_100_transactions",
            "self_corrected_share",
            "acknowledge_p50_ms",
            "acknowledge_p95_ms",
            "resolve_p50_ms",
            "resolve_p95_ms",
        ],
        [
            [
                r.type,
                r.rule,
                str(r.alerts),
                str(r.resolved),
                _rate(r.precision),
                _rate(r.false_alerts_per_100_transactions),
                _rate(r.self_corrected_share),
                str(r.acknowledge_p50_ms),
                str(r.acknowledge_p95_ms),
                str(r.resolve_p50_ms),
                str(r.resolve_p95_ms),
            ]
            for r in rows
        ],
    )


_LANE_COUNTS = (
    "transactions",
    "items_entered",
    "items_scanned",
    "items_weighed",
    "scanner_no_reads",
    "scale_not_zeroed",
    "scale_over_capacity",
    "printer_paper_out",
    "printer_cover_open",
    "camera_unhealthy_seconds",
    "device_disconnections",
)


def lane_table(rows: list[LaneHealthRow]) -> Table:
    """The lane health report."""
    return Table(
        "Lane health",
        [
            "store",
            "lane",
            "health_score",
            "scanner_first_pass_read_rate",
            "keyed_entry_rate",
            *_LANE_COUNTS,
        ],
        [
            [
                r.store_id,
                r.lane_id,
                f"{r.health_score:.1f}",
                _rate(r.scanner_first_pass_read_rate),
                _rate(r.keyed_entry_rate),
                *(str(getattr(r, c)) for c in _LANE_COUNTS),
            ]
            for r in rows
        ],
    )


def keyed_table(items: list[KeyedItem]) -> Table:
    """Items most often keyed: labels to check and reprint."""
    return Table(
        "Items often keyed (labels to reprint)",
        ["item_code", "description", "entries", "keyed", "keyed_rate"],
        [
            [i.item_code, i.description, str(i.entries), str(i.keyed), _rate(i.keyed_rate)]
            for i in items
        ],
    )


def pos_table(rows: list[PosExceptionRow]) -> Table:
    """The POS exception report; outliers joined with ";"."""
    return Table(
        "POS exceptions",
        ["store", "lane", "operator", "transactions", *POS_MEASURES, "outliers"],
        [
            [
                r.store_id,
                r.lane_id,
                r.operator_id,
                str(r.transactions),
                *(str(getattr(r, m)) for m in POS_MEASURES),
                ";".join(r.outliers),
            ]
            for r in rows
        ],
    )


def alerts_table(alerts: list[AlertRecord]) -> Table:
    """The alert list."""
    rows = []
    for a in alerts:
        risk, recovered = a.amount_at_risk, a.amount_recovered
        currency = risk.currency if risk else (recovered.currency if recovered else "")
        rows.append(
            [
                a.alert_id,
                iso_ms(a.raised_ms),
                a.store_id,
                a.lane_id,
                a.type,
                a.rule,
                a.state,
                a.disposition,
                a.severity,
                currency,
                format_minor(risk.amount_minor, currency) if risk else "",
                format_minor(recovered.amount_minor, currency) if recovered else "",
                a.category,
                a.item_description,
                a.reason,
            ]
        )
    return Table(
        "Alerts",
        [
            "alert_id",
            "raised_at",
            "store",
            "lane",
            "type",
            "rule",
            "state",
            "disposition",
            "severity",
            "currency",
            "amount_at_risk",
            "amount_recovered",
            "category",
            "item_description",
            "reason",
        ],
        rows,
    )


def stores_table(rows: list[StoreComparisonRow]) -> Table:
    """The store comparison: this period's figures, then the previous period's ("" = n/a)."""
    measures = (
        "transactions",
        "alerts",
        "currency",
        "at_risk_minor",
        "shrink_per_1000_minor",
        "precision",
        "false_alerts_per_100_honest",
        "health_score",
        "keyed_entry_rate",
    )

    def cells(period: StorePeriod | None) -> list[str]:
        if period is None:
            return [""] * len(measures)
        out = []
        for m in measures:
            value = getattr(period, m)
            if value is None:
                out.append("")
            elif m == "at_risk_minor":
                out.append(format_minor(value, period.currency))
            elif m == "shrink_per_1000_minor":
                out.append(format_minor(round(value), period.currency))
            elif isinstance(value, float):
                out.append(_rate(value))
            else:
                out.append(str(value))
        return out

    headers = [m.replace("_minor", "") for m in measures]
    return Table(
        "Store comparison",
        ["store", "name", "region", "timezone", *headers, *(f"previous_{h}" for h in headers)],
        [
            [r.store_id, r.name, r.region, r.timezone, *cells(r.current), *cells(r.previous)]
            for r in rows
        ],
    )


def to_csv(table: Table) -> str:
    """A table as CSV with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.headers)
    writer.writerows(table.rows)
    return out.getvalue()


def to_text(table: Table) -> str:
    """A table as aligned plain text for a terminal."""
    widths = [len(h) for h in table.headers]
    for row in table.rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(table.headers, widths, strict=True)).rstrip(),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in table.rows
    ]
    return "\n".join(lines) + "\n"


def csv_to_text(text: str) -> str:
    """CSV with a header row as an aligned plain-text table."""
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return ""
    return to_text(Table("", rows[0], rows[1:]))
