"""Plain domain objects of the reporting store and its reports (no gRPC, no protobuf)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Names of enum values as the domain spells them: the proto name without its prefix, lower
# case ("ALERT_TYPE_MISSED_SCAN" -> "missed_scan").
ALERT_TYPES = (
    "missed_scan",
    "unscanned_item_in_bagging",
    "item_removed_from_bagging",
    "weight_mismatch",
    "item_mismatch",
    "wrong_produce_plu",
    "price_embedded_label_mismatch",
    "quantity_mismatch",
    "item_left_in_cart",
    "camera_tamper",
    "pos_exception",
)
ALERT_STATES = ("open", "acknowledged", "resolved", "withdrawn")
DISPOSITIONS = ("recovered", "shopper_corrected", "honest_mistake", "false_alert", "no_action")
SHRINK_DIMENSIONS = ("store", "lane", "hour_of_day", "category", "alert_type", "day")

# The POS exception measures, in report column order.
POS_MEASURES = (
    "voids",
    "voids_after_tender",
    "refunds_with_receipt",
    "refunds_without_receipt",
    "no_sales",
    "price_overrides",
    "discounts",
    "cancelled_transactions",
    "attendant_overrides",
)


class InvalidArgument(ValueError):
    """A request argument is wrong; ``field`` names it as the API spells it."""

    def __init__(self, field_name: str, message: str) -> None:
        self.field = field_name
        super().__init__(f"{field_name}: {message}")


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in integer minor units of an ISO 4217 currency."""

    amount_minor: int
    currency: str


@dataclass(slots=True)
class LaneEventRecord:
    """One lane event as the store needs it.

    ``kind`` is the event's payload name ("item_added", "scanner_no_read", ...); ``data``
    holds the payload fields the store derives facts from, with money as ``*_minor`` plus
    ``currency`` and enums as lower-case names. ``raw`` is the event as received (opaque).
    """

    event_id: str
    store_id: str
    lane_id: str
    sequence: int
    time_ms: int
    transaction_id: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    source_device_id: str = ""
    raw: bytes | None = None


@dataclass(slots=True)
class AlertRecord:
    """One alert at one revision; times are epoch milliseconds, None when unset."""

    alert_id: str
    revision: int
    store_id: str
    lane_id: str
    type: str
    raised_ms: int
    transaction_id: str = ""
    pos_exception_kind: str = "unspecified"
    severity: str = "unspecified"
    confidence: float = 0.0
    amount_at_risk: Money | None = None
    amount_recovered: Money | None = None
    supporting_event_ids: list[str] = field(default_factory=list)
    reason: str = ""
    suggested_action: str = ""
    state: str = "open"
    disposition: str = "unspecified"
    escalation: str = "unspecified"
    acknowledged_ms: int | None = None
    resolved_ms: int | None = None
    acknowledged_by: str = ""
    resolved_by: str = ""
    resolution_note: str = ""
    vision_available: bool = False
    gtin: str = ""
    plu: str = ""
    item_description: str = ""
    category: str = ""
    rule: str = ""
    merged_signals: int = 0


@dataclass(slots=True)
class IngestRecord:
    """One record of a sender's feed: a lane event or an alert revision."""

    record_sequence: int
    event: LaneEventRecord | None = None
    alert: AlertRecord | None = None


@dataclass(frozen=True, slots=True)
class ReportFilter:
    """Narrows a report: a half-open lane-time range [start_ms, end_ms) and id lists."""

    start_ms: int | None = None
    end_ms: int | None = None
    store_ids: tuple[str, ...] = ()
    lane_ids: tuple[str, ...] = ()
    alert_types: tuple[str, ...] = ()

    def validate(self) -> None:
        """Raise InvalidArgument when the range ends before it starts."""
        if self.start_ms is not None and self.end_ms is not None and self.end_ms < self.start_ms:
            raise InvalidArgument("filter.range", "end is before start")
        unknown = [t for t in self.alert_types if t not in ALERT_TYPES]
        if unknown:
            raise InvalidArgument("filter.types", f"unknown alert type {unknown[0]!r}")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The page wanted: size 0 means the server default."""

    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True, slots=True)
class PageInfo:
    """Where a page sits: the next token ("" on the last page) and the total row count."""

    next_page_token: str
    total_size: int


@dataclass(slots=True)
class ShrinkRow:
    """One group of the shrink report, in one currency ("" when no alert carried money)."""

    keys: list[str]
    alerts: int
    currency: str
    at_risk_minor: int
    recovered_minor: int


@dataclass(slots=True)
class AlertQualityRow:
    """One rule's alert quality."""

    type: str
    rule: str
    alerts: int
    resolved: int
    precision: float
    false_alerts_per_100_transactions: float
    self_corrected_share: float
    acknowledge_p50_ms: int
    acknowledge_p95_ms: int
    resolve_p50_ms: int
    resolve_p95_ms: int


@dataclass(slots=True)
class LaneHealthRow:
    """The checkout-basics audit of one lane."""

    store_id: str
    lane_id: str
    transactions: int = 0
    items_entered: int = 0
    items_scanned: int = 0
    first_pass_scans: int = 0
    items_keyed: int = 0
    items_weighed: int = 0
    scanner_no_reads: int = 0
    scale_not_zeroed: int = 0
    scale_over_capacity: int = 0
    printer_paper_out: int = 0
    printer_cover_open: int = 0
    device_disconnections: int = 0
    camera_unhealthy_ms: int = 0
    scanner_first_pass_read_rate: float = 1.0
    keyed_entry_rate: float = 0.0
    health_score: float = 100.0

    @property
    def camera_unhealthy_seconds(self) -> int:
        """Whole seconds the lane's cameras were not healthy."""
        return self.camera_unhealthy_ms // 1000


@dataclass(slots=True)
class KeyedItem:
    """An item often keyed instead of scanned."""

    item_code: str
    description: str
    entries: int
    keyed: int

    @property
    def keyed_rate(self) -> float:
        """keyed / entries."""
        return self.keyed / self.entries if self.entries else 0.0


@dataclass(slots=True)
class PosExceptionRow:
    """One operator's POS exceptions at one lane."""

    store_id: str
    lane_id: str
    operator_id: str
    transactions: int = 0
    voids: int = 0
    voids_after_tender: int = 0
    refunds_with_receipt: int = 0
    refunds_without_receipt: int = 0
    no_sales: int = 0
    price_overrides: int = 0
    discounts: int = 0
    cancelled_transactions: int = 0
    attendant_overrides: int = 0
    outliers: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PosLogImportResult:
    """What importing one POSLog document did."""

    transactions: int = 0
    duplicates: int = 0
    skipped_elements: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class StorePeriod:
    """One store's figures over one period; None where there is no data to rate."""

    start_ms: int | None
    end_ms: int | None
    transactions: int = 0
    alerts: int = 0
    resolved: int = 0
    false_alerts: int = 0
    confirmed_transactions: int = 0
    currency: str = ""
    at_risk_minor: int = 0
    items_entered: int = 0
    items_keyed: int = 0
    lanes: int = 0
    shrink_per_1000_minor: float | None = None
    precision: float | None = None
    false_alerts_per_100_honest: float | None = None
    health_score: float | None = None
    keyed_entry_rate: float | None = None


@dataclass(slots=True)
class StoreComparisonRow:
    """A store of the chain: this period and the one before, side by side."""

    store_id: str
    name: str
    region: str
    timezone: str
    current: StorePeriod
    previous: StorePeriod | None


# An event as the events table stores it: these columns in this order (the store adds
# ingest_seq when it stores the row). ``raw`` is the serialized event; ``data`` (JSON)
# holds the payload of an event kept without its serialized form (a data-quality record).
EVENT_ROW_COLUMNS = (
    "event_id",
    "store_id",
    "lane_id",
    "sequence",
    "time_ms",
    "transaction_id",
    "kind",
    "source_device_id",
    "raw",
    "data",
)

# A fed record as ingest stores it: (record sequence, event row or None, alert or None).
# IngestRecords' checks build these directly (in worker processes: tuples pickle cheaply).
FedRecord = tuple[int, tuple | None, AlertRecord | None]


def event_row(e: LaneEventRecord) -> tuple:
    """The event's row in EVENT_ROW_COLUMNS order."""
    return (
        e.event_id,
        e.store_id,
        e.lane_id,
        e.sequence,
        e.time_ms,
        e.transaction_id,
        e.kind,
        e.source_device_id,
        e.raw,
        # Without its serialized form (a data-quality record) the payload is kept.
        None if e.raw is not None else json.dumps(e.data),
    )


def fed_record(record: IngestRecord) -> FedRecord:
    """A record as ingest stores it."""
    event = record.event
    return (record.record_sequence, None if event is None else event_row(event), record.alert)
