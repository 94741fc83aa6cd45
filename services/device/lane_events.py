"""Readings from drivers and links -> lanesight.v1.LaneEvent payloads (and back for kinds)."""

from __future__ import annotations

from lanesight.device.protocols.escpos_status import PaperState
from lanesight.device.protocols.scale_types import ScaleStatus
from lanesight.device.readings import (
    BarcodeScanned,
    DeviceKindName,
    DocumentPrinted,
    DrawerReported,
    HealthChanged,
    HealthState,
    PrinterReported,
    ProtocolErrorReported,
    Reading,
    ScaleReported,
)
from lanesight.v1 import common_pb2, events_pb2

DEVICE_KIND = {
    DeviceKindName.SCANNER: common_pb2.DEVICE_KIND_SCANNER,
    DeviceKindName.PRODUCE_SCALE: common_pb2.DEVICE_KIND_PRODUCE_SCALE,
    DeviceKindName.BAGGING_SCALE: common_pb2.DEVICE_KIND_BAGGING_SCALE,
    DeviceKindName.PRINTER: common_pb2.DEVICE_KIND_PRINTER,
    DeviceKindName.CASH_DRAWER: common_pb2.DEVICE_KIND_CASH_DRAWER,
    DeviceKindName.CAMERA: common_pb2.DEVICE_KIND_CAMERA,
    DeviceKindName.POS: common_pb2.DEVICE_KIND_POS,
    DeviceKindName.FUSION_LINK: common_pb2.DEVICE_KIND_FUSION_LINK,
    DeviceKindName.VISION_LINK: common_pb2.DEVICE_KIND_VISION_LINK,
}
PERIPHERAL_STATE = {
    HealthState.UNKNOWN: events_pb2.PERIPHERAL_STATE_UNSPECIFIED,
    HealthState.CONNECTED: events_pb2.PERIPHERAL_STATE_CONNECTED,
    HealthState.DISCONNECTED: events_pb2.PERIPHERAL_STATE_DISCONNECTED,
    HealthState.ERROR: events_pb2.PERIPHERAL_STATE_ERROR,
}
SCALE_STATUS = {
    ScaleStatus.STABLE: events_pb2.SCALE_STATUS_STABLE,
    ScaleStatus.IN_MOTION: events_pb2.SCALE_STATUS_IN_MOTION,
    ScaleStatus.ZERO: events_pb2.SCALE_STATUS_ZERO,
    ScaleStatus.OVER_CAPACITY: events_pb2.SCALE_STATUS_OVER_CAPACITY,
    ScaleStatus.UNDER_ZERO: events_pb2.SCALE_STATUS_UNDER_ZERO,
    ScaleStatus.NOT_ZEROED: events_pb2.SCALE_STATUS_NOT_ZEROED,
    ScaleStatus.NOT_READY: events_pb2.SCALE_STATUS_NOT_READY,
}
SCALE_ROLE = {"produce": events_pb2.SCALE_ROLE_PRODUCE, "bagging": events_pb2.SCALE_ROLE_BAGGING}
PAPER = {
    PaperState.UNKNOWN: events_pb2.PAPER_STATUS_UNSPECIFIED,
    PaperState.ADEQUATE: events_pb2.PAPER_STATUS_ADEQUATE,
    PaperState.NEAR_END: events_pb2.PAPER_STATUS_NEAR_END,
    PaperState.OUT: events_pb2.PAPER_STATUS_OUT,
}


def _barcode(reading: BarcodeScanned) -> events_pb2.LaneEvent:
    code = reading.barcode
    event = events_pb2.LaneEvent(source_device_id=reading.device_id)
    payload = event.barcode_read
    payload.scanner_id = reading.device_id
    payload.raw_data = code.raw_data
    payload.symbology_identifier = code.symbology_identifier
    payload.symbology = code.symbology
    payload.gtin = code.gtin
    payload.plu = code.plu
    payload.gs1_elements.extend(
        events_pb2.Gs1Element(ai=ai, value=v) for ai, v in code.gs1_elements
    )
    payload.label_weight_mg = code.label_weight_mg
    if code.label_price_minor is not None:
        payload.label_price.amount_minor = code.label_price_minor
        payload.label_price.currency_code = code.currency_code
    payload.check_digit_valid = code.check_digit_valid
    payload.variable_measure = code.variable_measure
    payload.variable_measure_item = code.variable_measure_item
    payload.add_on = code.add_on
    return event


def to_lane_event(reading: Reading) -> events_pb2.LaneEvent:
    """The unstamped LaneEvent for a reading (the recorder adds store, lane, sequence, time)."""
    if isinstance(reading, BarcodeScanned):
        return _barcode(reading)
    event = events_pb2.LaneEvent(source_device_id=reading.device_id)
    if isinstance(reading, ScaleReported):
        event.scale_reading.CopyFrom(
            events_pb2.ScaleReading(
                scale_id=reading.device_id,
                role=SCALE_ROLE.get(reading.role, events_pb2.SCALE_ROLE_UNSPECIFIED),
                status=SCALE_STATUS[reading.status],
                weight_mg=reading.weight_mg,
                net=reading.net,
            )
        )
    elif isinstance(reading, PrinterReported):
        status = reading.status
        event.printer_status_changed.CopyFrom(
            events_pb2.PrinterStatusChanged(
                printer_id=reading.device_id,
                reachable=status.reachable,
                offline=bool(status.offline),
                cover_open=bool(status.cover_open),
                paper=PAPER[status.paper],
                error=bool(status.error),
            )
        )
    elif isinstance(reading, DrawerReported):
        state = {
            None: events_pb2.DRAWER_STATE_UNSPECIFIED,
            True: events_pb2.DRAWER_STATE_OPEN,
            False: events_pb2.DRAWER_STATE_CLOSED,
        }[reading.is_open]
        event.drawer_state_changed.CopyFrom(
            events_pb2.DrawerStateChanged(drawer_id=reading.device_id, state=state)
        )
    elif isinstance(reading, DocumentPrinted):
        event.receipt_printed.CopyFrom(
            events_pb2.ReceiptPrinted(
                printer_id=reading.device_id, document_kind=reading.document_kind
            )
        )
    elif isinstance(reading, HealthChanged):
        event.peripheral_health_changed.CopyFrom(
            events_pb2.PeripheralHealthChanged(
                device_id=reading.device_id,
                kind=DEVICE_KIND[reading.kind],
                state=PERIPHERAL_STATE[reading.state],
                detail=reading.detail[:500],
            )
        )
    elif isinstance(reading, ProtocolErrorReported):
        error = reading.error
        event.peripheral_parse_error.CopyFrom(
            events_pb2.PeripheralParseError(
                device_id=reading.device_id,
                kind=DEVICE_KIND[reading.kind],
                offset=error.offset,
                raw_hex=error.raw_hex,
                raw_length=error.raw_length,
                reason=error.reason,
            )
        )
    else:
        raise TypeError(f"not a reading: {reading!r}")
    return event
