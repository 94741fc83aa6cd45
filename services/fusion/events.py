"""Lane events as plain dataclasses: what fusion's rules read (protobuf stays in convert.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

# Enum values equal the lanesight.v1 protobuf numbers, so conversion is a plain int cast.


class TransactionKind(IntEnum):
    UNSPECIFIED = 0
    SALE = 1
    RETURN = 2


class EntryMethod(IntEnum):
    UNSPECIFIED = 0
    SCANNED = 1
    KEYED = 2
    PLU_LOOKUP = 3
    VISION_SUGGESTION = 4
    PRICE_EMBEDDED = 5


class UnitOfMeasure(IntEnum):
    UNSPECIFIED = 0
    EACH = 1
    KILOGRAM = 2


class DiscountKind(IntEnum):
    UNSPECIFIED = 0
    MANUAL = 1
    COUPON = 2
    PROMOTION = 3


class TenderType(IntEnum):
    UNSPECIFIED = 0
    CASH = 1
    CARD = 2
    MOBILE = 3
    VOUCHER = 4
    OTHER = 5


class TransactionOutcome(IntEnum):
    UNSPECIFIED = 0
    COMPLETED = 1
    CANCELLED = 2
    SUSPENDED = 3


class ScaleRole(IntEnum):
    UNSPECIFIED = 0
    PRODUCE = 1
    BAGGING = 2


class ScaleStatus(IntEnum):
    UNSPECIFIED = 0
    STABLE = 1
    IN_MOTION = 2
    ZERO = 3
    OVER_CAPACITY = 4
    UNDER_ZERO = 5
    NOT_ZEROED = 6
    NOT_READY = 7


class LaneZone(IntEnum):
    UNSPECIFIED = 0
    SCAN = 1
    BAGGING = 2
    CART = 3


class ZoneDirection(IntEnum):
    UNSPECIFIED = 0
    ENTERED = 1
    LEFT = 2


class CameraHealth(IntEnum):
    UNSPECIFIED = 0
    OK = 1
    DARK = 2
    BLOCKED = 3
    FROZEN = 4
    MOVED = 5
    NO_SIGNAL = 6


class PaperStatus(IntEnum):
    UNSPECIFIED = 0
    ADEQUATE = 1
    NEAR_END = 2
    OUT = 3


class DrawerState(IntEnum):
    UNSPECIFIED = 0
    CLOSED = 1
    OPEN = 2


class DeviceKind(IntEnum):
    UNSPECIFIED = 0
    SCANNER = 1
    PRODUCE_SCALE = 2
    BAGGING_SCALE = 3
    PRINTER = 4
    CASH_DRAWER = 5
    CAMERA = 6
    POS = 7
    FUSION_LINK = 8
    VISION_LINK = 9


class PeripheralState(IntEnum):
    UNSPECIFIED = 0
    CONNECTED = 1
    DISCONNECTED = 2
    ERROR = 3


class Money(NamedTuple):
    """An amount in integer minor units of an ISO 4217 currency."""

    amount_minor: int
    currency_code: str = "USD"


# ---- POS payloads -------------------------------------------------------------------


@dataclass(slots=True)
class TransactionStarted:
    operator_id: str = ""
    self_checkout: bool = False
    kind: TransactionKind = TransactionKind.SALE


@dataclass(slots=True)
class ItemAdded:
    line_id: str
    gtin: str = ""
    plu: str = ""
    description: str = ""
    quantity: int = 1
    unit_price: Money | None = None
    extended_price: Money | None = None
    weight_mg: int = 0
    entry_method: EntryMethod = EntryMethod.SCANNED
    unit_of_measure: UnitOfMeasure = UnitOfMeasure.EACH
    barcode_data: str = ""


@dataclass(slots=True)
class ItemVoided:
    line_id: str
    operator_id: str = ""
    amount: Money | None = None


@dataclass(slots=True)
class QuantityChanged:
    line_id: str
    old_quantity: int
    new_quantity: int
    new_extended_price: Money | None = None


@dataclass(slots=True)
class PriceOverride:
    line_id: str
    original_unit_price: Money | None = None
    new_unit_price: Money | None = None
    operator_id: str = ""
    reason_code: str = ""


@dataclass(slots=True)
class DiscountApplied:
    line_id: str = ""
    amount: Money | None = None
    kind: DiscountKind = DiscountKind.UNSPECIFIED
    code: str = ""
    operator_id: str = ""


@dataclass(slots=True)
class TransactionSuspended:
    operator_id: str = ""


@dataclass(slots=True)
class TransactionResumed:
    operator_id: str = ""


@dataclass(slots=True)
class TenderStarted:
    total: Money | None = None


@dataclass(slots=True)
class TenderCompleted:
    tender_type: TenderType = TenderType.UNSPECIFIED
    amount: Money | None = None
    change: Money | None = None


@dataclass(slots=True)
class TransactionEnded:
    total: Money | None = None
    item_count: int = 0
    outcome: TransactionOutcome = TransactionOutcome.COMPLETED


@dataclass(slots=True)
class NoSaleDrawerOpen:
    operator_id: str = ""


@dataclass(slots=True)
class RefundIssued:
    line_id: str = ""
    gtin: str = ""
    amount: Money | None = None
    with_receipt: bool = False
    original_transaction_id: str = ""
    operator_id: str = ""


@dataclass(slots=True)
class OperatorSignOn:
    operator_id: str = ""


@dataclass(slots=True)
class OperatorSignOff:
    operator_id: str = ""


@dataclass(slots=True)
class AttendantOverride:
    attendant_id: str = ""
    alert_id: str = ""
    reason_code: str = ""


@dataclass(slots=True)
class BaggingSkipped:
    """The shopper chose "skip bagging" for a line (empty line_id: the last added line)."""

    line_id: str = ""
    attendant_id: str = ""


@dataclass(slots=True)
class OwnBagDeclared:
    """The shopper declared their own bag; the bagging weight that follows is the bag."""

    bag_weight_mg: int = 0


# ---- scanner and scales -------------------------------------------------------------


@dataclass(slots=True)
class BarcodeRead:
    scanner_id: str = ""
    raw_data: str = ""
    symbology_identifier: str = ""
    symbology: str = ""
    gtin: str = ""
    plu: str = ""
    label_weight_mg: int = 0
    label_price: Money | None = None
    check_digit_valid: bool = True
    variable_measure: bool = False
    variable_measure_item: str = ""
    gs1_elements: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class ScannerNoRead:
    scanner_id: str = ""
    detail: str = ""


@dataclass(slots=True)
class ScaleReading:
    scale_id: str = ""
    role: ScaleRole = ScaleRole.BAGGING
    status: ScaleStatus = ScaleStatus.STABLE
    weight_mg: int = 0
    net: bool = False


# ---- vision -------------------------------------------------------------------------


@dataclass(slots=True)
class ZoneCrossing:
    camera_id: str = ""
    track_id: str = ""
    zone: LaneZone = LaneZone.UNSPECIFIED
    direction: ZoneDirection = ZoneDirection.UNSPECIFIED


class LabelScore(NamedTuple):
    """One candidate label of a recognition, with its score in 0..1."""

    label: str
    score: float
    coarse_label: str = ""


@dataclass(slots=True)
class ItemRecognized:
    camera_id: str = ""
    track_id: str = ""
    zone: LaneZone = LaneZone.UNSPECIFIED
    labels: tuple[LabelScore, ...] = ()


@dataclass(slots=True)
class BarcodeSeen:
    camera_id: str = ""
    track_id: str = ""
    data: str = ""
    symbology: str = ""
    gtin: str = ""


@dataclass(slots=True)
class ZoneItemCount:
    camera_id: str = ""
    zone: LaneZone = LaneZone.UNSPECIFIED
    count: int = 0


@dataclass(slots=True)
class CameraHealthChanged:
    camera_id: str = ""
    health: CameraHealth = CameraHealth.UNSPECIFIED
    reason: str = ""


# ---- printer, drawer, device health -------------------------------------------------


@dataclass(slots=True)
class ReceiptPrinted:
    printer_id: str = ""
    document_kind: str = "receipt"


@dataclass(slots=True)
class PrinterStatusChanged:
    printer_id: str = ""
    reachable: bool = True
    offline: bool = False
    cover_open: bool = False
    paper: PaperStatus = PaperStatus.UNSPECIFIED
    error: bool = False


@dataclass(slots=True)
class DrawerStateChanged:
    drawer_id: str = ""
    state: DrawerState = DrawerState.UNSPECIFIED


@dataclass(slots=True)
class PeripheralHealthChanged:
    device_id: str = ""
    kind: DeviceKind = DeviceKind.UNSPECIFIED
    state: PeripheralState = PeripheralState.UNSPECIFIED
    detail: str = ""


@dataclass(slots=True)
class PeripheralParseError:
    """A peripheral sent bytes the agent could not parse; the driver carried on."""

    device_id: str = ""
    kind: DeviceKind = DeviceKind.UNSPECIFIED
    offset: int = 0
    raw_hex: str = ""
    raw_length: int = 0
    reason: str = ""


Payload = (
    TransactionStarted
    | ItemAdded
    | ItemVoided
    | QuantityChanged
    | PriceOverride
    | DiscountApplied
    | TransactionSuspended
    | TransactionResumed
    | TenderStarted
    | TenderCompleted
    | TransactionEnded
    | NoSaleDrawerOpen
    | RefundIssued
    | OperatorSignOn
    | OperatorSignOff
    | AttendantOverride
    | BaggingSkipped
    | OwnBagDeclared
    | BarcodeRead
    | ScannerNoRead
    | ScaleReading
    | ZoneCrossing
    | ItemRecognized
    | BarcodeSeen
    | ZoneItemCount
    | CameraHealthChanged
    | ReceiptPrinted
    | PrinterStatusChanged
    | DrawerStateChanged
    | PeripheralHealthChanged
    | PeripheralParseError
)

VISION_PAYLOADS = (ZoneCrossing, ItemRecognized, BarcodeSeen, ZoneItemCount, CameraHealthChanged)

# LaneEvent.problem before anything checked the event (see fusion.validation.validate_event).
UNCHECKED: tuple[str, str] = ("", "unchecked")


@dataclass(slots=True)
class LaneEvent:
    """One thing that happened at a lane, stamped by the lane agent (lane time in ms)."""

    event_id: str
    store_id: str
    lane_id: str
    sequence: int
    lane_time_ms: int
    payload: Payload | None
    transaction_id: str = ""
    source_device_id: str = ""
    # The first (field, problem) the shared validator found when the event was decoded from
    # protobuf, None when it found none, UNCHECKED for events built in process (and for
    # copies made with dataclasses.replace, whose fields may differ from what was checked).
    problem: tuple[str, str] | None = field(
        default=UNCHECKED, init=False, compare=False, repr=False
    )

    @property
    def lane_key(self) -> tuple[str, str]:
        """The (store_id, lane_id) pair the event belongs to."""
        return (self.store_id, self.lane_id)
