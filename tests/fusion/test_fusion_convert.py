"""Protobuf -> domain decoding of lane events, and the per-payload validation table."""

from __future__ import annotations

import dataclasses

import pytest
from lanesight.fusion import events as ev
from lanesight.fusion.convert import event_from_pb, event_to_pb, events_from_pb
from lanesight.fusion.validation import PAYLOAD_FIELD, validate_event
from lanesight.v1 import events_pb2, fusion_pb2


def _value(annotation: str, name: str, index: int):
    """A value unlike the field's default and unlike the payload's other fields."""
    if name == "gtin":
        return "00012345678905"
    if name == "plu":
        return "4011"
    if annotation == "str":
        return f"x-{name}"
    if annotation == "int":
        return 7 + index
    if annotation == "bool":
        return name != "check_digit_valid"  # its default is True
    if annotation == "Money | None":
        return ev.Money(123, "EUR")
    if annotation == "tuple[LabelScore, ...]":
        return (ev.LabelScore("Banana", 0.75, "fruit"), ev.LabelScore("Lemon", 0.25))
    if annotation == "tuple[tuple[str, str], ...]":
        return (("01", "07310865062149"), ("3103", "000450"))
    enum = getattr(ev, annotation)
    return list(enum)[-1]


def _full(kind: type) -> object:
    fields = dataclasses.fields(kind)
    return kind(**{f.name: _value(str(f.type), f.name, i) for i, f in enumerate(fields)})


def _wire(messages: list[events_pb2.LaneEvent]):
    """The events as Ingest receives them: parsed from the bytes on the wire."""
    data = fusion_pb2.IngestRequest(events=messages).SerializeToString()
    return fusion_pb2.IngestRequest.FromString(data).events


@pytest.mark.parametrize("kind", list(PAYLOAD_FIELD), ids=lambda k: k.__name__)
def test_every_payload_decodes_to_what_was_encoded(kind):
    event = ev.LaneEvent("e1", "s1", "l1", 3, 1_760_000_000_123, _full(kind), "t1", "dev-1")
    decoded = events_from_pb(_wire([event_to_pb(event)]))
    assert decoded == [event]
    assert type(decoded[0].payload) is kind
    assert event_from_pb(event_to_pb(event)) == event


def test_a_batch_decodes_in_order_and_what_cannot_be_understood_is_left_out():
    at_ms = 1_760_000_000_000
    good = ev.LaneEvent("e1", "s", "l", 1, at_ms, ev.ZoneItemCount("cam", ev.LaneZone.CART, 2))
    no_payload = events_pb2.LaneEvent(event_id="e2", store_id="s", lane_id="l", sequence=2)
    no_payload.lane_time.seconds = at_ms // 1000 + 2
    unknown_enum = events_pb2.LaneEvent(event_id="e3", store_id="s", lane_id="l", sequence=3)
    unknown_enum.zone_crossing.track_id = "t-1"
    unknown_enum.zone_crossing.zone = 77  # a zone a newer agent knows
    unknown_enum.lane_time.seconds = at_ms // 1000 + 3
    no_time = event_to_pb(dataclasses.replace(good, event_id="e4", sequence=4))
    no_time.ClearField("lane_time")
    decoded = events_from_pb(_wire([event_to_pb(good), no_payload, unknown_enum, no_time]))
    assert [e.event_id for e in decoded] == ["e1", "e2", "e3", "e4"]
    assert decoded[0] == good
    assert decoded[1].payload is None and decoded[1].lane_time_ms == at_ms + 2_000
    assert decoded[2].payload is None
    assert decoded[3].lane_time_ms == 0 and decoded[3].payload is None
    assert [validate_event(e) for e in decoded] == [
        None,
        ("payload", "exactly one payload must be set"),
        ("zone_crossing.zone", "77 is not a known LaneZone value"),
        ("lane_time", "is required"),
    ]


# Money that must not be negative (a total, a tender amount or change may be).
_NON_NEGATIVE = {
    ("item_added", "unit_price"),
    ("item_voided", "amount"),
    ("price_override", "original_unit_price"),
    ("price_override", "new_unit_price"),
    ("discount_applied", "amount"),
    ("refund_issued", "amount"),
    ("barcode_read", "label_price"),
}
_MONEY_FIELDS = [
    (kind, f.name)
    for kind in PAYLOAD_FIELD
    for f in dataclasses.fields(kind)
    if str(f.type) == "Money | None"
]


def _event(payload: object) -> ev.LaneEvent:
    return ev.LaneEvent("e1", "s", "l", 1, 1_000, payload, transaction_id="t")


@pytest.mark.parametrize("kind,name", _MONEY_FIELDS, ids=lambda x: getattr(x, "__name__", x))
def test_every_money_field_is_checked_and_named(kind, name):
    payload_field = PAYLOAD_FIELD[kind]
    valid = _full(kind)
    assert validate_event(_event(valid)) is None
    unknown = dataclasses.replace(valid, **{name: ev.Money(5, "EURO")})
    assert validate_event(_event(unknown)) == (
        f"{payload_field}.{name}.currency_code",
        "'EURO' is not an ISO 4217 currency code",
    )
    negative = validate_event(_event(dataclasses.replace(valid, **{name: ev.Money(-5, "EUR")})))
    if (payload_field, name) in _NON_NEGATIVE:
        assert negative == (f"{payload_field}.{name}.amount_minor", "must not be negative")
    else:
        assert negative is None


def test_payload_checks_are_named_after_the_payload_field():
    cases = [
        (ev.ItemAdded("", extended_price=ev.Money(1)), "item_added.line_id"),
        (ev.ItemAdded("1", quantity=0, extended_price=ev.Money(1)), "item_added.quantity"),
        (ev.ItemAdded("1", gtin="00012345678905"), "item_added.unit_price"),
        (ev.QuantityChanged("1", 1, -1), "quantity_changed.new_quantity"),
        (ev.ItemVoided(""), "item_voided.line_id"),
        (ev.PriceOverride(""), "price_override.line_id"),
        (ev.BarcodeRead(label_weight_mg=-1), "barcode_read.label_weight_mg"),
        (ev.ZoneCrossing(zone=ev.LaneZone.SCAN), "zone_crossing.track_id"),
        (ev.ZoneCrossing(track_id="t"), "zone_crossing.zone"),
        (ev.ItemRecognized(track_id=""), "item_recognized.track_id"),
        (
            ev.ItemRecognized(
                track_id="t", labels=(ev.LabelScore("a", 0.5), ev.LabelScore("b", 2))
            ),
            "item_recognized.labels[1].score",
        ),
        (ev.ZoneItemCount(count=-1), "zone_item_count.count"),
        (ev.ScaleReading(role=ev.ScaleRole.BAGGING, weight_mg=-1), "scale_reading.weight_mg"),
        (ev.ScaleReading(role=ev.ScaleRole.UNSPECIFIED), "scale_reading.role"),
    ]
    for payload, field in cases:
        problem = validate_event(_event(payload))
        assert problem is not None and problem[0] == field, (payload, problem)
    under_zero = ev.ScaleReading(
        role=ev.ScaleRole.BAGGING, status=ev.ScaleStatus.UNDER_ZERO, weight_mg=-1
    )
    assert validate_event(_event(under_zero)) is None
    assert validate_event(_event(ev.ReceiptPrinted())) is None
