"""The lane-event schema, derived once from the lanesight.v1 descriptors: payload kinds and their fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from lanesight.v1 import common_pb2, events_pb2

LANE_EVENT: Descriptor = events_pb2.LaneEvent.DESCRIPTOR
MONEY: Descriptor = common_pb2.Money.DESCRIPTOR
PAYLOAD_ONEOF = "payload"

# events.proto numbers LaneEvent.payload by who reports it (see the comment on the oneof).
_SOURCES = (
    ("pos", range(10, 40)),
    ("scanner", range(40, 50)),
    ("scale", range(50, 60)),
    ("vision", range(60, 70)),
    ("printer", range(70, 80)),
    ("device", range(80, 100)),
)


@dataclass(frozen=True, slots=True)
class PayloadKind:
    """One payload of LaneEvent's oneof and what its fields are."""

    name: str  # the oneof field, e.g. "item_added"
    number: int
    message: Descriptor  # e.g. ItemAdded
    source: str  # "pos", "scanner", "scale", "vision", "printer" or "device"
    money_fields: tuple[str, ...]
    weight_fields: tuple[str, ...]  # integer milligrams: the fields named *_mg
    enum_fields: Mapping[str, frozenset[int]]  # field -> the values this build knows

    @property
    def is_pos(self) -> bool:
        """True for a payload only the POS reports (POS ingress takes these, nothing else)."""
        return self.source == "pos"


def _source(number: int) -> str:
    for source, numbers in _SOURCES:
        if number in numbers:
            return source
    raise ValueError(f"LaneEvent.payload field {number} is outside the numbered ranges")


def _kind(field: FieldDescriptor) -> PayloadKind:
    message = field.message_type
    fields = message.fields
    return PayloadKind(
        name=field.name,
        number=field.number,
        message=message,
        source=_source(field.number),
        money_fields=tuple(f.name for f in fields if f.message_type is MONEY),
        weight_fields=tuple(
            f.name for f in fields if f.name.endswith("_mg") and f.type == f.TYPE_INT64
        ),
        enum_fields=MappingProxyType(
            {
                f.name: frozenset(v.number for v in f.enum_type.values)
                for f in fields
                if f.enum_type is not None
            }
        ),
    )


#: Every payload of LaneEvent, in field-number order.
PAYLOADS: Mapping[str, PayloadKind] = MappingProxyType(
    {
        f.name: _kind(f)
        for f in sorted(LANE_EVENT.oneofs_by_name[PAYLOAD_ONEOF].fields, key=lambda f: f.number)
    }
)
PAYLOAD_NAMES: tuple[str, ...] = tuple(PAYLOADS)
POS_PAYLOADS: frozenset[str] = frozenset(k.name for k in PAYLOADS.values() if k.is_pos)
# POS payloads that make sense outside a transaction; every other one needs transaction_id.
_OUTSIDE_TRANSACTION = frozenset(
    {
        "no_sale_drawer_open",
        "operator_sign_on",
        "operator_sign_off",
        "attendant_override",
        "own_bag_declared",  # a shopper may declare their bag before the first scan
    }
)
TRANSACTION_PAYLOADS: frozenset[str] = POS_PAYLOADS - _OUTSIDE_TRANSACTION

# The rules the descriptors cannot say, keyed by payload and field name (checked below, so
# a renamed field fails at import rather than silently escaping its rule).
#: Money fields that must be set.
REQUIRED_MONEY: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
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
)
#: Money that must not be negative; a total, a tender or change may be (returns).
NON_NEGATIVE_MONEY: frozenset[tuple[str, str]] = frozenset(
    {
        ("item_added", "unit_price"),
        ("item_voided", "amount"),
        ("price_override", "original_unit_price"),
        ("price_override", "new_unit_price"),
        ("discount_applied", "amount"),
        ("refund_issued", "amount"),
        ("barcode_read", "label_price"),
    }
)
#: String fields that must not be empty.
REQUIRED_TEXT: frozenset[tuple[str, str]] = frozenset(
    {
        ("item_added", "line_id"),
        ("item_voided", "line_id"),
        ("quantity_changed", "line_id"),
        ("price_override", "line_id"),
        ("zone_crossing", "track_id"),
        ("item_recognized", "track_id"),
    }
)
#: Enum fields whose UNSPECIFIED value (0) is not acceptable.
REQUIRED_ENUMS: frozenset[tuple[str, str]] = frozenset(
    {
        ("tender_completed", "tender_type"),
        ("scale_reading", "role"),
        ("zone_crossing", "zone"),
    }
)
#: Integer counts and quantities, with their least value.
COUNTS: Mapping[tuple[str, str], int] = MappingProxyType(
    {
        ("item_added", "quantity"): 1,
        ("quantity_changed", "old_quantity"): 0,
        ("quantity_changed", "new_quantity"): 0,
        ("transaction_ended", "item_count"): 0,
        ("zone_item_count", "count"): 0,
    }
)
#: Fields holding a GTIN (GS1 8, 12, 13 or 14 digits, normalised to 14).
GTIN_FIELDS: frozenset[tuple[str, str]] = frozenset(
    {("item_added", "gtin"), ("refund_issued", "gtin")}
)


def _check_names() -> None:
    tables = [
        *((p, f) for p, names in REQUIRED_MONEY.items() for f in names),
        *NON_NEGATIVE_MONEY,
        *REQUIRED_TEXT,
        *REQUIRED_ENUMS,
        *COUNTS,
        *GTIN_FIELDS,
    ]
    for payload, field in tables:
        if payload not in PAYLOADS or field not in PAYLOADS[payload].message.fields_by_name:
            raise RuntimeError(
                f"lane-event schema names {payload}.{field}, which events.proto lacks"
            )
    if not TRANSACTION_PAYLOADS <= POS_PAYLOADS or not _OUTSIDE_TRANSACTION <= POS_PAYLOADS:
        raise RuntimeError("lane-event schema: a transaction rule names a non-POS payload")


_check_names()


def normalize_gtin(code: str) -> str:
    """A valid GTIN-8, -12, -13 or -14 as GTIN-14 (left-padded with zeros); "" stays ""."""
    return code.zfill(14) if code else code
