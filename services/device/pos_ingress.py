"""POS ingress: checks that submitted LaneEvents carry a valid POS payload, naming the bad field."""

from __future__ import annotations

import re

from google.protobuf.message import Message
from lanesight.device.protocols.barcodes import classify_plu, is_valid_gtin
from lanesight.v1 import common_pb2, events_pb2

POS_PAYLOADS = (
    "transaction_started",
    "item_added",
    "item_voided",
    "quantity_changed",
    "price_override",
    "discount_applied",
    "transaction_suspended",
    "transaction_resumed",
    "tender_started",
    "tender_completed",
    "transaction_ended",
    "no_sale_drawer_open",
    "refund_issued",
    "operator_sign_on",
    "operator_sign_off",
    "attendant_override",
)
# Payloads that only make sense inside a transaction: all but the drawer and sign-on acts.
_NEEDS_TRANSACTION = frozenset(POS_PAYLOADS) - {
    "no_sale_drawer_open",
    "operator_sign_on",
    "operator_sign_off",
    "attendant_override",
}
# payload -> Money fields that must be set (and non-negative where noted).
_REQUIRED_MONEY = {
    "item_added": ("unit_price", "extended_price"),
    "item_voided": ("amount",),
    "quantity_changed": ("new_extended_price",),
    "price_override": ("original_unit_price", "new_unit_price"),
    "discount_applied": ("amount",),
    "tender_started": ("total",),
    "tender_completed": ("amount",),
    "transaction_ended": ("total",),
    "refund_issued": ("amount",),
}
_POSITIVE_MONEY = {("discount_applied", "amount"), ("refund_issued", "amount")}
_LINE_ID_REQUIRED = {"item_added", "item_voided", "quantity_changed", "price_override"}
_CURRENCY = re.compile(r"[A-Z]{3}")
_MAX_ID_LENGTH = 128


class InvalidPosEvent(ValueError):
    """A submitted event is not valid; ``field`` is the path of the bad field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _check_money(path: str, money: common_pb2.Money, positive: bool) -> None:
    if not _CURRENCY.fullmatch(money.currency_code):
        raise InvalidPosEvent(
            f"{path}.currency_code", "must be a 3-letter ISO 4217 code such as USD"
        )
    if positive and money.amount_minor < 0:
        raise InvalidPosEvent(f"{path}.amount_minor", "must not be negative")


def _check_all_money(path: str, payload: Message) -> None:
    """Every Money field that is set must have a currency code."""
    for descriptor, value in payload.ListFields():
        if descriptor.message_type is common_pb2.Money.DESCRIPTOR:
            _check_money(f"{path}.{descriptor.name}", value, positive=False)


def validate_pos_event(event: events_pb2.LaneEvent, index: int) -> None:
    """Raise InvalidPosEvent naming the first bad field of events[index]."""
    prefix = f"events[{index}]"
    kind = event.WhichOneof("payload")
    if kind is None:
        raise InvalidPosEvent(f"{prefix}.payload", "no payload is set")
    if kind not in POS_PAYLOADS:
        raise InvalidPosEvent(
            f"{prefix}.{kind}", "is not a POS payload; POS ingress takes transaction events only"
        )
    if len(event.event_id) > _MAX_ID_LENGTH or not event.event_id.isprintable():
        raise InvalidPosEvent(f"{prefix}.event_id", f"must be printable, at most {_MAX_ID_LENGTH}")
    if kind in _NEEDS_TRANSACTION and not event.transaction_id:
        raise InvalidPosEvent(f"{prefix}.transaction_id", f"is required for {kind}")
    if len(event.transaction_id) > _MAX_ID_LENGTH:
        raise InvalidPosEvent(f"{prefix}.transaction_id", f"must be at most {_MAX_ID_LENGTH}")
    payload = getattr(event, kind)
    path = f"{prefix}.{kind}"
    for name in _REQUIRED_MONEY.get(kind, ()):
        if not payload.HasField(name):
            raise InvalidPosEvent(f"{path}.{name}", "is required")
        _check_money(f"{path}.{name}", getattr(payload, name), (kind, name) in _POSITIVE_MONEY)
    _check_all_money(path, payload)
    if kind in _LINE_ID_REQUIRED and not payload.line_id:
        raise InvalidPosEvent(f"{path}.line_id", "is required")
    if kind == "item_added":
        _check_item(path, payload)
    elif kind == "quantity_changed" and payload.new_quantity < 0:
        raise InvalidPosEvent(f"{path}.new_quantity", "must not be negative")
    elif kind == "refund_issued" and payload.gtin and not is_valid_gtin(payload.gtin):
        raise InvalidPosEvent(f"{path}.gtin", "must be a GTIN with a valid check digit")
    elif kind == "tender_completed" and payload.tender_type == 0:
        raise InvalidPosEvent(f"{path}.tender_type", "is required")
    elif kind == "transaction_ended" and payload.item_count < 0:
        raise InvalidPosEvent(f"{path}.item_count", "must not be negative")


def _check_item(path: str, item: events_pb2.ItemAdded) -> None:
    if not item.gtin and not item.plu:
        raise InvalidPosEvent(f"{path}.gtin", "an item needs a gtin or a plu")
    if item.gtin and (len(item.gtin) != 14 or not is_valid_gtin(item.gtin)):
        raise InvalidPosEvent(f"{path}.gtin", "must be 14 digits with a valid check digit")
    if item.plu and item.entry_method == events_pb2.ENTRY_METHOD_PRICE_EMBEDDED:
        # A variable-measure label carries the store's item reference, not an IFPS PLU.
        if not (item.plu.isascii() and item.plu.isdigit() and 4 <= len(item.plu) <= 6):
            raise InvalidPosEvent(f"{path}.plu", "a price-embedded item reference is 4-6 digits")
    elif item.plu:
        # IFPS ranges are checked loosely: stores also assign their own 4-digit PLUs.
        _, problem = classify_plu(item.plu)
        if problem and not (len(item.plu) == 4 and item.plu.isdigit() and item.plu.isascii()):
            raise InvalidPosEvent(f"{path}.plu", problem)
    if item.quantity < 1:
        raise InvalidPosEvent(f"{path}.quantity", "must be at least 1")
    if item.weight_mg < 0:
        raise InvalidPosEvent(f"{path}.weight_mg", "must not be negative")
    if item.unit_of_measure == common_pb2.UNIT_OF_MEASURE_KILOGRAM and item.weight_mg <= 0:
        raise InvalidPosEvent(f"{path}.weight_mg", "is required for items sold by weight")
    if item.unit_price.currency_code != item.extended_price.currency_code:
        raise InvalidPosEvent(
            f"{path}.extended_price.currency_code", "must match unit_price.currency_code"
        )
