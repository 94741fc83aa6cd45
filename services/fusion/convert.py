"""Protobuf <-> domain conversion for the fusion servicer, replay and simulator output."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
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
# an unknown number raises KeyError, which becomes a data-quality rejection.
_TRANSACTION_KIND = {m.value: m for m in ev.TransactionKind}
_ENTRY_METHOD = {m.value: m for m in ev.EntryMethod}
_UNIT_OF_MEASURE = {m.value: m for m in ev.UnitOfMeasure}
_DISCOUNT_KIND = {m.value: m for m in ev.DiscountKind}
_TENDER_TYPE = {m.value: m for m in ev.TenderType}
_TRANSACTION_OUTCOME = {m.value: m for m in ev.TransactionOutcome}
_SCALE_ROLE = {m.value: m for m in ev.ScaleRole}
_SCALE_STATUS = {m.value: m for m in ev.ScaleStatus}
_LANE_ZONE = {m.value: m for m in ev.LaneZone}
_ZONE_DIRECTION = {m.value: m for m in ev.ZoneDirection}
_CAMERA_HEALTH = {m.value: m for m in ev.CameraHealth}
_PAPER_STATUS = {m.value: m for m in ev.PaperStatus}
_DRAWER_STATE = {m.value: m for m in ev.DrawerState}
_DEVICE_KIND = {m.value: m for m in ev.DeviceKind}
_PERIPHERAL_STATE = {m.value: m for m in ev.PeripheralState}


def _item_added(p) -> ev.ItemAdded:
    has = p.HasField
    return ev.ItemAdded(
        p.line_id,
        p.gtin,
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
    return ev.RefundIssued(
        p.line_id,
        p.gtin,
        _money(p.amount) if p.HasField("amount") else None,
        p.with_receipt,
        p.original_transaction_id,
        p.operator_id,
    )


_FROM_PB: dict[str, Callable[[Any], ev.Payload]] = {
    "transaction_started": lambda p: ev.TransactionStarted(
        p.operator_id, p.self_checkout, _TRANSACTION_KIND[p.kind]
    ),
    "item_added": _item_added,
    "item_voided": lambda p: ev.ItemVoided(
        p.line_id, p.operator_id, _money(p.amount) if p.HasField("amount") else None
    ),
    "quantity_changed": lambda p: ev.QuantityChanged(
        p.line_id,
        p.old_quantity,
        p.new_quantity,
        _money(p.new_extended_price) if p.HasField("new_extended_price") else None,
    ),
    "price_override": _price_override,
    "discount_applied": lambda p: ev.DiscountApplied(
        p.line_id,
        _money(p.amount) if p.HasField("amount") else None,
        _DISCOUNT_KIND[p.kind],
        p.code,
        p.operator_id,
    ),
    "transaction_suspended": lambda p: ev.TransactionSuspended(p.operator_id),
    "transaction_resumed": lambda p: ev.TransactionResumed(p.operator_id),
    "tender_started": lambda p: ev.TenderStarted(_money(p.total) if p.HasField("total") else None),
    "tender_completed": _tender_completed,
    "transaction_ended": lambda p: ev.TransactionEnded(
        _money(p.total) if p.HasField("total") else None,
        p.item_count,
        _TRANSACTION_OUTCOME[p.outcome],
    ),
    "no_sale_drawer_open": lambda p: ev.NoSaleDrawerOpen(p.operator_id),
    "refund_issued": _refund_issued,
    "operator_sign_on": lambda p: ev.OperatorSignOn(p.operator_id),
    "operator_sign_off": lambda p: ev.OperatorSignOff(p.operator_id),
    "attendant_override": lambda p: ev.AttendantOverride(p.attendant_id, p.alert_id, p.reason_code),
    "barcode_read": _barcode_read,
    "scanner_no_read": lambda p: ev.ScannerNoRead(p.scanner_id, p.detail),
    "scale_reading": lambda p: ev.ScaleReading(
        p.scale_id, _SCALE_ROLE[p.role], _SCALE_STATUS[p.status], p.weight_mg, p.net
    ),
    "zone_crossing": lambda p: ev.ZoneCrossing(
        p.camera_id, p.track_id, _LANE_ZONE[p.zone], _ZONE_DIRECTION[p.direction]
    ),
    "item_recognized": lambda p: ev.ItemRecognized(
        p.camera_id, p.track_id, _LANE_ZONE[p.zone], _labels(p)
    ),
    "barcode_seen": lambda p: ev.BarcodeSeen(p.camera_id, p.track_id, p.data, p.symbology, p.gtin),
    "zone_item_count": lambda p: ev.ZoneItemCount(p.camera_id, _LANE_ZONE[p.zone], p.count),
    "camera_health_changed": lambda p: ev.CameraHealthChanged(
        p.camera_id, _CAMERA_HEALTH[p.health], p.reason
    ),
    "receipt_printed": lambda p: ev.ReceiptPrinted(p.printer_id, p.document_kind),
    "printer_status_changed": lambda p: ev.PrinterStatusChanged(
        p.printer_id, p.reachable, p.offline, p.cover_open, _PAPER_STATUS[p.paper], p.error
    ),
    "drawer_state_changed": lambda p: ev.DrawerStateChanged(p.drawer_id, _DRAWER_STATE[p.state]),
    "peripheral_health_changed": lambda p: ev.PeripheralHealthChanged(
        p.device_id, _DEVICE_KIND[p.kind], _PERIPHERAL_STATE[p.state], p.detail
    ),
}


def events_from_pb(messages: Iterable[events_pb2.LaneEvent]) -> list[ev.LaneEvent]:
    """Domain events of a batch of protobufs, in order (payload None when unset or when an
    enum value is unknown to this build: a data-quality rejection)."""
    table = _FROM_PB
    make = ev.LaneEvent
    out: list[ev.LaneEvent] = []
    append = out.append
    for msg in messages:
        name = msg.WhichOneof("payload")
        payload = None
        if name is not None:
            build = table[name]
            try:
                payload = build(getattr(msg, name))
            except (KeyError, ValueError):
                pass
        ts = msg.lane_time
        append(
            make(
                msg.event_id,
                msg.store_id,
                msg.lane_id,
                msg.sequence,
                ts.seconds * 1000 + ts.nanos // 1_000_000,  # 0 when unset: rejected as missing
                payload,
                msg.transaction_id,
                msg.source_device_id,
            )
        )
    return out


def event_from_pb(msg: events_pb2.LaneEvent) -> ev.LaneEvent:
    """A domain event from its protobuf (payload None when unset or not understood)."""
    return events_from_pb((msg,))[0]


# ---- lane events: domain -> protobuf ------------------------------------------------

_MONEY_FIELDS = {
    "unit_price",
    "extended_price",
    "amount",
    "new_extended_price",
    "original_unit_price",
    "new_unit_price",
    "total",
    "change",
    "label_price",
}


def event_to_pb(event: ev.LaneEvent) -> events_pb2.LaneEvent:
    """The protobuf of a domain event (for replay files and the simulator)."""
    from lanesight.fusion.validation import PAYLOAD_FIELD

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
    target = getattr(msg, PAYLOAD_FIELD[type(payload)])
    target.SetInParent()
    for name in payload.__slots__:  # type: ignore[union-attr]
        value = getattr(payload, name)
        if name in _MONEY_FIELDS:
            _set_money(getattr(target, name), value)
        elif name == "labels":
            for label in value:
                target.labels.add(
                    label=label.label, score=label.score, coarse_label=label.coarse_label
                )
        elif name == "gs1_elements":
            for ai, raw in value:
                target.gs1_elements.add(ai=ai, value=raw)
        else:
            setattr(target, name, int(value) if isinstance(value, int) else value)
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
