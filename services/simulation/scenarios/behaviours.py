"""Loss behaviours, honest quirks and POS acts, written with the transaction builder."""

from __future__ import annotations

from collections.abc import Callable

from lanesight.fusion import events as ev
from lanesight.fusion.alerts import AlertType, PosExceptionKind
from lanesight.fusion.catalog import CatalogItem
from lanesight.simulation.scenarios.actions import (
    BAGGING,
    CART,
    SCAN,
    AddItem,
    CameraHealthChange,
    ClearProduceScale,
    EndTransaction,
    IssueRefund,
    OpenDrawerNoSale,
    OverridePrice,
    ProduceScaleFault,
    ScanBarcode,
    StartTransaction,
    VoidItem,
)
from lanesight.simulation.scenarios.barcodes import us_price_embedded
from lanesight.simulation.scenarios.basket import (
    UNSPECIFIED_ZONE,
    BasketItem,
    TransactionBuilder,
    price_minor,
)


def _dearer(items: list[CatalogItem], than: int) -> list[CatalogItem]:
    return [i for i in items if i.price_minor() > than]


def stage_loss(tb: TransactionBuilder, behaviour: str, basket: list[BasketItem]) -> None:
    """Stage one loss behaviour in the middle of the basket."""
    rng = tb.rng
    cat = tb.cat
    if behaviour in ("pass_around", "sweethearting_pass_around"):
        b = tb.make_basket_item(rng.choice(cat.packaged + cat.produce_each))
        tb.cart_left += 1
        tb.wait(1000, 3000)
        tb.cart_left -= 1
        via_scan = rng.random() < 0.5 or behaviour == "sweethearting_pass_around"
        if via_scan:
            tb.see(b, b.track_id, CART, SCAN)
            tb.wait(300, 900)
            tb.see(b, b.track_id, SCAN, BAGGING)
        else:
            tb.see(b, b.track_id, CART, BAGGING)
        tb.count_cart()
        tb.stage(
            AlertType.MISSED_SCAN,
            b.item,
            b.item.price_minor() * b.quantity,
            also=frozenset({AlertType.UNSCANNED_ITEM_IN_BAGGING, AlertType.QUANTITY_MISMATCH}),
        )
        tb.t += 100
        tb.bag(b.weight_mg * b.quantity)
    elif behaviour == "bag_without_scanning":
        # Out of the camera's zones (straight from a basket into a bag).
        b = tb.make_basket_item(rng.choice(cat.packaged + cat.general))
        tb.wait(1500, 4000)
        tb.stage(
            AlertType.UNSCANNED_ITEM_IN_BAGGING,
            b.item,
            b.item.price_minor(),
            also=frozenset({AlertType.MISSED_SCAN, AlertType.QUANTITY_MISMATCH}),
        )
        tb.bag(b.weight_mg)
    elif behaviour == "item_removed_from_bag":
        if not tb.bagged:
            tb.honest_item(tb.make_basket_item(rng.choice(cat.packaged)))
        b = rng.choice(tb.bagged)
        tb.wait(2000, 5000)
        tb.see(b, b.track_id, BAGGING, CART)
        weight = b.weight_mg * (1 if b.item.sold_by_weight else b.quantity)
        tb.stage(
            AlertType.ITEM_REMOVED_FROM_BAGGING,
            b.item,
            b.item.price_minor() * b.quantity,
            also=frozenset({AlertType.ITEM_LEFT_IN_CART}),
        )
        tb.unbag(weight)
    elif behaviour == "weight_switch":
        cheap = min(cat.general, key=lambda i: i.price_minor())
        dear = rng.choice([i for i in cat.general if i.max_weight_mg > 3 * cheap.max_weight_mg])
        b = tb.make_basket_item(dear)
        tb.cart_left += 1
        tb.wait(1000, 3000)
        tb.leave_cart(b)
        tb.wait(300, 900)
        tb.charge(b, item=cheap)
        tb.wait(400, 1500)
        tb.see(b, b.track_id, SCAN, BAGGING)
        tb.stage(
            AlertType.WEIGHT_MISMATCH,
            dear,
            dear.price_minor() - cheap.price_minor(),
            also=frozenset({AlertType.ITEM_MISMATCH, AlertType.UNSCANNED_ITEM_IN_BAGGING}),
        )
        tb.bag(b.weight_mg)
    elif behaviour == "barcode_switch":
        cheap = min(cat.packaged, key=lambda i: i.price_minor())
        dear = rng.choice(_dearer(cat.packaged, cheap.price_minor() + 100))
        b = tb.make_basket_item(dear)
        tb.cart_left += 1
        tb.wait(1000, 3000)
        tb.leave_cart(b)
        tb.wait(300, 900)
        tb.charge(b, item=cheap)
        tb.stage(
            AlertType.ITEM_MISMATCH,
            dear,
            dear.price_minor() - cheap.price_minor(),
            at_ms=tb.last_added_at,
            also=frozenset({AlertType.WEIGHT_MISMATCH}),
        )
        tb.wait(400, 1500)
        tb.see(b, b.track_id, SCAN, BAGGING)
        tb.bag(b.weight_mg)
    elif behaviour == "wrong_produce_plu":
        cheap = min(cat.produce_kg, key=lambda i: price_minor(i.price_per_kg))
        dear = rng.choice(_dearer(cat.produce_kg, 0))
        while price_minor(dear.price_per_kg) < price_minor(cheap.price_per_kg) * 2:
            dear = rng.choice(cat.produce_kg)
        b = tb.make_basket_item(dear)
        tb.cart_left += 1
        tb.wait(1000, 3000)
        tb.leave_cart(b)
        tb.wait(300, 900)
        diff = (price_minor(dear.price_per_kg) - price_minor(cheap.price_per_kg)) * b.weight_mg
        tb.charge(b, item=cheap)
        tb.stage(
            AlertType.WRONG_PRODUCE_PLU,
            dear,
            diff // 1_000_000,
            at_ms=tb.last_added_at,
            also=frozenset({AlertType.ITEM_MISMATCH}),
        )
        tb.wait(400, 1500)
        tb.see(b, b.track_id, SCAN, BAGGING)
        tb.bag(b.weight_mg)
    elif behaviour == "price_label_swap":
        meat = max(cat.meat, key=lambda i: price_minor(i.price_per_kg))
        actual = rng.randint(520_000, 700_000)
        label_weight = rng.randint(200_000, 300_000)
        per_kg = price_minor(meat.price_per_kg)
        label_price = per_kg * label_weight // 1_000_000
        tb.wait(1000, 3000)
        track = tb.new_track()
        b = BasketItem(meat, 1, actual, track)
        tb.see(b, track, CART, SCAN)
        data = us_price_embedded(meat.plu, label_price)
        tb.do(ScanBarcode(data), rng.randint(100, 500))
        line = tb.next_line()
        tb.do(
            AddItem(
                line,
                meat.description,
                label_price,
                label_price,
                plu=meat.plu,
                entry_method=ev.EntryMethod.PRICE_EMBEDDED,
                barcode_data=data[3:],
            ),
            rng.randint(500, 1500),
        )
        tb.total_minor += label_price
        tb.items_charged += 1
        tb.see(b, track, SCAN, BAGGING)
        tb.stage(
            AlertType.PRICE_EMBEDDED_LABEL_MISMATCH,
            meat,
            per_kg * actual // 1_000_000 - label_price,
            also=frozenset({AlertType.WEIGHT_MISMATCH}),
        )
        tb.bag(actual + rng.randint(10_000, 25_000))
    elif behaviour == "scan_one_of_several":
        item = rng.choice([i for i in cat.packaged if i.max_weight_mg < 1_200_000])
        units = rng.randint(2, 3)
        b = tb.make_basket_item(item)
        tb.cart_left += units
        tb.wait(1000, 3000)
        tb.leave_cart(b, units)
        tb.wait(300, 900)
        tb.charge(BasketItem(item, 1, b.weight_mg, b.track_id))
        tb.wait(400, 1500)
        tb.see(b, b.track_id, SCAN, BAGGING)
        tb.stage(
            AlertType.QUANTITY_MISMATCH,
            item,
            item.price_minor() * (units - 1),
            also=frozenset(
                {
                    AlertType.MISSED_SCAN,
                    AlertType.UNSCANNED_ITEM_IN_BAGGING,
                    AlertType.WEIGHT_MISMATCH,
                }
            ),
        )
        tb.bag(b.weight_mg * units)
    elif behaviour == "camera_blocked":
        tb.wait(500, 2000)
        tb.do(CameraHealthChange(ev.CameraHealth.BLOCKED, "low detail"))
        tb.stage(AlertType.CAMERA_TAMPER, None, 0)
        tb.vision_up = False
        for _ in range(rng.randint(1, 3)):
            tb.honest_item(tb.make_basket_item(rng.choice(cat.packaged)))
        tb.wait(2000, 6000)
        tb.do(CameraHealthChange(ev.CameraHealth.OK, ""))
        tb.vision_up = True


def honest_variation(tb: TransactionBuilder, b: BasketItem) -> None:
    """An honest item, sometimes with an honest quirk around it."""
    rng = tb.rng
    roll = rng.random()
    tb.honest_item(b)
    if not tb.has_scale or b.item.skip_bagging:
        if roll < 0.01 and tb.sc.behaviour == "honest" and not tb.sc.self_checkout:
            _honest_void(tb, b)
        return
    if roll < 0.04:
        # Lift a bag to make room, then put it back.
        tb.sc.faults.append("lift_and_replace")
        weight = b.weight_mg * (1 if b.item.sold_by_weight else b.quantity)
        tb.wait(500, 1500)
        tb.unbag(weight)
        tb.wait(600, 1800)
        tb.bag(weight)
    elif roll < 0.07 and tb.sc.behaviour == "honest":
        _honest_void(tb, b)
    elif roll < 0.09 and tb.vision_up:
        tb.sc.faults.append("camera_glitch")
        tb.do(CameraHealthChange(ev.CameraHealth.DARK, "flicker"), rng.randint(300, 900))
        tb.do(CameraHealthChange(ev.CameraHealth.OK, ""))
    elif roll < 0.10:
        tb.sc.faults.append("produce_scale_not_zeroed")
        tb.do(ProduceScaleFault(), 1500)
        tb.do(ClearProduceScale())


def _honest_void(tb: TransactionBuilder, b: BasketItem) -> None:
    """Change of mind: void the last line and take the item back out of the bag."""
    if tb.last_line is None:
        return
    tb.sc.faults.append("void_before_tender")
    line, price = tb.last_line
    tb.wait(800, 2500)
    tb.do(VoidItem(line, price, tb.operator_id), tb.rng.randint(500, 1500))
    tb.total_minor -= price
    tb.items_charged -= 1
    tb.last_line = None
    if tb.has_scale:
        tb.see(b, b.track_id, BAGGING, UNSPECIFIED_ZONE)  # handed back to the attendant
        tb.unbag(b.weight_mg * (1 if b.item.sold_by_weight else b.quantity))


def _no_sale(tb: TransactionBuilder) -> None:
    tb.stage(AlertType.POS_EXCEPTION, None, 0, pos_kind=PosExceptionKind.NO_SALE_DRAWER_OPEN)
    tb.do(OpenDrawerNoSale(tb.operator_id), 5000)


def _refund(tb: TransactionBuilder, with_receipt: bool) -> None:
    rng = tb.rng
    item = rng.choice(tb.cat.general + tb.cat.packaged)
    price = item.price_minor()
    tb.do(
        StartTransaction(tb.sc.transaction_id, False, tb.operator_id, ev.TransactionKind.RETURN),
        rng.randint(2000, 5000),
    )
    if not with_receipt:
        tb.stage(
            AlertType.POS_EXCEPTION,
            item,
            price,
            pos_kind=PosExceptionKind.REFUND_WITHOUT_RECEIPT,
        )
    else:
        tb.sc.faults.append("refund_with_receipt")
    tb.do(
        IssueRefund("1", price, with_receipt, item.gtins[0] if item.gtins else "", tb.operator_id),
        rng.randint(2000, 5000),
    )
    tb.do(EndTransaction(-price, 1), 2000)


def _override(tb: TransactionBuilder, large: bool) -> None:
    rng = tb.rng
    basket = tb.pick_basket(rng.randint(2, 6))
    tb.arrive(basket)
    for b in basket:
        tb.honest_item(b)
    dear = max(tb.cat.general, key=lambda i: i.price_minor())
    b = tb.make_basket_item(dear)
    tb.cart_left += 1
    tb.leave_cart(b)
    tb.wait(300, 900)
    line = tb.charge(b)
    tb.wait(1000, 3000)
    original = dear.price_minor()
    new = original // 5 if large else original - max(original // 10, 50)
    if large:
        tb.stage(
            AlertType.POS_EXCEPTION,
            dear,
            original - new,
            pos_kind=PosExceptionKind.LARGE_PRICE_OVERRIDE,
        )
    else:
        tb.sc.faults.append("small_price_override")
    tb.do(OverridePrice(line, original, new, tb.operator_id), 800)
    tb.total_minor -= original - new
    tb.see(b, b.track_id, SCAN, BAGGING)
    tb.pay()
    tb.finish()


# Behaviours only the camera can see: never staged while vision is down.
VISION_ONLY = frozenset(
    {"barcode_switch", "wrong_produce_plu", "item_left_in_cart", "camera_blocked", "pass_around"}
)

POS_ONLY: dict[str, Callable[[TransactionBuilder], None]] = {
    "no_sale": _no_sale,
    "refund_without_receipt": lambda tb: _refund(tb, False),
    "honest_refund": lambda tb: _refund(tb, True),
    "large_price_override": lambda tb: _override(tb, True),
    "honest_override": lambda tb: _override(tb, False),
}
