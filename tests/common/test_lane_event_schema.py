"""The lane-event schema read off the descriptors, the shared validator's bounds, and every
payload kind of the API converting in fusion, reporting and device POS ingress."""

from __future__ import annotations

import time

import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st
from lanesight.common import schema
from lanesight.common.money import exponent, format_minor, is_known_currency
from lanesight.common.validation import MAX_SEQUENCE, validate_lane_event
from lanesight.device.outbox import Outbox, OutboxLimits
from lanesight.device.pos_ingress import pos_event_problems
from lanesight.device.recorder import EventRecorder
from lanesight.fusion.convert import PAYLOAD_TYPE, event_to_pb, events_from_pb
from lanesight.fusion.engine import FusionEngine
from lanesight.reporting import convert as reporting_convert
from lanesight.reporting.facts import REJECTED_KIND
from lanesight.v1 import common_pb2, events_pb2, reporting_pb2

from tests.common.lane_event_samples import sample

ONEOF = events_pb2.LaneEvent.DESCRIPTOR.oneofs_by_name["payload"]


def test_the_schema_is_read_off_the_descriptors():
    assert list(schema.PAYLOAD_NAMES) == [
        f.name for f in sorted(ONEOF.fields, key=lambda f: f.number)
    ]
    assert schema.POS_PAYLOADS == {f.name for f in ONEOF.fields if 10 <= f.number <= 39}
    assert {"bagging_skipped", "own_bag_declared", "item_added"} <= schema.POS_PAYLOADS
    assert "barcode_read" not in schema.POS_PAYLOADS
    item = schema.PAYLOADS["item_added"]
    assert item.money_fields == ("unit_price", "extended_price")
    assert item.weight_fields == ("weight_mg",)
    assert set(item.enum_fields) == {"entry_method", "unit_of_measure"}
    assert schema.PAYLOADS["own_bag_declared"].weight_fields == ("bag_weight_mg",)
    assert schema.PAYLOADS["scale_reading"].enum_fields["role"] == {0, 1, 2}
    assert "own_bag_declared" not in schema.TRANSACTION_PAYLOADS
    assert "bagging_skipped" in schema.TRANSACTION_PAYLOADS


def test_one_currency_table_from_iso_4217():
    assert is_known_currency("EUR") and is_known_currency("JPY")
    assert not is_known_currency("XYZ") and not is_known_currency("usd")
    assert not is_known_currency("XAU")  # gold has no minor unit: not a payment currency
    assert (exponent("JPY"), exponent("USD"), exponent("KWD"), exponent("CLF")) == (0, 2, 3, 4)
    assert format_minor(-1234, "KWD") == "-1.234"


@pytest.mark.parametrize("kind", schema.PAYLOAD_NAMES)
def test_every_payload_kind_converts_in_every_service(kind):
    event = sample(kind, sequence=5)
    assert validate_lane_event(event, time.time_ns() // 10**6) == []
    # Fusion: decoded to its dataclass, applied by the engine without error, and encoded back.
    [decoded] = events_from_pb([event])
    assert decoded.problem is None
    assert type(decoded.payload) is PAYLOAD_TYPE[kind]
    assert events_from_pb([event_to_pb(decoded)]) == [decoded]
    engine = FusionEngine()
    result = engine.ingest([decoded])
    assert result.rejections == [] and result.applied == [0]
    # Reporting: stored under its own kind, with its payload's fields.
    record = reporting_convert.record_from_proto(
        reporting_pb2.ReportRecord(record_sequence=1, event=event)
    )
    assert record.event is not None and record.event.kind == kind
    assert record.event.data or not schema.PAYLOADS[kind].message.fields
    # Device: POS ingress takes every POS payload and only those.
    pos = events_pb2.LaneEvent(transaction_id="t-1")
    getattr(pos, kind).CopyFrom(getattr(event, kind))
    problems = pos_event_problems(pos)
    if kind in schema.POS_PAYLOADS:
        assert problems == []
    else:
        assert [p.field for p in problems] == [kind]


def _item(**fields) -> events_pb2.LaneEvent:
    event = sample("item_added")
    event.item_added.entry_method = events_pb2.ENTRY_METHOD_SCANNED
    event.item_added.unit_of_measure = common_pb2.UNIT_OF_MEASURE_EACH
    event.item_added.plu = ""
    for name, value in fields.items():
        setattr(event.item_added, name, value)
    return event


def _with(event: events_pb2.LaneEvent, **envelope) -> events_pb2.LaneEvent:
    for name, value in envelope.items():
        if name == "lane_time_s":
            event.lane_time.seconds = value
        else:
            setattr(event, name, value)
    return event


_NOW_S = time.time_ns() // 10**9
_BAD = [
    (_with(_item(), lane_time_s=10**12), "lane_time"),
    (_with(_item(), lane_time_s=_NOW_S + 2 * 86_400), "lane_time"),
    (_with(_item(), lane_time_s=_NOW_S - 11 * 365 * 86_400), "lane_time"),
    (_with(_item(), sequence=MAX_SEQUENCE + 1), "sequence"),
    (_with(_item(), event_id="e" * 129), "event_id"),
    (_with(_item(), transaction_id="t" * 3_000_000), "transaction_id"),
    (_with(_item(), store_id="s" * 129), "store_id"),
    (_item(description="d" * 513), "item_added.description"),
    (_item(entry_method=99), "item_added.entry_method"),
    (_item(quantity=10_001), "item_added.quantity"),
    (_item(weight_mg=2 * 10**9), "item_added.weight_mg"),
    (
        _item(unit_of_measure=common_pb2.UNIT_OF_MEASURE_KILOGRAM, weight_mg=0),
        "item_added.weight_mg",
    ),
    (_item(gtin="00012345678906"), "item_added.gtin"),
    (_item(gtin="1234567890"), "item_added.gtin"),
]


@pytest.mark.parametrize(("event", "field"), _BAD, ids=[f for _, f in _BAD])
def test_bounds_on_every_field_name_the_field(event, field):
    problems = validate_lane_event(event, time.time_ns() // 10**6)
    assert problems and problems[0].field == field, problems


def test_repeated_fields_and_scores_are_bounded():
    event = sample("item_recognized")
    event.item_recognized.labels[0].score = float("nan")
    assert [p.field for p in validate_lane_event(event)] == ["item_recognized.labels[0].score"]
    for _ in range(64):
        event.item_recognized.labels.add(label="x", score=0.1)
    assert [p.field for p in validate_lane_event(event)] == ["item_recognized.labels"]


@pytest.mark.parametrize("gtin", ["96385074", "036000291452", "4006381333931", "00012345678905"])
def test_gs1_lengths_are_accepted_and_normalised_to_gtin_14(gtin):
    event = _item(gtin=gtin)
    assert validate_lane_event(event) == []
    assert events_from_pb([event])[0].payload.gtin == gtin.zfill(14)
    record = reporting_convert.event_from_proto(event)
    assert record.data["gtin"] == gtin.zfill(14)


def test_reporting_turns_a_refused_event_into_a_data_quality_record():
    event = _with(_item(), lane_time_s=10**12)
    record = reporting_convert.record_from_proto(
        reporting_pb2.ReportRecord(record_sequence=9, event=event), now_ms=1_800_000_000_000
    )
    assert record.event is not None and record.event.kind == REJECTED_KIND
    assert record.event.time_ms == 1_800_000_000_000
    assert record.event.data["field"] == "lane_time"
    again = reporting_convert.record_from_proto(
        reporting_pb2.ReportRecord(record_sequence=9, event=event), now_ms=1_800_000_000_001
    )
    assert again.event is not None and again.event.event_id == record.event.event_id


async def test_the_agent_records_every_payload_kind_as_a_valid_event(tmp_path):
    """Every kind stamped by the agent's recorder (real SQLite outbox) passes the validator,
    and non-POS events inherit the transaction the POS opened."""
    outbox = Outbox(tmp_path / "outbox.db", OutboxLimits(synchronous="normal"))
    await outbox.open()
    try:
        recorder = EventRecorder(outbox, "store-1", "lane-1")
        events = []
        for kind in schema.PAYLOAD_NAMES:
            event = sample(kind)
            event.ClearField("lane_time")
            event.sequence = 0
            if kind not in schema.POS_PAYLOADS:
                event.transaction_id = ""
            events.append(event)
        recorded = await recorder.record_many(events)
    finally:
        await outbox.close()
    now_ms = time.time_ns() // 10**6
    assert [validate_lane_event(e, now_ms) for e in recorded] == [[]] * len(recorded)
    assert [e.sequence for e in recorded] == list(range(1, len(recorded) + 1))
    barcode = next(e for e in recorded if e.WhichOneof("payload") == "barcode_read")
    assert barcode.transaction_id == "t-1"


_SAMPLE_BYTES = {kind: sample(kind).SerializeToString() for kind in schema.PAYLOAD_NAMES}


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(schema.PAYLOAD_NAMES), data=st.data())
def test_corrupted_events_are_named_never_a_crash(kind, data):
    """Poison pills: whatever bytes parse as a LaneEvent, every service's ingress answers
    with problems or a conversion, never an exception."""
    raw = bytearray(_SAMPLE_BYTES[kind])
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        event = events_pb2.LaneEvent.FromString(bytes(raw))
    except DecodeError:
        return
    now_ms = time.time_ns() // 10**6
    problems = validate_lane_event(event, now_ms)
    [decoded] = events_from_pb([event], now_ms)
    assert (decoded.problem is None) == (problems == [])
    assert (decoded.payload is None) == bool(problems) or event.WhichOneof("payload") is None
    record = reporting_convert.record_from_proto(
        reporting_pb2.ReportRecord(record_sequence=1, event=event), now_ms
    )
    assert record.event is not None
    assert (record.event.kind == REJECTED_KIND) == bool(problems)
    pos_event_problems(event)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(alphabet="0123456789", min_size=6, max_size=15),
        st.text(alphabet="0123456789 -a\u0663", min_size=8, max_size=14),
    )
)
def test_the_validators_gtin_verdict_is_python_stdnums(code):
    # The validator checks length and digits itself and asks stdnum only for the check
    # digit; for every code it must agree with stdnum's own ean.is_valid on a bare code
    # (stdnum would accept separators, which a GTIN field must not hold).
    from lanesight.common.validation import _is_gtin
    from stdnum import ean

    bare = code.isascii() and code.isdigit() and len(code) in (8, 12, 13, 14)
    assert _is_gtin(code) == (bare and ean.is_valid(code))
