"""Checks on incoming lane events: stream-level errors and per-event data-quality problems."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.fusion import events as ev
from services.fusion.currencies import is_known_currency

# The protobuf field name of each payload, for field paths in errors.
PAYLOAD_FIELD: dict[type, str] = {
    ev.TransactionStarted: "transaction_started",
    ev.ItemAdded: "item_added",
    ev.ItemVoided: "item_voided",
    ev.QuantityChanged: "quantity_changed",
    ev.PriceOverride: "price_override",
    ev.DiscountApplied: "discount_applied",
    ev.TransactionSuspended: "transaction_suspended",
    ev.TransactionResumed: "transaction_resumed",
    ev.TenderStarted: "tender_started",
    ev.TenderCompleted: "tender_completed",
    ev.TransactionEnded: "transaction_ended",
    ev.NoSaleDrawerOpen: "no_sale_drawer_open",
    ev.RefundIssued: "refund_issued",
    ev.OperatorSignOn: "operator_sign_on",
    ev.OperatorSignOff: "operator_sign_off",
    ev.AttendantOverride: "attendant_override",
    ev.BarcodeRead: "barcode_read",
    ev.ScannerNoRead: "scanner_no_read",
    ev.ScaleReading: "scale_reading",
    ev.ZoneCrossing: "zone_crossing",
    ev.ItemRecognized: "item_recognized",
    ev.BarcodeSeen: "barcode_seen",
    ev.ZoneItemCount: "zone_item_count",
    ev.CameraHealthChanged: "camera_health_changed",
    ev.ReceiptPrinted: "receipt_printed",
    ev.PrinterStatusChanged: "printer_status_changed",
    ev.DrawerStateChanged: "drawer_state_changed",
    ev.PeripheralHealthChanged: "peripheral_health_changed",
}

_MONEY_FIELDS: dict[type, tuple[str, ...]] = {
    ev.ItemAdded: ("unit_price", "extended_price"),
    ev.ItemVoided: ("amount",),
    ev.QuantityChanged: ("new_extended_price",),
    ev.PriceOverride: ("original_unit_price", "new_unit_price"),
    ev.DiscountApplied: ("amount",),
    ev.TenderStarted: ("total",),
    ev.TenderCompleted: ("amount", "change"),
    ev.TransactionEnded: ("total",),
    ev.RefundIssued: ("amount",),
    ev.BarcodeRead: ("label_price",),
}
# Amounts that must not be negative (a total may be negative on a return).
_NON_NEGATIVE_MONEY = {
    ("item_added", "unit_price"),
    ("item_voided", "amount"),
    ("price_override", "original_unit_price"),
    ("price_override", "new_unit_price"),
    ("discount_applied", "amount"),
    ("refund_issued", "amount"),
    ("barcode_read", "label_price"),
}


@dataclass(slots=True, frozen=True)
class Rejection:
    """An event recorded as a data-quality problem instead of applied."""

    event_id: str
    sequence: int
    field: str
    message: str


class StreamError(ValueError):
    """A problem with a whole ingest stream: it is answered INVALID_ARGUMENT."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def check_batch(events: Sequence[ev.LaneEvent], lane_key: tuple[str, str] | None) -> None:
    """Raise StreamError for events no lane can own or a batch out of order."""
    previous = 0
    for i, event in enumerate(events):
        if not event.store_id:
            raise StreamError(f"events[{i}].store_id", "is required")
        if not event.lane_id:
            raise StreamError(f"events[{i}].lane_id", "is required")
        if lane_key is None:
            lane_key = event.lane_key
        elif event.lane_key != lane_key:
            raise StreamError(
                f"events[{i}].lane_id",
                f"{event.store_id}/{event.lane_id} differs from {lane_key[0]}/{lane_key[1]}"
                " earlier in this stream; open one Ingest stream per lane",
            )
        if event.sequence < 1:
            raise StreamError(f"events[{i}].sequence", "must be 1 or more")
        if event.sequence < previous:
            raise StreamError(
                f"events[{i}].sequence",
                f"{event.sequence} follows {previous}; a batch must be in sequence order",
            )
        previous = event.sequence


def validate_event(event: ev.LaneEvent) -> tuple[str, str] | None:
    """The first (field, problem) of an event that cannot be applied, or None."""
    if not event.event_id:
        return ("event_id", "is required")
    if event.lane_time_ms <= 0:
        return ("lane_time", "is required")
    payload = event.payload
    if payload is None:
        return ("payload", "exactly one payload must be set")
    name = PAYLOAD_FIELD[type(payload)]
    for money_field in _MONEY_FIELDS.get(type(payload), ()):
        money = getattr(payload, money_field)
        if money is None:
            continue
        if not is_known_currency(money.currency_code):
            return (
                f"{name}.{money_field}.currency_code",
                f"{money.currency_code!r} is not an ISO 4217 currency code",
            )
        if money.amount_minor < 0 and (name, money_field) in _NON_NEGATIVE_MONEY:
            return (f"{name}.{money_field}.amount_minor", "must not be negative")
    problem = _check_payload(payload)
    return (f"{name}.{problem[0]}", problem[1]) if problem else None


def _check_payload(payload: ev.Payload) -> tuple[str, str] | None:
    if isinstance(payload, ev.ScaleReading):
        if payload.weight_mg < 0 and payload.status is not ev.ScaleStatus.UNDER_ZERO:
            return ("weight_mg", "must not be negative")
        if payload.role is ev.ScaleRole.UNSPECIFIED:
            return ("role", "must be PRODUCE or BAGGING")
    elif isinstance(payload, ev.ItemAdded):
        if not payload.line_id:
            return ("line_id", "is required")
        if payload.quantity < 1:
            return ("quantity", "must be 1 or more")
        if payload.weight_mg < 0:
            return ("weight_mg", "must not be negative")
        if payload.extended_price is None:
            return ("extended_price", "is required")
    elif isinstance(payload, ev.ItemVoided | ev.QuantityChanged | ev.PriceOverride):
        if not payload.line_id:
            return ("line_id", "is required")
        if isinstance(payload, ev.QuantityChanged) and payload.new_quantity < 0:
            return ("new_quantity", "must not be negative")
    elif isinstance(payload, ev.BarcodeRead):
        if payload.label_weight_mg < 0:
            return ("label_weight_mg", "must not be negative")
    elif isinstance(payload, ev.ZoneCrossing):
        if not payload.track_id:
            return ("track_id", "is required")
        if payload.zone is ev.LaneZone.UNSPECIFIED:
            return ("zone", "must be set")
    elif isinstance(payload, ev.ItemRecognized):
        if not payload.track_id:
            return ("track_id", "is required")
        for i, label in enumerate(payload.labels):
            if not 0.0 <= label.score <= 1.0:
                return (f"labels[{i}].score", "must be in 0..1")
    elif isinstance(payload, ev.ZoneItemCount) and payload.count < 0:
        return ("count", "must not be negative")
    return None
