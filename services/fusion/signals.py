"""What a rule emits (a Signal), how a shopper can correct it, and the neutral wording."""

from __future__ import annotations

from dataclasses import dataclass, field

from lanesight.fusion.alerts import AlertType, ItemRef, PosExceptionKind

# Rules about an item moving toward the bag without a matching scan: signals of these
# types close together in time are about the same item and merge into one alert.
PHYSICAL_TYPES = frozenset(
    {
        AlertType.MISSED_SCAN,
        AlertType.UNSCANNED_ITEM_IN_BAGGING,
        AlertType.QUANTITY_MISMATCH,
    }
)


@dataclass(slots=True)
class Correction:
    """How the shopper can fix an alert at the lane before anyone comes.

    kind: "scan_item" (a new line for the alerted item: its unit weighs low..high, or
    its catalog labels are among ``labels`` as the camera saw the item), "any_scan" (any
    new line; only where nothing is known of the item), "weight_back" (the bagging weight
    returns by about delta), "quantity" (the line's quantity reaches ``units``). Only an
    action that matches the alerted item corrects it: the shopper's next, unrelated scan
    does not.
    """

    kind: str
    low_mg: int = 0
    high_mg: int = 0
    line_id: str = ""
    units: int = 0
    labels: tuple = ()


@dataclass(slots=True)
class Signal:
    """One rule's finding before it becomes (or merges into) an alert."""

    type: AlertType
    confidence: float
    amount_minor: int
    currency: str
    event_ids: list[str]
    at_ms: int
    item: ItemRef = field(default_factory=ItemRef)
    item_keys: set[str] = field(default_factory=set)
    detail: dict[str, object] = field(default_factory=dict)
    pos_kind: PosExceptionKind = PosExceptionKind.UNSPECIFIED
    correction: Correction | None = None
    # The POS transaction, for signals raised outside an open one (a no-sale, a refund).
    transaction_id: str = ""


def clamp(value: float, low: float = 0.0, high: float = 1.0) -> float:
    """value limited to [low, high]."""
    return low if value < low else high if value > high else value


def grams(weight_mg: int) -> str:
    """A weight for people: '1.25 kg' or '340 g'."""
    if abs(weight_mg) >= 1_000_000:
        return f"{weight_mg / 1_000_000:.2f} kg"
    return f"{round(weight_mg / 1000)} g"


def money(amount_minor: int, currency: str = "USD") -> str:
    """An amount for people: '$4.99' for USD, '4.99 EUR' otherwise."""
    text = f"{amount_minor / 100:.2f}"
    return f"${text}" if currency == "USD" else f"{text} {currency}"


_POS_REASONS = {
    PosExceptionKind.VOID_AFTER_TENDER: (
        "A line was voided after payment started",
        "Review the void with the operator before the transaction closes.",
    ),
    PosExceptionKind.REFUND_WITHOUT_RECEIPT: (
        "A refund was given without a receipt",
        "Review the refund and the returned item.",
    ),
    PosExceptionKind.NO_SALE_DRAWER_OPEN: (
        "The cash drawer was opened without a sale",
        "Check the reason for the drawer opening with the operator.",
    ),
    PosExceptionKind.LARGE_PRICE_OVERRIDE: (
        "A large price override was entered",
        "Review the override and its reason code.",
    ),
    PosExceptionKind.EXCESSIVE_VOIDS: (
        "More voids than usual were entered by one operator",
        "Review recent voids with the operator.",
    ),
}


def wording(signal: Signal) -> tuple[str, str]:
    """A short neutral reason and a suggested action; never an accusation."""
    d = signal.detail
    name = signal.item.description
    t = signal.type
    if t is AlertType.MISSED_SCAN:
        return (
            "Item may not have scanned — please check the last item",
            "Rescan the last item placed in the bagging area if it is not on the receipt.",
        )
    if t is AlertType.UNSCANNED_ITEM_IN_BAGGING:
        return (
            "An item in the bagging area may not have scanned"
            + (f" (about {grams(int(d['delta_mg']))})" if "delta_mg" in d else ""),
            "Please scan the item you placed in the bagging area.",
        )
    if t is AlertType.ITEM_REMOVED_FROM_BAGGING:
        return (
            "An item may have been taken out of the bagging area" + (f" ({name})" if name else ""),
            "Please return the item to the bagging area, or ask for help to remove it.",
        )
    if t is AlertType.WEIGHT_MISMATCH:
        return (
            f"The bagged weight does not match {name or 'the item scanned'}"
            f" (expected about {grams(int(d.get('expected_mg', 0)))},"
            f" measured {grams(int(d.get('delta_mg', 0)))})",
            "Check that the item in the bag is the item that was scanned.",
        )
    if t is AlertType.ITEM_MISMATCH:
        return (
            f"The item scanned may not match the item seen at the scanner"
            f" (scanned: {name or 'unknown'}; looks like: {d.get('seen', 'another item')})",
            "Check the item against its barcode and rescan if needed.",
        )
    if t is AlertType.WRONG_PRODUCE_PLU:
        return (
            f"The produce code entered may not match the item on the scale"
            f" (entered: {name or 'unknown'}; looks like: {d.get('seen', 'another item')})",
            "Check the produce code and weigh the item again if needed.",
        )
    if t is AlertType.PRICE_EMBEDDED_LABEL_MISMATCH:
        return (
            "The price label may not match the item"
            f" (label {money(int(d.get('label_minor', 0)), signal.currency)},"
            f" expected about {money(int(d.get('expected_minor', 0)), signal.currency)})",
            "Check the label against the item and its weight.",
        )
    if t is AlertType.QUANTITY_MISMATCH:
        return (
            "More items may have been bagged than scanned"
            f" (scanned {d.get('scanned', 1)}, bagged about {d.get('bagged', '?')})",
            "Please scan each item, or ask for the quantity to be changed.",
        )
    if t is AlertType.ITEM_LEFT_IN_CART:
        return (
            "An item may still be in the cart or basket",
            "Please check the cart or basket for items not yet scanned.",
        )
    if t is AlertType.CAMERA_TAMPER:
        return (
            f"The lane camera view is {d.get('health', 'unclear')}",
            "Check that nothing covers the camera and the lane is well lit.",
        )
    if t is AlertType.POS_EXCEPTION:
        return _POS_REASONS.get(signal.pos_kind, ("A POS exception was recorded", "Review it."))
    return ("Please check the lane", "Review the lane.")
