"""Protobuf <-> domain conversion for the fusion servicer, replay and simulator output."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from lanesight.common import schema
from lanesight.common.validation import DEFAULT as _VALIDATOR
from lanesight.fusion import events as ev
from lanesight.fusion.alerts import Alert, CommandKind, LaneCommand
from lanesight.fusion.catalog import CatalogItem
from lanesight.v1 import alerts_pb2, catalog_pb2, common_pb2, events_pb2, fusion_pb2

# ---- primitives ---------------------------------------------------------------------


def ms_of(ts: Timestamp) -> int:
    """Milliseconds since the epoch of a Timestamp."""
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def set_ms(ts: Timestamp, ms: int) -> None:
    """Set a Timestamp from milliseconds since the epoch."""
    ts.seconds, rest = divmod(ms, 1000)
    ts.nanos = rest * 1_000_000


def money_of(msg: events_pb2.LaneEvent, field: str) -> ev.Money | None:
    """The domain Money of an optional Money field, or None when unset."""
    if not msg.HasField(field):
        return None
    m = getattr(msg, field)
    return ev.Money(m.amount_minor, m.currency_code)


def _set_money(target: common_pb2.Money, money: ev.Money | None) -> None:
    if money is not None:
        target.amount_minor = money.amount_minor
        target.currency_code = money.currency_code


# ---- lane events: protobuf -> domain ------------------------------------------------

# Each payload's dataclass is named like its protobuf message (ItemAdded for item_added).
PAYLOAD_TYPE: dict[str, type] = {}
for _kind in schema.PAYLOADS.values():
    _type = getattr(ev, _kind.message.name, None)
    if _type is None:
        raise RuntimeError(f"fusion.events has no dataclass for {_kind.message.name}")
    PAYLOAD_TYPE[_kind.name] = _type
#: The protobuf payload field of each domain payload type (for field paths and encoding).
PAYLOAD_NAME: dict[type, str] = {t: name for name, t in PAYLOAD_TYPE.items()}
#
# The hot path of Ingest: one small function per payload type, chosen by the oneof's
# name, each reading every field of its payload once (no reflection, no per-field
# helper calls). Money and LabelScore are built with tuple.__new__, which is what their
# NamedTuple constructors do, minus a Python-level call.

_tuple_new = tuple.__new__
_Money = ev.Money
_LabelScore = ev.LabelScore


def _labels(msg) -> tuple[ev.LabelScore, ...]:
    new, make = _tuple_new, _LabelScore
    return tuple([new(make, (x.label, x.score, x.coarse_label)) for x in msg.labels])


def _money(m: common_pb2.Money) -> ev.Money:
    return _tuple_new(_Money, (m.amount_minor, m.currency_code))


# Enum lookups by protobuf number (a dict lookup is many times faster than Enum(value));
# the shared validator has already refused numbers this build does not know.
_TRANSACTION_KIND = {m.value: m for m in ev.TransactionKind}
_ENTRY_METHOD = {m.value: m for m in ev.EntryMethod}
_UNIT_OF_MEASURE = {m.value: m for m in ev.UnitOfMeasure}
_TENDER_TYPE = {m.value: m for m in ev.TenderType}
_SCALE_ROLE = {m.value: m for m in ev.ScaleRole}
_SCALE_STATUS = {m.value: m for m in ev.ScaleStatus}
_LANE_ZONE = {m.value: m for m in ev.LaneZone}
_ZONE_DIRECTION = {m.value: m for m in ev.ZoneDirection}


def _item_added(p) -> ev.ItemAdded:
    has = p.HasField
    gtin = p.gtin
    return ev.ItemAdded(
        p.line_id,
        gtin.zfill(14) if gtin else gtin,  # GS1 8/12/13 digits are kept as GTIN-14
        p.plu,
        p.description,
        p.quantity,
        _money(p.unit_price) if has("unit_price") else None,
        _money(p.extended_price) if has("extended_price") else None,
        p.weight_mg,
        _ENTRY_METHOD[p.entry_method],
        _UNIT_OF_MEASURE[p.unit_of_measure],
        p.barcode_data,
    )


def _barcode_read(p) -> ev.BarcodeRead:
    return ev.BarcodeRead(
        p.scanner_id,
        p.raw_data,
        p.symbology_identifier,
        p.symbology,
        p.gtin,
        p.plu,
        p.label_weight_mg,
        _money(p.label_price) if p.HasField("label_price") else None,
        p.check_digit_valid,
        p.variable_measure,
        p.variable_measure_item,
        tuple([(g.ai, g.value) for g in p.gs1_elements]),
    )


def _price_override(p) -> ev.PriceOverride:
    has = p.HasField
    return ev.PriceOverride(
        p.line_id,
        _money(p.original_unit_price) if has("original_unit_price") else None,
        _money(p.new_unit_price) if has("new_unit_price") else None,
        p.operator_id,
        p.reason_code,
    )


def _tender_completed(p) -> ev.TenderCompleted:
    has = p.HasField
    return ev.TenderCompleted(
        _TENDER_TYPE[p.tender_type],
        _money(p.amount) if has("amount") else None,
        _money(p.change) if has("change") else None,
    )


def _refund_issued(p) -> ev.RefundIssued:
    gtin = p.gtin
    return ev.RefundIssued(
        p.line_id,
        gtin.zfill(14) if gtin else gtin,
        _money(p.amount) if p.HasField("amount") else None,
        p.with_receipt,
        p.original_transaction_id,
        p.operator_id,
    )


def _generic(kind: schema.PayloadKind) -> Callable[[Any], ev.Payload]:
    """A converter read off the descriptor for a payload without a hand-written one: the
    dataclass named like the message, its fields read by name (Money, enums, scalars)."""
    make = PAYLOAD_TYPE[kind.name]
    readers: list[Callable[[Any], object]] = []
    for f in dataclasses.fields(make):
        proto_field = kind.message.fields_by_name[f.name]
        name = f.name
        if proto_field.message_type is schema.MONEY:
            readers.append(lambda p, n=name: _money(getattr(p, n)) if p.HasField(n) else None)
        elif proto_field.enum_type is not None:
            lookup = {m.value: m for m in getattr(ev, proto_field.enum_type.name)}
            readers.append(lambda p, n=name, table=lookup: table[getattr(p, n)])
        else:
            readers.append(lambda p, n=name: getattr(p, n))

    def convert(p) -> ev.Payload:
        return make(*[read(p) for read in readers])

    return convert


# Hand-written converters for the hot payloads; every other payload is read generically.
_FAST: dict[str, Callable[[Any], ev.Payload]] = {
    "transaction_started": lambda p: ev.TransactionStarted(
        p.operator_id, p.self_checkout, _TRANSACTION_KIND[p.kind]
    ),
    "item_added": _item_added,
    "price_override": _price_override,
    "tender_completed": _tender_completed,
    "refund_issued": _refund_issued,
    "barcode_read": _barcode_read,
    "scale_reading": lambda p: ev.ScaleReading(
        p.scale_id, _SCALE_ROLE[p.role], _SCALE_STATUS[p.status], p.weight_mg, p.net
    ),
    "zone_crossing": lambda p: ev.ZoneCrossing(
        p.camera_id, p.track_id, _LANE_ZONE[p.zone], _ZONE_DIRECTION[p.direction]
    ),
    "item_recognized": lambda p: ev.ItemRecognized(
        p.camera_id, p.track_id, _LANE_ZONE[p.zone], _labels(p)
    ),
    "zone_item_count": lambda p: ev.ZoneItemCount(p.camera_id, _LANE_ZONE[p.zone], p.count),
}
# Every payload of the API converts (a test walks the descriptors to keep it so).
_FROM_PB: dict[str, Callable[[Any], ev.Payload]] = {
    name: _FAST.get(name) or _generic(kind) for name, kind in schema.PAYLOADS.items()
}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def events_from_pb(
    messages: Iterable[events_pb2.LaneEvent], now_ms: int | None = None
) -> list[ev.LaneEvent]:
    """Domain events of a batch of protobufs, in order, each checked by the shared validator
    against the wall clock (``now_ms``, default now): an event with a problem carries its
    first one in ``problem`` and becomes a data-quality rejection."""
    table = _FROM_PB
    make = ev.LaneEvent
    validate = _VALIDATOR.validate
    now = _now_ms() if now_ms is None else now_ms
    out: list[ev.LaneEvent] = []
    append = out.append
    for msg in messages:
        problems = validate(msg, now)
        name = msg.WhichOneof("payload")
        payload = None
        if name is not None and not problems:
            payload = table[name](getattr(msg, name))
        ts = msg.lane_time
        event = make(
            msg.event_id,
            msg.store_id,
            msg.lane_id,
            msg.sequence,
            ts.seconds * 1000 + ts.nanos // 1_000_000,
            payload,
            msg.transaction_id,
            msg.source_device_id,
        )
        event.problem = (problems[0].field, problems[0].message) if problems else None
        append(event)
    return out


def event_from_pb(msg: events_pb2.LaneEvent, now_ms: int | None = None) -> ev.LaneEvent:
    """A domain event from its protobuf (payload None when it has a problem)."""
    return events_from_pb((msg,), now_ms)[0]


# ---- lane events: domain -> protobuf ------------------------------------------------


def event_to_pb(event: ev.LaneEvent) -> events_pb2.LaneEvent:
    """The protobuf of a domain event (for replay files and the simulator)."""
    msg = events_pb2.LaneEvent(
        event_id=event.event_id,
        store_id=event.store_id,
        lane_id=event.lane_id,
        sequence=event.sequence,
        transaction_id=event.transaction_id,
        source_device_id=event.source_device_id,
    )
    set_ms(msg.lane_time, event.lane_time_ms)
    payload = event.payload
    if payload is None:
        return msg
    name = PAYLOAD_NAME[type(payload)]
    money_fields = schema.PAYLOADS[name].money_fields
    target = getattr(msg, name)
    target.SetInParent()
    for field_name in payload.__slots__:
        value = getattr(payload, field_name)
        if field_name in money_fields:
            _set_money(getattr(target, field_name), value)
        elif field_name == "labels":
            for label in value:
                target.labels.add(
                    label=label.label, score=label.score, coarse_label=label.coarse_label
                )
        elif field_name == "gs1_elements":
            for ai, raw in value:
                target.gs1_elements.add(ai=ai, value=raw)
        else:
            setattr(target, field_name, int(value) if isinstance(value, int) else value)
    return msg


# ---- alerts and commands ------------------------------------------------------------


def alert_to_pb(alert: Alert) -> alerts_pb2.Alert:
    """The protobuf of an alert."""
    msg = alerts_pb2.Alert(
        alert_id=alert.alert_id,
        store_id=alert.store_id,
        lane_id=alert.lane_id,
        transaction_id=alert.transaction_id,
        type=int(alert.type),
        pos_exception_kind=int(alert.pos_exception_kind),
        severity=int(alert.severity),
        confidence=alert.confidence,
        supporting_event_ids=alert.supporting_event_ids,
        reason=alert.reason,
        suggested_action=alert.suggested_action,
        state=int(alert.state),
        disposition=int(alert.disposition),
        escalation=int(alert.escalation),
        acknowledged_by=alert.acknowledged_by,
        resolved_by=alert.resolved_by,
        resolution_note=alert.resolution_note,
        withdrawn_reason=alert.withdrawn_reason,
        vision_available=alert.vision_available,
        gtin=alert.item.gtin,
        plu=alert.item.plu,
        item_description=alert.item.description,
        category=alert.item.category,
        revision=alert.revision,
        rule=alert.rule,
        merged_signals=alert.merged_signals,
        merged_types=[int(t) for t in alert.merged_types],
    )
    _set_money(msg.amount_at_risk, alert.amount_at_risk)
    set_ms(msg.raised_at, alert.raised_at_ms)
    if alert.acknowledged_at_ms:
        set_ms(msg.acknowledged_at, alert.acknowledged_at_ms)
    if alert.resolved_at_ms:
        set_ms(msg.resolved_at, alert.resolved_at_ms)
    if alert.amount_recovered is not None:
        _set_money(msg.amount_recovered, alert.amount_recovered)
    return msg


def command_to_pb(command: LaneCommand) -> alerts_pb2.LaneCommand:
    """The protobuf of a lane command."""
    msg = alerts_pb2.LaneCommand(
        command_id=command.command_id,
        store_id=command.store_id,
        lane_id=command.lane_id,
        alert_id=command.alert_id,
    )
    set_ms(msg.issued_at, command.issued_at_ms)
    kind = command.kind
    if kind is CommandKind.PROMPT:
        msg.prompt.message = command.message
    elif kind is CommandKind.PAUSE:
        msg.pause.reason = command.message
    elif kind is CommandKind.RESUME:
        msg.resume.attendant_id = command.attendant_id
    elif kind is CommandKind.PRINT_AUDIT_SLIP:
        msg.print_audit_slip.lines.extend(command.lines)
    elif kind is CommandKind.KICK_DRAWER:
        msg.kick_drawer.pin = command.drawer_pin
    return msg


# ---- catalog ------------------------------------------------------------------------


def catalog_item_from_pb(msg: catalog_pb2.CatalogItem) -> CatalogItem:
    """A catalog item from its protobuf (validated by CatalogBook.upsert)."""
    return CatalogItem(
        sku=msg.sku,
        description=msg.description,
        unit_of_measure=ev.UnitOfMeasure(msg.unit_of_measure),
        gtins=tuple(msg.gtins),
        plu=msg.plu,
        unit_price=money_of(msg, "unit_price"),
        price_per_kg=money_of(msg, "price_per_kg"),
        category=msg.category,
        vision_labels=tuple(msg.vision_labels),
        min_weight_mg=msg.min_weight_mg,
        max_weight_mg=msg.max_weight_mg,
        weight_tolerance_mg=msg.weight_tolerance_mg,
        skip_bagging=msg.skip_bagging,
    )


def catalog_item_to_pb(item: CatalogItem) -> catalog_pb2.CatalogItem:
    """The protobuf of a catalog item."""
    msg = catalog_pb2.CatalogItem(
        sku=item.sku,
        gtins=list(item.gtins),
        plu=item.plu,
        description=item.description,
        unit_of_measure=int(item.unit_of_measure),
        category=item.category,
        vision_labels=list(item.vision_labels),
        min_weight_mg=item.min_weight_mg,
        max_weight_mg=item.max_weight_mg,
        weight_tolerance_mg=item.weight_tolerance_mg,
        skip_bagging=item.skip_bagging,
    )
    if item.unit_price is not None:
        _set_money(msg.unit_price, item.unit_price)
    if item.price_per_kg is not None:
        _set_money(msg.price_per_kg, item.price_per_kg)
    return msg


# ---- lane state ---------------------------------------------------------------------


def lane_state_to_pb(engine, lane, open_alerts: list[Alert]) -> fusion_pb2.LaneState:
    """The LaneState of one lane as fusion sees it."""
    msg = fusion_pb2.LaneState(
        lane=common_pb2.LaneRef(store_id=lane.store_id, lane_id=lane.lane_id),
        transaction_id=lane.txn.transaction_id if lane.txn else "",
        tendering=bool(lane.txn and lane.txn.tendering),
        bagging_weight_mg=lane.ledger.baseline_mg or 0,
        expected_bagging_weight_mg=engine.expected_bagging_mg(lane),
        last_sequence=lane.last_sequence,
        paused=lane.paused,
        vision_available=lane.vision_available,
        data_quality_issues=lane.data_quality_issues,
    )
    if lane.last_event_ms:
        set_ms(msg.last_event_time, lane.last_event_ms)
    if lane.txn is not None:
        for line in lane.txn.order:
            item = msg.lines.add(
                line_id=line.line_id,
                gtin=line.gtin,
                plu=line.plu,
                description=line.description,
                quantity=line.quantity,
                voided=line.voided,
                bagged=line.bagged_units >= line.quantity and line.quantity > 0,
            )
            item.extended_price.amount_minor = line.extended_minor
            item.extended_price.currency_code = line.currency
    msg.open_alerts.extend(alert_to_pb(a) for a in open_alerts)
    return msg
