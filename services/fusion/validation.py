"""Checks on incoming lane events: stream-level errors and per-event data-quality problems."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lanesight.fusion import events as ev
from lanesight.fusion.currencies import is_known_currency

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
    pinned = lane_key is not None
    store, lane = lane_key if lane_key is not None else ("", "")
    for i, event in enumerate(events):
        store_id = event.store_id
        lane_id = event.lane_id
        if not store_id:
            raise StreamError(f"events[{i}].store_id", "is required")
        if not lane_id:
            raise StreamError(f"events[{i}].lane_id", "is required")
        if not pinned:
            pinned = True
            store, lane = store_id, lane_id
        elif store_id != store or lane_id != lane:
            raise StreamError(
                f"events[{i}].lane_id",
                f"{store_id}/{lane_id} differs from {store}/{lane}"
                " earlier in this stream; open one Ingest stream per lane",
            )
        sequence = event.sequence
        if sequence < 1:
            raise StreamError(f"events[{i}].sequence", "must be 1 or more")
        if sequence < previous:
            raise StreamError(
                f"events[{i}].sequence",
                f"{sequence} follows {previous}; a batch must be in sequence order",
            )
        previous = sequence


def validate_event(event: ev.LaneEvent) -> tuple[str, str] | None:
    """The first (field, problem) of an event that cannot be applied, or None."""
    if not event.event_id:
        return ("event_id", "is required")
    if event.lane_time_ms <= 0:
        return ("lane_time", "is required")
    payload = event.payload
    if payload is None:
        return ("payload", "exactly one payload must be set")
    check = _VALIDATORS[type(payload)]
    return None if check is None else check(payload)


def _scale(p: ev.ScaleReading) -> tuple[str, str] | None:
    if p.weight_mg < 0 and p.status is not ev.ScaleStatus.UNDER_ZERO:
        return ("weight_mg", "must not be negative")
    if p.role is ev.ScaleRole.UNSPECIFIED:
        return ("role", "must be PRODUCE or BAGGING")
    return None


def _item_added(p: ev.ItemAdded) -> tuple[str, str] | None:
    if not p.line_id:
        return ("line_id", "is required")
    if p.quantity < 1:
        return ("quantity", "must be 1 or more")
    if p.weight_mg < 0:
        return ("weight_mg", "must not be negative")
    if p.extended_price is None:
        return ("extended_price", "is required")
    return None


def _line_ref(p) -> tuple[str, str] | None:
    return None if p.line_id else ("line_id", "is required")


def _quantity_changed(p: ev.QuantityChanged) -> tuple[str, str] | None:
    if p.new_quantity < 0:
        return ("new_quantity", "must not be negative")
    return _line_ref(p)


def _barcode(p: ev.BarcodeRead) -> tuple[str, str] | None:
    return ("label_weight_mg", "must not be negative") if p.label_weight_mg < 0 else None


def _crossing(p: ev.ZoneCrossing) -> tuple[str, str] | None:
    if not p.track_id:
        return ("track_id", "is required")
    if p.zone is ev.LaneZone.UNSPECIFIED:
        return ("zone", "must be set")
    return None


def _recognized(p: ev.ItemRecognized) -> tuple[str, str] | None:
    if not p.track_id:
        return ("track_id", "is required")
    for i, label in enumerate(p.labels):
        if not 0.0 <= label.score <= 1.0:
            return (f"labels[{i}].score", "must be in 0..1")
    return None


def _zone_count(p: ev.ZoneItemCount) -> tuple[str, str] | None:
    return ("count", "must not be negative") if p.count < 0 else None


_CHECKS = {
    ev.ScaleReading: _scale,
    ev.ItemAdded: _item_added,
    ev.ItemVoided: _line_ref,
    ev.PriceOverride: _line_ref,
    ev.QuantityChanged: _quantity_changed,
    ev.BarcodeRead: _barcode,
    ev.ZoneCrossing: _crossing,
    ev.ItemRecognized: _recognized,
    ev.ZoneItemCount: _zone_count,
}


_PayloadCheck = Callable[[object], "tuple[str, str] | None"]


def _payload_validator(kind: type) -> _PayloadCheck | None:
    """One payload type's checks, compiled once: its money fields (known currency, and not
    negative where that matters), then its own checks; None when it has nothing to check.
    The field paths in the problems are built here, not per event."""
    name = PAYLOAD_FIELD[kind]
    money_checks = tuple(
        (
            money_field,
            f"{name}.{money_field}.currency_code",
            f"{name}.{money_field}.amount_minor",
            (name, money_field) in _NON_NEGATIVE_MONEY,
        )
        for money_field in _MONEY_FIELDS.get(kind, ())
    )
    check = _CHECKS.get(kind)
    if not money_checks and check is None:
        return None
    prefix = f"{name}."

    def validate(payload: object) -> tuple[str, str] | None:
        for money_field, currency_path, amount_path, non_negative in money_checks:
            money = getattr(payload, money_field)
            if money is None:
                continue
            if not is_known_currency(money.currency_code):
                return (
                    currency_path,
                    f"{money.currency_code!r} is not an ISO 4217 currency code",
                )
            if non_negative and money.amount_minor < 0:
                return (amount_path, "must not be negative")
        if check is not None:
            problem = check(payload)
            if problem:
                return (prefix + problem[0], problem[1])
        return None

    return validate


# Per payload type: its validator, or None when nothing about it can be invalid.
_VALIDATORS: dict[type, _PayloadCheck | None] = {
    kind: _payload_validator(kind) for kind in PAYLOAD_FIELD
}
