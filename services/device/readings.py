"""What drivers and links report, as plain values; the recorder turns them into lane events."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lanesight.device.protocols.barcodes import DecodedBarcode
from lanesight.device.protocols.escpos_status import PrinterStatus
from lanesight.device.protocols.framing import ParseError
from lanesight.device.protocols.scale_types import ScaleStatus


class DeviceKindName(enum.Enum):
    """The kind of a peripheral or link (mirrors lanesight.v1.DeviceKind)."""

    SCANNER = "scanner"
    PRODUCE_SCALE = "produce_scale"
    BAGGING_SCALE = "bagging_scale"
    PRINTER = "printer"
    CASH_DRAWER = "cash_drawer"
    CAMERA = "camera"
    POS = "pos"
    FUSION_LINK = "fusion_link"
    VISION_LINK = "vision_link"


class HealthState(enum.Enum):
    """Whether a peripheral is usable (mirrors lanesight.v1.PeripheralState)."""

    UNKNOWN = "unknown"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class BarcodeScanned:
    """A scanner read a label."""

    device_id: str
    barcode: DecodedBarcode


@dataclass(frozen=True, slots=True)
class ScaleReported:
    """A scale's status or weight changed."""

    device_id: str
    role: str  # "produce" or "bagging"
    status: ScaleStatus
    weight_mg: int
    net: bool = False


@dataclass(frozen=True, slots=True)
class PrinterReported:
    """The printer's status changed."""

    device_id: str
    status: PrinterStatus


@dataclass(frozen=True, slots=True)
class DrawerReported:
    """The cash drawer opened or closed (None: unknown)."""

    device_id: str
    is_open: bool | None


@dataclass(frozen=True, slots=True)
class DocumentPrinted:
    """A receipt or audit slip was printed."""

    device_id: str
    document_kind: str  # "receipt" or "audit_slip"


@dataclass(frozen=True, slots=True)
class HealthChanged:
    """A peripheral or link connected, disconnected or failed."""

    device_id: str
    kind: DeviceKindName
    state: HealthState
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ProtocolErrorReported:
    """A peripheral sent bytes that did not parse; the driver carried on."""

    device_id: str
    kind: DeviceKindName
    error: ParseError


Reading = (
    BarcodeScanned
    | ScaleReported
    | PrinterReported
    | DrawerReported
    | DocumentPrinted
    | HealthChanged
    | ProtocolErrorReported
)
#: Where drivers send what they observe; awaiting it means the event is in the outbox.
ReadingSink = Callable[[Reading], Awaitable[object]]
