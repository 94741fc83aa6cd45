"""Protobuf <-> reporting domain objects; the only module besides the servicer that knows protos."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from lanesight.common import schema
from lanesight.common.validation import MAX_SEQUENCE, Problem, validate_lane_event
from lanesight.reporting import model
from lanesight.reporting.facts import HANDLED_KINDS, OWN_KINDS, REJECTED_KIND
from lanesight.reporting.model import InvalidArgument
from lanesight.v1 import alerts_pb2, common_pb2, events_pb2, reporting_pb2

# (enum, prefix) -> {number: domain name}: enum.Name() and the slicing cost microseconds
# per field, and every fed event has one or two enums.
_ENUM_NAMES: dict[tuple[int, str], dict[int, str]] = {}


def _enum_name(enum, value: int, prefix: str) -> str:
    """The domain name of an enum value ("ALERT_TYPE_MISSED_SCAN" -> "missed_scan")."""
    names = _ENUM_NAMES.get((id(enum), prefix))
    if names is None:
        names = {
            number: name[len(prefix) :].lower()
            for name, number in enum.items()
            if name.startswith(prefix)
        }
        _ENUM_NAMES[(id(enum), prefix)] = names
    return names.get(value, "unspecified")


def _enum_value(enum, name: str, prefix: str) -> int:
    return enum.Value(prefix + name.upper())


def _strict_enum(enum, value: int, prefix: str, field_name: str) -> str:
    try:
        return enum.Name(value)[len(prefix) :].lower()
    except ValueError:
        raise InvalidArgument(field_name, f"unknown value {value}") from None


def ts_ms(ts: Timestamp) -> int:
    """Epoch milliseconds of a Timestamp."""
    return ts.seconds * 1000 + ts.nanos // 1_000_000


def ms_ts(ms: int) -> Timestamp:
    """A Timestamp from epoch milliseconds."""
    ts = Timestamp()
    ts.seconds, rest = divmod(ms, 1000)
    ts.nanos = rest * 1_000_000
    return ts


def _money(message: Message, field_name: str, data: dict[str, Any], key: str = "amount") -> None:
    if message.HasField(field_name):
        money = getattr(message, field_name)
        data[f"{key}_minor"] = money.amount_minor
        data["currency"] = money.currency_code


# --- lane events ---------------------------------------------------------------------------


def _fields(*names: str) -> Callable[[Message, dict[str, Any]], None]:
    def extract(payload: Message, data: dict[str, Any]) -> None:
        for name in names:
            data[name] = getattr(payload, name)

    return extract


def _transaction_started(p, data) -> None:
    data["operator_id"] = p.operator_id
    data["self_checkout"] = p.self_checkout
    data["kind"] = _enum_name(events_pb2.TransactionKind, p.kind, "TRANSACTION_KIND_")


def _item_added(p, data) -> None:
    data.update(
        line_id=p.line_id,
        gtin=schema.normalize_gtin(p.gtin),
        plu=p.plu,
        description=p.description,
        quantity=p.quantity,
        weight_mg=p.weight_mg,
        barcode_data=p.barcode_data,
        entry_method=_enum_name(events_pb2.EntryMethod, p.entry_method, "ENTRY_METHOD_"),
        unit_of_measure=_enum_name(common_pb2.UnitOfMeasure, p.unit_of_measure, "UNIT_OF_MEASURE_"),
    )
    _money(p, "extended_price", data, "extended")


def _item_voided(p, data) -> None:
    data.update(line_id=p.line_id, operator_id=p.operator_id)
    _money(p, "amount", data)


def _price_override(p, data) -> None:
    data.update(line_id=p.line_id, operator_id=p.operator_id, reason_code=p.reason_code)
    if p.HasField("original_unit_price") and p.HasField("new_unit_price"):
        data["amount_minor"] = p.original_unit_price.amount_minor - p.new_unit_price.amount_minor
        data["currency"] = p.new_unit_price.currency_code


def _discount_applied(p, data) -> None:
    data.update(
        line_id=p.line_id,
        operator_id=p.operator_id,
        code=p.code,
        kind=_enum_name(events_pb2.DiscountKind, p.kind, "DISCOUNT_KIND_"),
    )
    _money(p, "amount", data)


def _transaction_ended(p, data) -> None:
    data.update(
        item_count=p.item_count,
        outcome=_enum_name(events_pb2.TransactionOutcome, p.outcome, "TRANSACTION_OUTCOME_"),
    )
    _money(p, "total", data, "total")


def _refund_issued(p, data) -> None:
    data.update(
        line_id=p.line_id,
        gtin=schema.normalize_gtin(p.gtin),
        with_receipt=p.with_receipt,
        original_transaction_id=p.original_transaction_id,
        operator_id=p.operator_id,
    )
    _money(p, "amount", data)


def _scale_reading(p, data) -> None:
    data.update(
        scale_id=p.scale_id,
        weight_mg=p.weight_mg,
        status=_enum_name(events_pb2.ScaleStatus, p.status, "SCALE_STATUS_"),
        role=_enum_name(events_pb2.ScaleRole, p.role, "SCALE_ROLE_"),
    )


def _camera_health(p, data) -> None:
    data.update(
        camera_id=p.camera_id,
        health=_enum_name(events_pb2.CameraHealth, p.health, "CAMERA_HEALTH_"),
    )


def _printer_status(p, data) -> None:
    data.update(
        printer_id=p.printer_id,
        reachable=p.reachable,
        cover_open=p.cover_open,
        paper=_enum_name(events_pb2.PaperStatus, p.paper, "PAPER_STATUS_"),
    )


def _peripheral_health(p, data) -> None:
    data.update(
        device_id=p.device_id,
        state=_enum_name(events_pb2.PeripheralState, p.state, "PERIPHERAL_STATE_"),
    )


def _generic(kind: schema.PayloadKind) -> Callable[[Message, dict[str, Any]], None]:
    """Every scalar field of a payload by name, enums as lower-case names and money as
    ``<field>_minor`` plus ``currency``: for payloads without a hand-written extractor."""
    scalars: list[str] = []
    enums: list[tuple[str, Any, str]] = []
    money: list[str] = []
    for field in kind.message.fields:
        if field.is_repeated:
            continue
        if field.message_type is schema.MONEY:
            money.append(field.name)
        elif field.enum_type is not None:
            values = field.enum_type.values_by_number
            prefix = field.enum_type.values_by_number[0].name.removesuffix("UNSPECIFIED")
            enums.append((field.name, values, prefix))
        elif field.message_type is None:
            scalars.append(field.name)

    def extract(payload: Message, data: dict[str, Any]) -> None:
        for name in scalars:
            data[name] = getattr(payload, name)
        for name, values, prefix in enums:
            value = values.get(getattr(payload, name))
            data[name] = value.name[len(prefix) :].lower() if value else "unspecified"
        for name in money:
            _money(payload, name, data, name)

    return extract


_HAND_WRITTEN: dict[str, Callable[[Message, dict[str, Any]], None]] = {
    "transaction_started": _transaction_started,
    "item_added": _item_added,
    "item_voided": _item_voided,
    "price_override": _price_override,
    "discount_applied": _discount_applied,
    "transaction_ended": _transaction_ended,
    "no_sale_drawer_open": _fields("operator_id"),
    "refund_issued": _refund_issued,
    "operator_sign_on": _fields("operator_id"),
    "operator_sign_off": _fields("operator_id"),
    "attendant_override": _fields("attendant_id", "alert_id", "reason_code"),
    "scanner_no_read": _fields("scanner_id"),
    "scale_reading": _scale_reading,
    "camera_health_changed": _camera_health,
    "printer_status_changed": _printer_status,
    "peripheral_health_changed": _peripheral_health,
}
# Payload name -> what the store needs from it; every payload of the API has an entry.
_EVENT_FIELDS: dict[str, Callable[[Message, dict[str, Any]], None]] = {
    name: _HAND_WRITTEN.get(name) or _generic(kind) for name, kind in schema.PAYLOADS.items()
}
if not HANDLED_KINDS <= set(schema.PAYLOAD_NAMES) | OWN_KINDS:
    raise RuntimeError(f"reporting facts handle kinds the API lacks: {sorted(HANDLED_KINDS)}")


def event_from_proto(event: events_pb2.LaneEvent, with_data: bool = True) -> model.LaneEventRecord:
    """A LaneEvent as the store's record, keeping the serialized event as raw.

    Without ``with_data`` the payload fields are left out: ingest stores the raw event
    only, and the projector takes them from it (what the servicer uses)."""
    kind = event.WhichOneof("payload") or "unspecified"
    data: dict[str, Any] = {}
    extract = _EVENT_FIELDS.get(kind) if with_data else None
    if extract is not None:
        extract(getattr(event, kind), data)
    return model.LaneEventRecord(
        event_id=event.event_id,
        store_id=event.store_id,
        lane_id=event.lane_id,
        sequence=event.sequence,
        time_ms=ts_ms(event.lane_time),
        transaction_id=event.transaction_id,
        kind=kind,
        data=data,
        source_device_id=event.source_device_id,
        raw=event.SerializeToString(),
    )


def event_row(event: events_pb2.LaneEvent) -> tuple:
    """``model.event_row(event_from_proto(event, with_data=False))`` without the record
    between: what IngestRecords stores of an accepted event."""
    lane_time = event.lane_time
    return (
        event.event_id,
        event.store_id,
        event.lane_id,
        event.sequence,
        lane_time.seconds * 1000 + lane_time.nanos // 1_000_000,
        event.transaction_id,
        event.WhichOneof("payload") or "unspecified",
        event.source_device_id,
        event.SerializeToString(),
        None,
    )


# --- alerts --------------------------------------------------------------------------------


def _money_from(message: Message, field_name: str) -> model.Money | None:
    if not message.HasField(field_name):
        return None
    money = getattr(message, field_name)
    return model.Money(money.amount_minor, money.currency_code)


def _optional_ms(message: Message, field_name: str) -> int | None:
    return ts_ms(getattr(message, field_name)) if message.HasField(field_name) else None


def alert_from_proto(alert: alerts_pb2.Alert) -> model.AlertRecord:
    """An Alert revision as the store's record."""
    return model.AlertRecord(
        alert_id=alert.alert_id,
        revision=alert.revision,
        store_id=alert.store_id,
        lane_id=alert.lane_id,
        type=_enum_name(alerts_pb2.AlertType, alert.type, "ALERT_TYPE_"),
        raised_ms=ts_ms(alert.raised_at),
        transaction_id=alert.transaction_id,
        pos_exception_kind=_enum_name(
            alerts_pb2.PosExceptionKind, alert.pos_exception_kind, "POS_EXCEPTION_KIND_"
        ),
        severity=_enum_name(alerts_pb2.Severity, alert.severity, "SEVERITY_"),
        confidence=alert.confidence,
        amount_at_risk=_money_from(alert, "amount_at_risk"),
        amount_recovered=_money_from(alert, "amount_recovered"),
        supporting_event_ids=list(alert.supporting_event_ids),
        reason=alert.reason,
        suggested_action=alert.suggested_action,
        state=_enum_name(alerts_pb2.AlertState, alert.state, "ALERT_STATE_"),
        disposition=_enum_name(alerts_pb2.Disposition, alert.disposition, "DISPOSITION_"),
        escalation=_enum_name(alerts_pb2.Escalation, alert.escalation, "ESCALATION_"),
        acknowledged_ms=_optional_ms(alert, "acknowledged_at"),
        resolved_ms=_optional_ms(alert, "resolved_at"),
        acknowledged_by=alert.acknowledged_by,
        resolved_by=alert.resolved_by,
        resolution_note=alert.resolution_note,
        vision_available=alert.vision_available,
        gtin=alert.gtin,
        plu=alert.plu,
        item_description=alert.item_description,
        category=alert.category,
        rule=alert.rule,
        merged_signals=alert.merged_signals,
    )


def alert_to_proto(a: model.AlertRecord) -> alerts_pb2.Alert:
    """A stored alert (latest revision) as the API's Alert."""
    alert = alerts_pb2.Alert(
        alert_id=a.alert_id,
        store_id=a.store_id,
        lane_id=a.lane_id,
        transaction_id=a.transaction_id,
        type=_enum_value(alerts_pb2.AlertType, a.type, "ALERT_TYPE_"),
        pos_exception_kind=_enum_value(
            alerts_pb2.PosExceptionKind, a.pos_exception_kind, "POS_EXCEPTION_KIND_"
        ),
        severity=_enum_value(alerts_pb2.Severity, a.severity, "SEVERITY_"),
        confidence=a.confidence,
        supporting_event_ids=a.supporting_event_ids,
        reason=a.reason,
        suggested_action=a.suggested_action,
        state=_enum_value(alerts_pb2.AlertState, a.state, "ALERT_STATE_"),
        disposition=_enum_value(alerts_pb2.Disposition, a.disposition, "DISPOSITION_"),
        escalation=_enum_value(alerts_pb2.Escalation, a.escalation, "ESCALATION_"),
        raised_at=ms_ts(a.raised_ms),
        acknowledged_by=a.acknowledged_by,
        resolved_by=a.resolved_by,
        resolution_note=a.resolution_note,
        vision_available=a.vision_available,
        gtin=a.gtin,
        plu=a.plu,
        item_description=a.item_description,
        category=a.category,
        revision=a.revision,
        rule=a.rule,
        merged_signals=a.merged_signals,
    )
    if a.amount_at_risk is not None:
        alert.amount_at_risk.CopyFrom(money_to_proto(a.amount_at_risk))
    if a.amount_recovered is not None:
        alert.amount_recovered.CopyFrom(money_to_proto(a.amount_recovered))
    if a.acknowledged_ms is not None:
        alert.acknowledged_at.CopyFrom(ms_ts(a.acknowledged_ms))
    if a.resolved_ms is not None:
        alert.resolved_at.CopyFrom(ms_ts(a.resolved_ms))
    return alert


def money_to_proto(money: model.Money) -> common_pb2.Money:
    """Domain money as the API's Money."""
    return common_pb2.Money(amount_minor=money.amount_minor, currency_code=money.currency)


def rejected_event(
    event: events_pb2.LaneEvent, problem: Problem, now_ms: int
) -> model.LaneEventRecord:
    """An event the shared validator refused, as a data-quality record: stored at the time
    it arrived, keyed by its bytes (a resend is the same record), nothing taken from it
    unbounded."""
    limit = 128
    digest = hashlib.sha256(event.SerializeToString()).hexdigest()[:32]
    return model.LaneEventRecord(
        event_id=f"rejected:{digest}",
        store_id=event.store_id[:limit],
        lane_id=event.lane_id[:limit],
        sequence=min(event.sequence, MAX_SEQUENCE),
        time_ms=now_ms,
        transaction_id="",
        kind=REJECTED_KIND,
        data={
            "field": problem.field,
            "message": problem.message,
            "event_id": event.event_id[:limit],
        },
        source_device_id=event.source_device_id[:limit],
    )


def record_from_proto(
    record: reporting_pb2.ReportRecord, now_ms: int | None = None, with_data: bool = True
) -> model.IngestRecord:
    """One fed record; a record with neither event nor alert carries only its sequence.

    Events pass the shared validator first (lane time against ``now_ms``, default now);
    one it refuses becomes a data-quality record instead of blocking the feed. Without
    ``with_data`` an accepted event's payload fields are left to the projector (see
    ``event_from_proto``)."""
    which = record.WhichOneof("record")
    event = None
    if which == "event":
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        fed = record.event
        problems = validate_lane_event(fed, now)
        if problems:
            event = rejected_event(fed, problems[0], now)
        else:
            event = event_from_proto(fed, with_data)
    return model.IngestRecord(
        record_sequence=record.record_sequence,
        event=event,
        alert=alert_from_proto(record.alert) if which == "alert" else None,
    )


# --- requests ------------------------------------------------------------------------------


def filter_from_proto(f: reporting_pb2.ReportFilter, name: str = "filter") -> model.ReportFilter:
    """A request's ReportFilter; INVALID_ARGUMENT names the bad field."""
    start = ts_ms(f.range.start) if f.range.HasField("start") else None
    end = ts_ms(f.range.end) if f.range.HasField("end") else None
    types = tuple(
        _strict_enum(alerts_pb2.AlertType, t, "ALERT_TYPE_", f"{name}.types") for t in f.types
    )
    if "unspecified" in types:
        raise InvalidArgument(f"{name}.types", "ALERT_TYPE_UNSPECIFIED is not a filter value")
    result = model.ReportFilter(
        start_ms=start,
        end_ms=end,
        store_ids=tuple(f.store_ids),
        lane_ids=tuple(f.lane_ids),
        alert_types=types,
    )
    if start is not None and end is not None and end < start:
        raise InvalidArgument(f"{name}.range", "end is before start")
    return result


def filter_to_proto(f: model.ReportFilter) -> reporting_pb2.ReportFilter:
    """A domain filter as the API's ReportFilter."""
    message = reporting_pb2.ReportFilter(
        store_ids=f.store_ids,
        lane_ids=f.lane_ids,
        types=[_enum_value(alerts_pb2.AlertType, t, "ALERT_TYPE_") for t in f.alert_types],
    )
    if f.start_ms is not None:
        message.range.start.CopyFrom(ms_ts(f.start_ms))
    if f.end_ms is not None:
        message.range.end.CopyFrom(ms_ts(f.end_ms))
    return message


def page_from_proto(page: common_pb2.PageRequest) -> model.PageRequest:
    """A request's PageRequest."""
    return model.PageRequest(page_size=page.page_size, page_token=page.page_token)


def page_to_proto(info: model.PageInfo) -> common_pb2.PageResponse:
    """Where a page sits, for a response."""
    return common_pb2.PageResponse(next_page_token=info.next_page_token, total_size=info.total_size)


def dimensions_from_proto(values) -> list[str]:
    """Shrink group_by values; INVALID_ARGUMENT for unknown or unspecified ones."""
    names = [
        _strict_enum(reporting_pb2.ShrinkDimension, v, "SHRINK_DIMENSION_", "group_by")
        for v in values
    ]
    if "unspecified" in names:
        raise InvalidArgument("group_by", "SHRINK_DIMENSION_UNSPECIFIED is not a dimension")
    return names


def dimensions_to_proto(names: list[str]) -> list[int]:
    """Shrink dimensions as enum values."""
    return [_enum_value(reporting_pb2.ShrinkDimension, n, "SHRINK_DIMENSION_") for n in names]


def state_from_proto(value: int) -> str:
    """ListAlerts' state filter; INVALID_ARGUMENT for unknown values."""
    return _strict_enum(alerts_pb2.AlertState, value, "ALERT_STATE_", "state")


def state_to_proto(name: str) -> int:
    """An alert state name as its enum value."""
    return _enum_value(alerts_pb2.AlertState, name, "ALERT_STATE_")


def report_kind_from_proto(value: int) -> str:
    """ExportReport's kind; INVALID_ARGUMENT for unknown or unspecified values."""
    name = _strict_enum(reporting_pb2.ReportKind, value, "REPORT_KIND_", "kind")
    if name == "unspecified":
        raise InvalidArgument("kind", "a report kind is required")
    return name


def export_format_from_proto(value: int) -> str:
    """ExportReport's format; INVALID_ARGUMENT for unknown or unspecified values."""
    name = _strict_enum(reporting_pb2.ExportFormat, value, "EXPORT_FORMAT_", "format")
    if name == "unspecified":
        raise InvalidArgument("format", "a format is required (CSV or HTML)")
    return name


# --- report rows ---------------------------------------------------------------------------


def _money_or_empty(amount_minor: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount_minor, currency_code=currency)


def shrink_row_to_proto(row: model.ShrinkRow) -> reporting_pb2.ShrinkRow:
    """A shrink row for the API."""
    return reporting_pb2.ShrinkRow(
        keys=row.keys,
        alerts=row.alerts,
        amount_at_risk=_money_or_empty(row.at_risk_minor, row.currency),
        amount_recovered=_money_or_empty(row.recovered_minor, row.currency),
    )


def shrink_row_from_proto(row: reporting_pb2.ShrinkRow) -> model.ShrinkRow:
    """An API shrink row as the domain's."""
    return model.ShrinkRow(
        keys=list(row.keys),
        alerts=row.alerts,
        currency=row.amount_at_risk.currency_code,
        at_risk_minor=row.amount_at_risk.amount_minor,
        recovered_minor=row.amount_recovered.amount_minor,
    )


_QUALITY_FIELDS = (
    "alerts",
    "resolved",
    "precision",
    "false_alerts_per_100_transactions",
    "self_corrected_share",
    "acknowledge_p50_ms",
    "acknowledge_p95_ms",
    "resolve_p50_ms",
    "resolve_p95_ms",
    "rule",
)


def quality_row_to_proto(row: model.AlertQualityRow) -> reporting_pb2.AlertQualityRow:
    """An alert-quality row for the API."""
    return reporting_pb2.AlertQualityRow(
        type=_enum_value(alerts_pb2.AlertType, row.type, "ALERT_TYPE_")
        if row.type != "unspecified"
        else 0,
        **{name: getattr(row, name) for name in _QUALITY_FIELDS},
    )


def quality_row_from_proto(row: reporting_pb2.AlertQualityRow) -> model.AlertQualityRow:
    """An API alert-quality row as the domain's."""
    return model.AlertQualityRow(
        type=_enum_name(alerts_pb2.AlertType, row.type, "ALERT_TYPE_"),
        **{name: getattr(row, name) for name in _QUALITY_FIELDS},
    )


_LANE_FIELDS = (
    "scanner_first_pass_read_rate",
    "keyed_entry_rate",
    "scale_not_zeroed",
    "scale_over_capacity",
    "printer_paper_out",
    "printer_cover_open",
    "device_disconnections",
    "health_score",
    "items_entered",
    "items_weighed",
    "items_scanned",
    "scanner_no_reads",
    "transactions",
)


def lane_row_to_proto(row: model.LaneHealthRow) -> reporting_pb2.LaneHealthRow:
    """A lane-health row for the API."""
    return reporting_pb2.LaneHealthRow(
        lane=common_pb2.LaneRef(store_id=row.store_id, lane_id=row.lane_id),
        camera_unhealthy_seconds=row.camera_unhealthy_seconds,
        **{name: getattr(row, name) for name in _LANE_FIELDS},
    )


def lane_row_from_proto(row: reporting_pb2.LaneHealthRow) -> model.LaneHealthRow:
    """An API lane-health row as the domain's (first-pass scans are derived from the rate)."""
    result = model.LaneHealthRow(
        store_id=row.lane.store_id,
        lane_id=row.lane.lane_id,
        camera_unhealthy_ms=row.camera_unhealthy_seconds * 1000,
        **{name: getattr(row, name) for name in _LANE_FIELDS},
    )
    result.first_pass_scans = round(row.scanner_first_pass_read_rate * row.items_scanned)
    result.items_keyed = round(row.keyed_entry_rate * row.items_entered)
    return result


def keyed_item_to_proto(item: model.KeyedItem) -> reporting_pb2.KeyedItem:
    """A keyed item for the API."""
    return reporting_pb2.KeyedItem(
        item_code=item.item_code,
        description=item.description,
        entries=item.entries,
        keyed=item.keyed,
        keyed_rate=item.keyed_rate,
    )


def keyed_item_from_proto(item: reporting_pb2.KeyedItem) -> model.KeyedItem:
    """An API keyed item as the domain's."""
    return model.KeyedItem(item.item_code, item.description, item.entries, item.keyed)


_POS_FIELDS = ("store_id", "lane_id", "operator_id", "transactions", *model.POS_MEASURES)


def pos_row_to_proto(row: model.PosExceptionRow) -> reporting_pb2.PosExceptionRow:
    """A POS exception row for the API."""
    return reporting_pb2.PosExceptionRow(
        outliers=row.outliers, **{name: getattr(row, name) for name in _POS_FIELDS}
    )


def pos_row_from_proto(row: reporting_pb2.PosExceptionRow) -> model.PosExceptionRow:
    """An API POS exception row as the domain's."""
    return model.PosExceptionRow(
        outliers=list(row.outliers), **{name: getattr(row, name) for name in _POS_FIELDS}
    )
