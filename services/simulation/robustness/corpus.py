"""An independent shopper corpus: its own stores, behaviour mix, timing and ground truth."""

from __future__ import annotations

import random

from lanesight.fusion import events as ev
from lanesight.fusion.alerts import AlertType as A
from lanesight.fusion.alerts import PosExceptionKind as K
from lanesight.simulation.robustness.labels import LabelSampler
from lanesight.simulation.robustness.stores import STORES, Store, StoreItem
from lanesight.simulation.robustness.stream import CAMERA, POS, Lane, Loss, Visit
from lanesight.simulation.robustness.visit import Shopper, Unit

Z = ev.LaneZone

SELF_CHECKOUT_LOSSES = (
    "missed_scan",
    "bagged_unscanned",
    "removed_from_bag",
    "weight_switch",
    "barcode_switch",
    "wrong_plu",
    "quantity",
    "left_in_cart",
    "camera_tamper",
    "price_label",
)
STAFFED_LOSSES = (
    "missed_scan",
    "barcode_switch",
    "wrong_plu",
    "left_in_cart",
    "camera_tamper",
    "void_after_tender",
    "refund_without_receipt",
    "no_sale",
    "large_override",
)


def _weights_differ(actual_mg: int, charged: StoreItem) -> bool:
    """True when the bagging scale could tell the goods from the charged item at all."""
    item = charged.item
    margin = max(20_000, int(charged.nominal_mg * 0.06))
    return not item.min_weight_mg - margin <= actual_mg <= item.max_weight_mg + margin


def _loss(shopper: Shopper, kind: A, also: set[A], evidence: bool = True, **kw) -> None:
    visit = shopper.visit
    visit.losses.append(
        Loss(kind, visit.behaviour, shopper.t, frozenset(also | {kind}), evidence, **kw)
    )


def _more_of(s: Shopper, unit: Unit) -> set[A]:
    """Quantity mismatch describes an unscanned item only if the same item was scanned."""
    return {A.QUANTITY_MISMATCH} if unit.si.item.sku in s.rung_skus else set()


def _pick_basket(rng: random.Random, store: Store, shopper: Shopper, size: int) -> list[Unit]:
    packs, kg, each = store.of_kind("pack"), store.of_kind("kg"), store.of_kind("each")
    basket = []
    for _ in range(size):
        roll = rng.random()
        if roll < 0.5:
            si = rng.choice(packs)
            count = 1 if rng.random() < 0.9 else rng.randint(2, 4)
        elif roll < 0.75:
            si, count = rng.choice(kg), 1
        elif roll < 0.95:
            si = rng.choice(each)
            count = 1 if rng.random() < 0.7 else rng.randint(2, 5)
        else:
            si, count = rng.choice(store.of_kind("deli")), 1
        basket.append(shopper.unit(si, count))
    return basket


def stage_loss(s: Shopper, behaviour: str, self_checkout: bool) -> None:
    """Stage one loss behaviour now, in the middle of the basket."""
    rng, store = s.rng, s.store
    seen = s.vision_up
    if behaviour == "missed_scan":
        unit = s.unit(rng.choice(store.of_kind("pack", "each")))
        s.cart.append(unit)
        s.wait(1_000, 4_000)
        s.take_from_cart(unit)
        s.wait(300, 1_200)
        also = {A.UNSCANNED_ITEM_IN_BAGGING} | _more_of(s, unit)
        _loss(s, A.MISSED_SCAN, also, seen, sku=unit.si.item.sku)
        s.t += rng.randint(200, 900)
        s.see(unit, unit.track, Z.SCAN, Z.BAGGING)
        s.t += rng.randint(100, 600)
        s.bag(unit.bagged_mg, "loss")
    elif behaviour == "bagged_unscanned":
        unit = s.unit(rng.choice(store.of_kind("pack")))
        s.wait(1_500, 5_000)
        if rng.random() < 0.5:
            s.see(unit, unit.track, Z.UNSPECIFIED, Z.BAGGING)  # straight from the basket
        also = {A.MISSED_SCAN} | _more_of(s, unit)
        _loss(s, A.UNSCANNED_ITEM_IN_BAGGING, also, sku=unit.si.item.sku)
        s.bag(unit.bagged_mg, "loss")
    elif behaviour == "removed_from_bag":
        if not s.bagged:
            s.honest_item(s.unit(rng.choice(store.of_kind("pack"))))
        line, unit = rng.choice(s.bagged)
        s.bagged.remove((line, unit))
        s.visit.loss_lines.add(line)
        s.wait(2_000, 7_000)
        s.see(unit, unit.track, Z.BAGGING, Z.CART)
        _loss(s, A.ITEM_REMOVED_FROM_BAGGING, {A.ITEM_LEFT_IN_CART})
        s.unbag(unit.bagged_mg, "loss")
    elif behaviour == "weight_switch":
        light = [si for si in store.of_kind("pack") if si.nominal_mg < 300_000]
        heavy = [si for si in store.of_kind("pack") if si.nominal_mg > 900_000]
        cheap = min(rng.sample(light, 3), key=lambda si: si.item.unit_price.amount_minor)
        unit = s.unit(rng.choice(heavy))
        s.cart.append(unit)
        s.wait(1_000, 4_000)
        s.take_from_cart(unit)
        s.wait(200, 1_200)
        line = s.ring(unit, as_item=cheap, count=1)
        _loss(s, A.WEIGHT_MISMATCH, {A.ITEM_MISMATCH, A.UNSCANNED_ITEM_IN_BAGGING})
        s.place_in_bag(unit, line, loss=True)
    elif behaviour == "barcode_switch":
        packs = store.of_kind("pack")
        floor = min(si.item.unit_price.amount_minor for si in packs) + 50
        dear = rng.choice([si for si in packs if si.item.unit_price.amount_minor >= floor])
        cheaper = [
            si
            for si in packs
            if si.item.unit_price.amount_minor + 50 <= dear.item.unit_price.amount_minor
            and si.nominal_mg < 3_000_000
        ]
        cheap = rng.choice(cheaper)
        unit = s.unit(dear)
        s.cart.append(unit)
        s.wait(1_000, 4_000)
        s.take_from_cart(unit)
        s.wait(200, 1_200)
        line = s.ring(unit, as_item=cheap, count=1)
        # Vision tells the items apart only if the model knows both: for an item it was
        # never taught (gum, rice) it names one of its classes anyway, often surely, so
        # a sure "milk" on a gum scan is what honest gum scans look like too.
        by_vision = (
            seen
            and s.sampler.has_class(dear.vision_label)
            and s.sampler.has_class(cheap.vision_label)
            and (dear.vision_label != cheap.vision_label)
        )
        by_weight = self_checkout and _weights_differ(unit.weight_mg, cheap)
        _loss(
            s,
            A.ITEM_MISMATCH,
            {A.WEIGHT_MISMATCH, A.UNSCANNED_ITEM_IN_BAGGING} if by_weight else set(),
            by_vision or by_weight,
            sku=dear.item.sku,
        )
        s.place_in_bag(unit, line, loss=True)
    elif behaviour == "wrong_plu":
        kg = store.of_kind("kg")
        dear = rng.choice(kg)
        cheaper = [
            si
            for si in kg
            if si.item.price_per_kg.amount_minor * 1.4 <= dear.item.price_per_kg.amount_minor
        ]
        if not cheaper:
            dear = max(kg, key=lambda si: si.item.price_per_kg.amount_minor)
            cheaper = [si for si in kg if si is not dear]
        cheap = rng.choice(cheaper)
        unit = s.unit(dear)
        s.cart.append(unit)
        s.wait(1_000, 4_000)
        s.take_from_cart(unit)
        s.wait(200, 1_200)
        line = s.ring(unit, as_item=cheap)
        evidence = seen and s.sampler.has_class(dear.vision_label)
        _loss(s, A.WRONG_PRODUCE_PLU, {A.ITEM_MISMATCH}, evidence, sku=dear.item.sku)
        s.place_in_bag(unit, line, loss=True)
    elif behaviour == "quantity":
        si = rng.choice([si for si in store.of_kind("pack") if si.nominal_mg < 1_200_000])
        units = rng.randint(2, 4)
        unit = s.unit(si, units)
        s.cart.append(unit)
        s.wait(1_000, 4_000)
        s.take_from_cart(unit)
        s.wait(200, 1_200)
        line = s.ring(unit, count=1)
        _loss(
            s,
            A.QUANTITY_MISMATCH,
            {A.MISSED_SCAN, A.UNSCANNED_ITEM_IN_BAGGING, A.WEIGHT_MISMATCH},
        )
        s.place_in_bag(unit, line, loss=True)
    elif behaviour == "camera_tamper":
        s.wait(500, 3_000)
        s.emit(ev.CameraHealthChanged(CAMERA, ev.CameraHealth.BLOCKED, "covered"), CAMERA)
        _loss(s, A.CAMERA_TAMPER, set())
        s.vision_up = False
        for _ in range(rng.randint(1, 3)):
            s.honest_item(s.unit(rng.choice(store.of_kind("pack"))))
        s.wait(1_000, 8_000)
        s.vision_up = True
        s.emit(ev.CameraHealthChanged(CAMERA, ev.CameraHealth.OK, ""), CAMERA)
    elif behaviour == "price_label":
        si = rng.choice(store.of_kind("deli"))
        unit = s.unit(si)
        s.cart.append(unit)
        s.wait(1_000, 4_000)
        s.take_from_cart(unit)
        s.wait(200, 1_200)
        per_kg = si.item.price_per_kg.amount_minor
        if rng.random() < 0.5:
            # A label printed for a lighter pack of the same item.
            label_weight = int(unit.weight_mg * rng.uniform(0.35, 0.6))
            label_price = per_kg * label_weight // 1_000_000
            evidence = self_checkout
            also = {A.WEIGHT_MISMATCH, A.UNSCANNED_ITEM_IN_BAGGING}
        else:
            # A cheaper item's label on this pack (its weight, a lower price).
            label_weight = unit.weight_mg
            label_price = per_kg * label_weight // 1_000_000 * rng.randint(35, 60) // 100
            evidence = True
            also = {A.WEIGHT_MISMATCH}
        line = s.scan_label(s.next_line(), si, label_price, label_weight)
        _loss(s, A.PRICE_EMBEDDED_LABEL_MISMATCH, also, evidence, sku=si.item.sku)
        s.place_in_bag(unit, line, loss=True)


def _honest_quirk(s: Shopper, line: str, unit: Unit) -> None:
    rng = s.rng
    roll = rng.random()
    if s.held is not None or (line, unit) not in s.bagged:
        return  # not in the bag (yet): nothing to lift, void or lean on
    if roll < 0.03 and s.has_scale:
        s.visit.quirks.append("lift_and_replace")
        s.wait(500, 2_000)
        s.unbag(unit.bagged_mg, f"lift:{line}")
        s.wait(500, 3_000)
        s.bag(unit.bagged_mg, f"bag:{line}")
    elif roll < 0.045 and s.last_line is not None and s.visit.behaviour == "honest":
        s.visit.quirks.append("void")
        last, price = s.last_line
        s.wait(700, 3_000)
        s.emit(ev.ItemVoided(last, s.operator_id, s.money(price)), POS, f"void:{last}")
        s.total_minor -= price
        s.line_count -= 1
        s.last_line = None
        s.wait(500, 2_500)
        s.see(unit, unit.track, Z.BAGGING, Z.UNSPECIFIED)
        s.unbag(unit.bagged_mg, f"unbag:{last}")
        s.bagged = [(ln, u) for ln, u in s.bagged if ln != last]
    elif roll < 0.08:
        s.visit.quirks.append("coupon")
        amount = rng.choice((50, 100, 150))
        coupon = ev.DiscountApplied("", s.money(amount), ev.DiscountKind.COUPON, "C-7")
        s.emit(coupon, POS, "coupon", rng.randint(400, 1_200))
        s.total_minor -= amount
    elif roll < 0.12 and s.has_scale:
        # A hand or an elbow on the bagging area: the scale moves and settles back.
        s.visit.quirks.append("lean")
        s.wait(300, 2_000)
        s.settle("lean")
    elif roll < 0.14:
        s.visit.quirks.append("camera_flicker")
        s.emit(ev.CameraHealthChanged(CAMERA, ev.CameraHealth.DARK, "flicker"), CAMERA, "", 400)
        s.emit(ev.CameraHealthChanged(CAMERA, ev.CameraHealth.OK, ""), CAMERA)


def _pos_act(s: Shopper, behaviour: str) -> None:
    """A staffed lane's POS act: a refund, a no-sale, or a sale with a price override."""
    rng, store = s.rng, s.store
    visit = s.visit
    if behaviour == "no_sale":
        s.emit(ev.NoSaleDrawerOpen(s.operator_id), POS, "nosale", 200)
        visit.losses.append(
            Loss(
                A.POS_EXCEPTION,
                behaviour,
                s.t,
                frozenset({A.POS_EXCEPTION}),
                pos_kind=K.NO_SALE_DRAWER_OPEN,
            )
        )
        s.emit(ev.DrawerStateChanged("drawer-1", ev.DrawerState.OPEN), "drawer-1", "", 3_000)
        s.emit(ev.DrawerStateChanged("drawer-1", ev.DrawerState.CLOSED), "drawer-1")
        return
    si = rng.choice(store.of_kind("pack"))
    price = si.item.unit_price.amount_minor
    with_receipt = behaviour == "honest_refund"
    started = ev.TransactionStarted(s.operator_id, False, ev.TransactionKind.RETURN)
    s.emit(started, POS, "start", rng.randint(2_000, 6_000))
    if not with_receipt:
        visit.losses.append(
            Loss(
                A.POS_EXCEPTION,
                behaviour,
                s.t,
                frozenset({A.POS_EXCEPTION}),
                pos_kind=K.REFUND_WITHOUT_RECEIPT,
            )
        )
    # The returned item is handed over at the scanner and put aside in the packing area.
    # Its draws come from streams of its own: the rest of the corpus is the same with or
    # without it.
    own = s.rng, s.label_rng
    s.rng = random.Random(f"{visit.transaction_id}/returned")
    s.label_rng = random.Random(f"{visit.transaction_id}/returned/labels")
    returned = s.unit(si)
    s.see(returned, returned.track, Z.UNSPECIFIED, Z.SCAN, "returned")
    s.rng, s.label_rng = own
    refund = ev.RefundIssued(
        "1",
        si.item.gtins[0],
        s.money(price),
        with_receipt,
        "T-old" if with_receipt else "",
        s.operator_id,
    )
    s.emit(refund, POS, "refund", rng.randint(2_000, 5_000))
    s.rng = random.Random(f"{visit.transaction_id}/returned/away")
    s.see(returned, returned.track, Z.SCAN, Z.BAGGING, "returned")
    s.rng = own[0]
    s.emit(ev.TransactionEnded(s.money(-price), 1), POS, "end")


def shop(s: Shopper, behaviour: str, basket_size: int) -> None:
    """One visit from arrival to the bags being lifted off."""
    rng, store, visit = s.rng, s.store, s.visit
    if behaviour in ("no_sale", "refund_without_receipt", "honest_refund"):
        _pos_act(s, behaviour)
        return
    basket = _pick_basket(rng, store, s, basket_size)
    left = None
    if behaviour == "left_in_cart":
        left = s.unit(rng.choice(store.of_kind("pack", "each")))
        basket.append(left)
    s.start(basket)
    loss_at = rng.randint(1, max(len(basket) - 1, 1))
    for index, unit in enumerate(basket):
        if unit is left:
            continue
        if index == loss_at and behaviour not in (
            "honest",
            "left_in_cart",
            "void_after_tender",
            "large_override",
            "honest_override",
        ):
            s.flush_held()  # the staged act stands on its own
            stage_loss(s, behaviour, visit.self_checkout)
        line = s.honest_item(unit)
        _honest_quirk(s, line, unit)
    if behaviour in ("large_override", "honest_override"):
        # A large override is 75 % off a dear item (5.99 and more); a small one ~8 % off.
        dear = rng.choice(
            [si for si in store.of_kind("pack") if si.item.unit_price.amount_minor >= 599]
        )
        unit = s.unit(dear)
        s.cart.append(unit)
        line = s.honest_item(unit)
        s.wait(800, 3_000)
        old = dear.item.unit_price.amount_minor
        new = old // 4 if behaviour == "large_override" else old - max(old // 12, 20)
        override = ev.PriceOverride(line, s.money(old), s.money(new), s.operator_id, "DAMAGED")
        s.emit(override, POS, "override", 500)
        if behaviour == "large_override":
            visit.losses.append(
                Loss(
                    A.POS_EXCEPTION,
                    behaviour,
                    s.t,
                    frozenset({A.POS_EXCEPTION}),
                    pos_kind=K.LARGE_PRICE_OVERRIDE,
                )
            )
        s.total_minor -= old - new
    tender_at = s.pay()
    if left is not None:
        visit.losses.append(
            Loss(
                A.ITEM_LEFT_IN_CART,
                behaviour,
                tender_at,
                frozenset({A.ITEM_LEFT_IN_CART}),
                s.vision_up,
                sku=left.si.item.sku,
            )
        )
    if behaviour == "void_after_tender" and s.last_line is not None:
        line, price = s.last_line
        visit.losses.append(
            Loss(
                A.POS_EXCEPTION,
                behaviour,
                s.t,
                frozenset({A.POS_EXCEPTION}),
                pos_kind=K.VOID_AFTER_TENDER,
            )
        )
        s.emit(ev.ItemVoided(line, s.operator_id, s.money(price)), POS, f"void:{line}", 1_000)
        s.total_minor -= price
    s.finish()


def generate(
    seed: int,
    per_lane: int,
    sampler: LabelSampler,
    lanes_per_store: int = 4,
    loss_rate: float = 0.33,
    stores: tuple[Store, ...] = STORES,
    start_ms: int = 1_790_000_000_000,
) -> list[Lane]:
    """``per_lane`` visits at each of every store's lanes, from one seed.

    One lane in four of each store is staffed (an operator, no bagging scale). A share
    ``loss_rate`` of visits stage one loss behaviour, taken in turn from the lane kind's
    list so each type is covered evenly.
    """
    rng = random.Random(seed)
    lanes: list[Lane] = []
    for store in stores:
        for index in range(lanes_per_store):
            self_checkout = index % 4 != 1
            lane = Lane(store.store_id, f"L{index + 1}", self_checkout, store.currency)
            behaviours = SELF_CHECKOUT_LOSSES if self_checkout else STAFFED_LOSSES
            turn = rng.randrange(len(behaviours))
            at = start_ms + rng.randint(0, 30_000)
            for number in range(per_lane):
                if rng.random() < loss_rate:
                    behaviour = behaviours[turn % len(behaviours)]
                    turn += 1
                elif not self_checkout and rng.random() < 0.08:
                    behaviour = rng.choice(("honest_refund", "honest_override"))
                else:
                    behaviour = "honest"
                prefix = "NS" if behaviour == "no_sale" else "T"
                visit = Visit(
                    store.store_id,
                    lane.lane_id,
                    f"{prefix}{seed}-{store.store_id}-{lane.lane_id}-{number:04d}",
                    self_checkout,
                    behaviour,
                    at,
                )
                operator = "" if self_checkout else f"op-{store.store_id}-{index}"
                shopper = Shopper(rng, store, visit, sampler, operator)
                size = rng.randint(1, 9) if self_checkout else rng.randint(2, 20)
                shop(shopper, behaviour, size)
                lane.visits.append(visit)
                at = visit.end_ms + rng.randint(3_000, 90_000)
            lanes.append(lane)
    return lanes
