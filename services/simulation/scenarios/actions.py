"""Timed lane-level actions: what the shopper, the POS and each lane device do.

Every action is a frozen dataclass with ``payloads()``: the LaneEvent payloads the lane's
sources would report for it, each with its offset in ms from the action's time and the
reporting device. See the package docstring for the format.
"""

from __future__ import annotations

from dataclasses import dataclass

from lanesight.fusion import events as ev
from lanesight.fusion.events import LaneZone
from lanesight.simulation.scenarios.barcodes import decode_scan

CART, SCAN, BAGGING = LaneZone.CART, LaneZone.SCAN, LaneZone.BAGGING

Emitted = list[tuple[int, ev.Payload, str]]


def _usd(amount_minor: int) -> ev.Money:
    return ev.Money(amount_minor, "USD")


# ---- POS ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StartTransaction:
    """The POS opens a transaction."""

    transaction_id: str
    self_checkout: bool = True
    operator_id: str = ""
    kind: ev.TransactionKind = ev.TransactionKind.SALE

    def payloads(self) -> Emitted:
        return [(0, ev.TransactionStarted(self.operator_id, self.self_checkout, self.kind), "pos")]


@dataclass(frozen=True)
class AddItem:
    """The POS adds a line (after a scan, a PLU lookup or a price-embedded label)."""

    line_id: str
    description: str
    unit_price_minor: int
    extended_price_minor: int
    quantity: int = 1
    gtin: str = ""
    plu: str = ""
    weight_mg: int = 0
    entry_method: ev.EntryMethod = ev.EntryMethod.SCANNED
    unit_of_measure: ev.UnitOfMeasure = ev.UnitOfMeasure.EACH
    barcode_data: str = ""
    currency_code: str = "USD"

    def payloads(self) -> Emitted:
        money = _usd if self.currency_code == "USD" else self._money
        return [
            (
                0,
                ev.ItemAdded(
                    line_id=self.line_id,
                    gtin=self.gtin,
                    plu=self.plu,
                    description=self.description,
                    quantity=self.quantity,
                    unit_price=money(self.unit_price_minor),
                    extended_price=money(self.extended_price_minor),
                    weight_mg=self.weight_mg,
                    entry_method=self.entry_method,
                    unit_of_measure=self.unit_of_measure,
                    barcode_data=self.barcode_data,
                ),
                "pos",
            )
        ]

    def _money(self, amount_minor: int) -> ev.Money:
        return ev.Money(amount_minor, self.currency_code)


@dataclass(frozen=True)
class SkipBagging:
    """The shopper presses "skip bagging" for a line (empty: the last line)."""

    line_id: str = ""

    def payloads(self) -> Emitted:
        return [(0, ev.BaggingSkipped(self.line_id), "pos")]


@dataclass(frozen=True)
class DeclareOwnBag:
    """The shopper tells the lane they brought their own bag."""

    bag_weight_mg: int = 0

    def payloads(self) -> Emitted:
        return [(0, ev.OwnBagDeclared(self.bag_weight_mg), "pos")]


@dataclass(frozen=True)
class VoidItem:
    """The POS voids a line."""

    line_id: str
    amount_minor: int
    operator_id: str = ""

    def payloads(self) -> Emitted:
        return [(0, ev.ItemVoided(self.line_id, self.operator_id, _usd(self.amount_minor)), "pos")]


@dataclass(frozen=True)
class ChangeQuantity:
    """The POS changes a line's quantity (the quantity key)."""

    line_id: str
    old_quantity: int
    new_quantity: int
    new_extended_price_minor: int

    def payloads(self) -> Emitted:
        payload = ev.QuantityChanged(
            self.line_id, self.old_quantity, self.new_quantity, _usd(self.new_extended_price_minor)
        )
        return [(0, payload, "pos")]


@dataclass(frozen=True)
class OverridePrice:
    """An operator overrides a line's unit price."""

    line_id: str
    original_unit_price_minor: int
    new_unit_price_minor: int
    operator_id: str = ""
    reason_code: str = "PRICE_MATCH"

    def payloads(self) -> Emitted:
        payload = ev.PriceOverride(
            self.line_id,
            _usd(self.original_unit_price_minor),
            _usd(self.new_unit_price_minor),
            self.operator_id,
            self.reason_code,
        )
        return [(0, payload, "pos")]


@dataclass(frozen=True)
class StartTender:
    """Payment starts."""

    total_minor: int

    def payloads(self) -> Emitted:
        return [(0, ev.TenderStarted(_usd(self.total_minor)), "pos")]


@dataclass(frozen=True)
class CompleteTender:
    """A payment is accepted."""

    amount_minor: int
    tender_type: ev.TenderType = ev.TenderType.CARD
    change_minor: int = 0

    def payloads(self) -> Emitted:
        payload = ev.TenderCompleted(
            self.tender_type, _usd(self.amount_minor), _usd(self.change_minor)
        )
        return [(0, payload, "pos")]


@dataclass(frozen=True)
class EndTransaction:
    """The POS closes the transaction."""

    total_minor: int
    item_count: int
    outcome: ev.TransactionOutcome = ev.TransactionOutcome.COMPLETED

    def payloads(self) -> Emitted:
        payload = ev.TransactionEnded(_usd(self.total_minor), self.item_count, self.outcome)
        return [(0, payload, "pos")]


@dataclass(frozen=True)
class OpenDrawerNoSale:
    """The operator opens the drawer without a sale (the drawer then opens and closes)."""

    operator_id: str
    open_ms: int = 4_000

    def payloads(self) -> Emitted:
        return [
            (0, ev.NoSaleDrawerOpen(self.operator_id), "pos"),
            (150, ev.DrawerStateChanged("drawer-1", ev.DrawerState.OPEN), "drawer-1"),
            (self.open_ms, ev.DrawerStateChanged("drawer-1", ev.DrawerState.CLOSED), "drawer-1"),
        ]


@dataclass(frozen=True)
class IssueRefund:
    """The POS refunds a returned item."""

    line_id: str
    amount_minor: int
    with_receipt: bool
    gtin: str = ""
    operator_id: str = ""
    original_transaction_id: str = ""

    def payloads(self) -> Emitted:
        payload = ev.RefundIssued(
            self.line_id,
            self.gtin,
            _usd(self.amount_minor),
            self.with_receipt,
            self.original_transaction_id,
            self.operator_id,
        )
        return [(0, payload, "pos")]


# ---- scanner and scales -------------------------------------------------------------


@dataclass(frozen=True)
class ScanBarcode:
    """The scanner reads a barcode; ``data`` is exactly what it sends (AIM prefix + data)."""

    data: str
    scanner_id: str = "scanner-1"

    def payloads(self) -> Emitted:
        return [(0, decode_scan(self.data, self.scanner_id), self.scanner_id)]


@dataclass(frozen=True)
class ScannerNoRead:
    """The scanner saw a label it could not decode."""

    scanner_id: str = "scanner-1"

    def payloads(self) -> Emitted:
        return [(0, ev.ScannerNoRead(self.scanner_id, "no read"), self.scanner_id)]


@dataclass(frozen=True)
class PlaceOnProduceScale:
    """An item is put on the produce scale: motion, then a stable weight."""

    weight_mg: int
    settle_ms: int = 500
    scale_id: str = "produce-scale-1"

    def payloads(self) -> Emitted:
        role = ev.ScaleRole.PRODUCE
        return [
            (0, ev.ScaleReading(self.scale_id, role, ev.ScaleStatus.IN_MOTION, 0), self.scale_id),
            (
                self.settle_ms,
                ev.ScaleReading(self.scale_id, role, ev.ScaleStatus.STABLE, self.weight_mg),
                self.scale_id,
            ),
        ]


@dataclass(frozen=True)
class ClearProduceScale:
    """The produce scale is emptied and reads zero."""

    scale_id: str = "produce-scale-1"

    def payloads(self) -> Emitted:
        reading = ev.ScaleReading(self.scale_id, ev.ScaleRole.PRODUCE, ev.ScaleStatus.ZERO, 0)
        return [(0, reading, self.scale_id)]


@dataclass(frozen=True)
class ProduceScaleFault:
    """The produce scale reports a fault status (e.g. NOT_ZEROED) until it is zeroed."""

    status: ev.ScaleStatus = ev.ScaleStatus.NOT_ZEROED
    scale_id: str = "produce-scale-1"

    def payloads(self) -> Emitted:
        return [
            (0, ev.ScaleReading(self.scale_id, ev.ScaleRole.PRODUCE, self.status, 0), self.scale_id)
        ]


@dataclass(frozen=True)
class PlaceOnBaggingScale:
    """Something is put down in the bagging area; the scale settles at ``total_weight_mg``."""

    total_weight_mg: int
    settle_ms: int = 400
    scale_id: str = "bagging-scale-1"
    # What the settled reading says (UNDER_ZERO for a few grams below an emptied scale).
    status: ev.ScaleStatus = ev.ScaleStatus.STABLE

    def payloads(self) -> Emitted:
        role = ev.ScaleRole.BAGGING
        return [
            (0, ev.ScaleReading(self.scale_id, role, ev.ScaleStatus.IN_MOTION, 0), self.scale_id),
            (
                self.settle_ms,
                ev.ScaleReading(self.scale_id, role, self.status, self.total_weight_mg),
                self.scale_id,
            ),
        ]


@dataclass(frozen=True)
class RemoveFromBaggingScale(PlaceOnBaggingScale):
    """Something is lifted out of the bagging area; the scale settles at ``total_weight_mg``."""


# ---- vision -------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemCrossesZones:
    """An item (true identity ``label``) moves between camera zones.

    ``recognized`` is what the vision service reports for it in ``to_zone`` (top-k
    (label, score) pairs, best first; empty when nothing was recognised). ``from_zone``
    UNSPECIFIED means the item appears in ``to_zone`` without leaving a zone; ``to_zone``
    UNSPECIFIED means it leaves ``from_zone`` and the camera's view.
    """

    track_id: str
    label: str
    from_zone: LaneZone
    to_zone: LaneZone
    recognized: tuple[tuple[str, float], ...] = ()
    camera_id: str = "camera-1"

    def payloads(self) -> Emitted:
        out: Emitted = []
        if self.from_zone is not LaneZone.UNSPECIFIED:
            left = ev.ZoneCrossing(
                self.camera_id, self.track_id, self.from_zone, ev.ZoneDirection.LEFT
            )
            out.append((0, left, self.camera_id))
        if self.to_zone is LaneZone.UNSPECIFIED:
            return out
        entered = ev.ZoneCrossing(
            self.camera_id, self.track_id, self.to_zone, ev.ZoneDirection.ENTERED
        )
        out.append((40, entered, self.camera_id))
        if self.recognized:
            labels = tuple(ev.LabelScore(label, score) for label, score in self.recognized)
            rec = ev.ItemRecognized(self.camera_id, self.track_id, self.to_zone, labels)
            out.append((120, rec, self.camera_id))
        return out


@dataclass(frozen=True)
class CartItemCount:
    """Vision counts the items in the cart zone."""

    count: int
    camera_id: str = "camera-1"

    def payloads(self) -> Emitted:
        return [(0, ev.ZoneItemCount(self.camera_id, LaneZone.CART, self.count), self.camera_id)]


@dataclass(frozen=True)
class BarcodeInView:
    """Vision decodes a barcode on a tracked item."""

    track_id: str
    data: str
    gtin: str = ""
    camera_id: str = "camera-1"

    def payloads(self) -> Emitted:
        seen = ev.BarcodeSeen(self.camera_id, self.track_id, self.data, "EAN-13", self.gtin)
        return [(0, seen, self.camera_id)]


@dataclass(frozen=True)
class CameraHealthChange:
    """The camera's picture changes health (blocked, dark, frozen, ok...)."""

    health: ev.CameraHealth
    reason: str = ""
    camera_id: str = "camera-1"

    def payloads(self) -> Emitted:
        change = ev.CameraHealthChanged(self.camera_id, self.health, self.reason)
        return [(0, change, self.camera_id)]


# ---- printer, drawer, device health -------------------------------------------------


@dataclass(frozen=True)
class PrintReceipt:
    """The printer prints a receipt (or an audit slip)."""

    document_kind: str = "receipt"
    printer_id: str = "printer-1"

    def payloads(self) -> Emitted:
        return [(0, ev.ReceiptPrinted(self.printer_id, self.document_kind), self.printer_id)]


@dataclass(frozen=True)
class PrinterStatus:
    """The printer reports its status (paper low or out, cover open)."""

    paper: ev.PaperStatus = ev.PaperStatus.ADEQUATE
    cover_open: bool = False
    printer_id: str = "printer-1"

    def payloads(self) -> Emitted:
        status = ev.PrinterStatusChanged(
            self.printer_id, True, False, self.cover_open, self.paper, False
        )
        return [(0, status, self.printer_id)]


@dataclass(frozen=True)
class DrawerChange:
    """The cash drawer opens or closes (e.g. for change at a cash tender)."""

    state: ev.DrawerState
    drawer_id: str = "drawer-1"

    def payloads(self) -> Emitted:
        return [(0, ev.DrawerStateChanged(self.drawer_id, self.state), self.drawer_id)]


@dataclass(frozen=True)
class PeripheralHealth:
    """A peripheral or link connects, disconnects or fails."""

    device_id: str
    kind: ev.DeviceKind
    state: ev.PeripheralState
    detail: str = ""

    def payloads(self) -> Emitted:
        change = ev.PeripheralHealthChanged(self.device_id, self.kind, self.state, self.detail)
        return [(0, change, "agent")]


Action = (
    StartTransaction
    | AddItem
    | VoidItem
    | ChangeQuantity
    | OverridePrice
    | StartTender
    | CompleteTender
    | EndTransaction
    | OpenDrawerNoSale
    | IssueRefund
    | ScanBarcode
    | ScannerNoRead
    | PlaceOnProduceScale
    | ClearProduceScale
    | ProduceScaleFault
    | PlaceOnBaggingScale
    | RemoveFromBaggingScale
    | ItemCrossesZones
    | CartItemCount
    | BarcodeInView
    | CameraHealthChange
    | PrintReceipt
    | PrinterStatus
    | DrawerChange
    | PeripheralHealth
)
