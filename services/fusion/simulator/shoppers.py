"""Shoppers at a lane, generated from a seed: honest baskets, checkout faults, loss behaviours."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from services.fusion import events as ev
from services.fusion.alerts import AlertType, PosExceptionKind
from services.fusion.catalog import CatalogItem
from services.fusion.simulator.actions import (
    BAGGING,
    CART,
    SCAN,
    Action,
    AddItem,
    CameraHealthChange,
    CartItemCount,
    ChangeQuantity,
    ClearProduceScale,
    CompleteTender,
    DrawerChange,
    EndTransaction,
    IssueRefund,
    ItemCrossesZones,
    OpenDrawerNoSale,
    OverridePrice,
    PeripheralHealth,
    PlaceOnBaggingScale,
    PlaceOnProduceScale,
    PrinterStatus,
    PrintReceipt,
    ProduceScaleFault,
    RemoveFromBaggingScale,
    ScanBarcode,
    ScannerNoRead,
    StartTender,
    StartTransaction,
    VoidItem,
)
from services.fusion.simulator.barcodes import ean13_scan, us_price_embedded
from services.fusion.simulator.scenario import Noise, Scenario, StagedLoss, TimedAction

UNSPECIFIED_ZONE = ev.LaneZone.UNSPECIFIED

# Loss behaviours by lane kind; each stages one exception type.
SELF_CHECKOUT_LOSSES = (
    "pass_around",
    "bag_without_scanning",
    "item_removed_from_bag",
    "weight_switch",
    "barcode_switch",
    "wrong_produce_plu",
    "price_label_swap",
    "scan_one_of_several",
    "item_left_in_cart",
    "camera_blocked",
)
STAFFED_LOSSES = (
    "sweethearting_pass_around",
    "barcode_switch",
    "wrong_produce_plu",
    "item_left_in_cart",
    "void_after_tender",
    "no_sale",
    "refund_without_receipt",
    "large_price_override",
)


@dataclass
class Catalogue:
    """The demo catalog split the way shoppers pick from it."""

    packaged: list[CatalogItem]
    produce_kg: list[CatalogItem]
    produce_each: list[CatalogItem]
    general: list[CatalogItem]
    meat: list[CatalogItem]
    by_label: dict[str, CatalogItem]
    coarse: dict[str, list[str]]

    @classmethod
    def from_items(cls, items: list[CatalogItem]) -> Catalogue:
        packaged, kg, each, general, meat = [], [], [], [], []
        by_label: dict[str, CatalogItem] = {}
        for item in items:
            for label in item.vision_labels:
                by_label[label] = item
            if item.category.startswith("produce") and item.sold_by_weight:
                kg.append(item)
            elif item.category.startswith("produce"):
                each.append(item)
            elif item.category == "meat-deli":
                meat.append(item)
            elif item.vision_labels:
                packaged.append(item)
            elif not item.skip_bagging:
                general.append(item)
        coarse: dict[str, list[str]] = {}
        for label in by_label:
            coarse.setdefault(_coarse_of(label, by_label[label]), []).append(label)
        return cls(packaged, kg, each, general, meat, by_label, coarse)


def _coarse_of(label: str, item: CatalogItem) -> str:
    """A rough coarse class: apples with apples, milk with milk (for confusions)."""
    words = item.description.split()
    return words[0] if item.category.startswith("produce") else item.category + words[-2]


@dataclass
class BasketItem:
    """One physical item (or identical units) in the shopper's cart."""

    item: CatalogItem
    quantity: int
    weight_mg: int  # of one unit, or of the whole weighed amount for items sold by weight
    track_id: str


class TransactionBuilder:
    """Writes one transaction's actions as a shopper (or cashier) works through a basket."""

    def __init__(
        self,
        rng: random.Random,
        catalogue: Catalogue,
        noise: Noise,
        scenario: Scenario,
        has_bagging_scale: bool,
        operator_id: str,
    ) -> None:
        self.rng = rng
        self.cat = catalogue
        self.noise = noise
        self.sc = scenario
        self.has_scale = has_bagging_scale and scenario.self_checkout
        self.operator_id = operator_id
        self.t = 0
        self.bag_total_mg = 0
        self.lines = 0
        self.tracks = 0
        self.total_minor = 0
        self.items_charged = 0
        self.vision_up = True
        self.cart_left = 0
        self.last_line: tuple[str, int] | None = None
        self.bagged: list[BasketItem] = []

    # ---- basics ---------------------------------------------------------------------

    def do(self, action: Action, after_ms: int = 0) -> None:
        self.sc.actions.append(TimedAction(self.t, action))
        self.t += after_ms

    def wait(self, low_ms: int, high_ms: int) -> None:
        self.t += self.rng.randint(low_ms, high_ms)

    def stage(
        self,
        loss_type: AlertType,
        item: CatalogItem | None,
        amount: int,
        at_ms: int | None = None,
        **kw,
    ) -> None:
        self.sc.losses.append(
            StagedLoss(
                type=loss_type,
                behaviour=self.sc.behaviour,
                at_ms=self.t if at_ms is None else at_ms,
                sku=item.sku if item else "",
                description=item.description if item else "",
                amount_minor=amount,
                **kw,
            )
        )

    def new_track(self) -> str:
        self.tracks += 1
        return f"{self.sc.transaction_id}-t{self.tracks}"

    def recognized(self, item: CatalogItem | None) -> tuple[tuple[str, float], ...]:
        """What vision reports for an item: top-3 labels with scores, with confusion."""
        rng = self.rng
        labels = list(self.cat.by_label)
        if item is None or not item.vision_labels:
            picks = rng.sample(labels, 3)
            return tuple((label, round(rng.uniform(0.05, 0.3), 3)) for label in picks)
        true = item.vision_labels[0]
        if rng.random() < self.noise.vision_confusion:
            group = self.cat.coarse.get(_coarse_of(true, item), [])
            similar = [label for label in group if label != true]
            wrong = rng.choice(similar) if similar and rng.random() < 0.6 else rng.choice(labels)
            if wrong == true:
                wrong = rng.choice([label for label in labels if label != true])
            top = rng.uniform(0.35, 0.75)
            second = rng.uniform(0.1, min(top - 0.02, 0.45))
            ranked = [(wrong, top)]
            if rng.random() < 0.8:
                ranked.append((true, second))
            return tuple((label, round(score, 3)) for label, score in ranked)
        top = rng.uniform(0.65, 0.97)
        others = rng.sample([label for label in labels if label != true], 2)
        rest = 1 - top
        return (
            (true, round(top, 3)),
            (others[0], round(rest * 0.5, 3)),
            (others[1], round(rest * 0.2, 3)),
        )

    def see(self, basket: BasketItem | None, track: str, src, dst, label_of=None) -> None:
        """Vision reports a crossing (unless vision is down or the observation drops)."""
        if not self.vision_up or self.rng.random() < self.noise.vision_dropout:
            return
        item = label_of if label_of is not None else (basket.item if basket else None)
        label = item.vision_labels[0] if item and item.vision_labels else ""
        recognized = self.recognized(item) if dst is not UNSPECIFIED_ZONE else ()
        self.do(ItemCrossesZones(track, label, src, dst, recognized))

    def count_cart(self) -> None:
        if self.vision_up and self.rng.random() >= self.noise.vision_dropout:
            self.do(CartItemCount(self.cart_left))

    def bag(self, weight_mg: int) -> None:
        if not self.has_scale:
            return
        self.bag_total_mg += weight_mg
        noisy = self.bag_total_mg + int(self.rng.gauss(0, self.noise.scale_jitter_mg))
        self.do(PlaceOnBaggingScale(max(noisy, 0)), 500)

    def unbag(self, weight_mg: int) -> None:
        if not self.has_scale:
            return
        self.bag_total_mg -= weight_mg
        noisy = self.bag_total_mg + int(self.rng.gauss(0, self.noise.scale_jitter_mg))
        self.do(RemoveFromBaggingScale(max(noisy, 0)), 500)

    def next_line(self) -> str:
        self.lines += 1
        return f"{self.lines}"

    # ---- the basket -----------------------------------------------------------------

    def pick_basket(self, size: int) -> list[BasketItem]:
        rng = self.rng
        basket = []
        for _ in range(size):
            roll = rng.random()
            if roll < 0.45:
                item = rng.choice(self.cat.packaged)
            elif roll < 0.70:
                item = rng.choice(self.cat.produce_kg)
            elif roll < 0.88:
                item = rng.choice(self.cat.produce_each)
            elif roll < 0.97:
                item = rng.choice(self.cat.general)
            else:
                item = rng.choice(self.cat.meat)
            basket.append(self.make_basket_item(item))
        return basket

    def make_basket_item(self, item: CatalogItem, quantity: int = 1) -> BasketItem:
        rng = self.rng
        piece = rng.randint(item.min_weight_mg, item.max_weight_mg)
        if item.sold_by_weight and item.category.startswith("produce"):
            pieces = rng.randint(1, 6) if item.max_weight_mg < 400_000 else 1
            weight = sum(rng.randint(item.min_weight_mg, item.max_weight_mg) for _ in range(pieces))
            return BasketItem(item, 1, weight, self.new_track())
        if item.category.startswith("produce") and rng.random() < 0.25:
            quantity = rng.randint(2, 4)
        return BasketItem(item, quantity, piece, self.new_track())

    def arrive(self, basket: list[BasketItem]) -> None:
        """The shopper arrives: vision sees the cart, the POS opens the transaction."""
        self.cart_left = sum(b.quantity for b in basket)
        for b in basket:
            self.see(b, b.track_id, UNSPECIFIED_ZONE, CART)
        self.count_cart()
        if self.has_scale:
            self.do(PlaceOnBaggingScale(0), 500)  # the empty bagging area reads zero
        self.do(
            StartTransaction(self.sc.transaction_id, self.sc.self_checkout, self.operator_id),
            self.rng.randint(800, 2500),
        )

    def own_bag(self) -> None:
        self.sc.faults.append("own_bag")
        if self.rng.random() < 0.5:
            self.see(None, self.new_track(), UNSPECIFIED_ZONE, BAGGING)
        self.bag(self.rng.randint(15_000, 45_000))
        self.wait(500, 1500)

    # ---- honest items ---------------------------------------------------------------

    def charge(
        self,
        b: BasketItem,
        item: CatalogItem | None = None,
        weight_mg: int | None = None,
    ) -> str:
        """Scan or look up an item and have the POS add the line; returns the line id."""
        rng = self.rng
        item = item or b.item
        line = self.next_line()
        if item.category.startswith("produce"):
            weight = b.weight_mg if weight_mg is None else weight_mg
            if item.sold_by_weight:
                self.do(PlaceOnProduceScale(weight), rng.randint(2000, 5000))
                price = item.price_per_kg.amount_minor * weight // 1_000_000
                self.do(
                    AddItem(
                        line,
                        item.description,
                        item.price_per_kg.amount_minor,
                        price,
                        plu=item.plu,
                        weight_mg=weight,
                        entry_method=ev.EntryMethod.PLU_LOOKUP,
                        unit_of_measure=ev.UnitOfMeasure.KILOGRAM,
                    ),
                    rng.randint(300, 800),
                )
                self.do(ClearProduceScale(), 300)
            else:
                self.wait(1500, 4000)
                price = item.unit_price.amount_minor * b.quantity
                self.do(
                    AddItem(
                        line,
                        item.description,
                        item.unit_price.amount_minor,
                        price,
                        quantity=b.quantity,
                        plu=item.plu,
                        entry_method=ev.EntryMethod.PLU_LOOKUP,
                    ),
                    rng.randint(300, 800),
                )
        elif not item.gtins:
            # A weighed pack with a price-embedded label printed at the deli counter.
            price = item.price_per_kg.amount_minor * b.weight_mg // 1_000_000
            data = us_price_embedded(item.plu, price)
            self.sc.faults.append("price_embedded_label")
            self.do(ScanBarcode(data), rng.randint(100, 500))
            self.do(
                AddItem(
                    line,
                    item.description,
                    price,
                    price,
                    plu=item.plu,
                    entry_method=ev.EntryMethod.PRICE_EMBEDDED,
                    barcode_data=data[3:],
                ),
                rng.randint(200, 600),
            )
        else:
            if rng.random() < 0.08:
                self.sc.faults.append("no_read_rescan")
                self.do(ScannerNoRead(), rng.randint(600, 1500))
            data = ean13_scan(item.gtins[0])
            self.do(ScanBarcode(data), rng.randint(80, 700) if rng.random() < 0.9 else 1400)
            price = item.unit_price.amount_minor
            self.do(
                AddItem(
                    line,
                    item.description,
                    price,
                    price,
                    gtin=item.gtins[0],
                    barcode_data=data[3:],
                ),
                rng.randint(200, 600),
            )
            if b.quantity > 1:
                self.sc.faults.append("quantity_key")
                self.do(ChangeQuantity(line, 1, b.quantity, price * b.quantity), 500)
                price *= b.quantity
        self.total_minor += price
        self.items_charged += 1
        self.last_line = (line, price)
        return line

    @property
    def last_added_at(self) -> int:
        """When the POS added the most recent line (the deciding event of a scan)."""
        for timed in reversed(self.sc.actions):
            if isinstance(timed.action, AddItem):
                return timed.at_ms
        return self.t

    def leave_cart(self, b: BasketItem, units: int = 1) -> None:
        self.cart_left = max(self.cart_left - units, 0)
        self.see(b, b.track_id, CART, SCAN)
        self.count_cart()

    def honest_item(self, b: BasketItem) -> None:
        rng = self.rng
        if b.item.skip_bagging and self.has_scale:
            # Heavy item scanned with the hand scanner in the cart; it stays there.
            self.sc.faults.append("skip_bagging")
            self.charge(b)
            self.wait(800, 2000)
            return
        self.wait(1000, 3500)
        self.leave_cart(b, b.quantity)
        self.wait(300, 1000)
        self.charge(b)
        units = 1 if b.item.sold_by_weight else b.quantity
        unit_weight = b.weight_mg
        if not b.item.gtins and not b.item.category.startswith("produce"):
            unit_weight += rng.randint(8_000, 25_000)  # tray and film
        for unit in range(units):
            self.wait(400, 1600)
            track = b.track_id if unit == 0 else self.new_track()
            self.see(b, track, SCAN, BAGGING)
            self.t += rng.randint(50, 300)
            self.bag(unit_weight)
        self.bagged.append(b)

    # ---- the end --------------------------------------------------------------------

    def pay(self) -> int:
        """Payment starts; returns when (the cart is judged then)."""
        self.wait(1500, 4000)
        started = self.t
        self.do(StartTender(self.total_minor), self.rng.randint(4000, 12000))
        return started

    def finish(self) -> None:
        rng = self.rng
        if rng.random() < 0.15 and not self.sc.self_checkout:
            self.do(DrawerChange(ev.DrawerState.OPEN), 3000)
            self.do(DrawerChange(ev.DrawerState.CLOSED), 500)
            self.do(CompleteTender(self.total_minor, ev.TenderType.CASH), 500)
        else:
            self.do(CompleteTender(self.total_minor), 800)
        if rng.random() < 0.03:
            self.sc.faults.append("printer_paper_low")
            self.do(PrinterStatus(ev.PaperStatus.NEAR_END), 200)
        self.do(PrintReceipt(), 600)
        self.do(EndTransaction(self.total_minor, self.items_charged), rng.randint(2000, 6000))
        if self.has_scale and self.bag_total_mg:
            self.bag_total_mg = 0
            self.do(RemoveFromBaggingScale(0), 500)


# ---- behaviours -------------------------------------------------------------------------


def _dearer(items: list[CatalogItem], than: int) -> list[CatalogItem]:
    return [i for i in items if i.price_minor() > than]


def _loss_item(tb: TransactionBuilder, behaviour: str, basket: list[BasketItem]) -> None:
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
        cheap = min(cat.produce_kg, key=lambda i: i.price_per_kg.amount_minor)
        dear = rng.choice(_dearer(cat.produce_kg, 0))
        while dear.price_per_kg.amount_minor < cheap.price_per_kg.amount_minor * 2:
            dear = rng.choice(cat.produce_kg)
        b = tb.make_basket_item(dear)
        tb.cart_left += 1
        tb.wait(1000, 3000)
        tb.leave_cart(b)
        tb.wait(300, 900)
        diff = (dear.price_per_kg.amount_minor - cheap.price_per_kg.amount_minor) * b.weight_mg
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
        meat = max(cat.meat, key=lambda i: i.price_per_kg.amount_minor)
        actual = rng.randint(520_000, 700_000)
        label_weight = rng.randint(200_000, 300_000)
        per_kg = meat.price_per_kg.amount_minor
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


def build_transaction(
    rng: random.Random,
    catalogue: Catalogue,
    noise: Noise,
    scenario: Scenario,
    has_bagging_scale: bool,
    operator_id: str,
) -> None:
    """Fill a scenario's actions for its behaviour (honest, or one loss)."""
    tb = TransactionBuilder(rng, catalogue, noise, scenario, has_bagging_scale, operator_id)
    behaviour = scenario.behaviour
    if behaviour in _POS_ONLY:
        _POS_ONLY[behaviour](tb)
        return
    size = rng.randint(3, 12) if scenario.self_checkout else rng.randint(4, 16)
    basket = tb.pick_basket(size)
    vision_only = behaviour in _VISION_ONLY or (behaviour != "honest" and not tb.has_scale)
    vision_down = not vision_only and rng.random() < 0.04
    if vision_down:
        scenario.faults.append("vision_down")
        tb.do(
            PeripheralHealth(
                "vision-link", ev.DeviceKind.VISION_LINK, ev.PeripheralState.DISCONNECTED
            )
        )
        tb.vision_up = False
    left_behind = None
    if behaviour == "item_left_in_cart":
        left_behind = tb.make_basket_item(rng.choice(catalogue.packaged + catalogue.produce_each))
        basket.append(left_behind)
    tb.arrive(basket)
    if tb.has_scale and rng.random() < 0.3:
        tb.own_bag()
    loss_at = rng.randint(1, max(len(basket) - 1, 1))
    for index, b in enumerate(basket):
        if b is left_behind:
            continue
        if index == loss_at and behaviour != "honest":
            _loss_item(tb, behaviour, basket)
        _honest_variation(tb, b)
    if behaviour not in ("honest", "item_left_in_cart") and not scenario.losses:
        _loss_item(tb, behaviour, basket)
    tender_at = tb.pay()
    if left_behind is not None:
        item = left_behind.item
        tb.stage(AlertType.ITEM_LEFT_IN_CART, item, item.price_minor(), at_ms=tender_at)
    if behaviour == "void_after_tender" and tb.last_line is not None:
        line, price = tb.last_line
        tb.stage(AlertType.POS_EXCEPTION, None, price, pos_kind=PosExceptionKind.VOID_AFTER_TENDER)
        tb.do(VoidItem(line, price, tb.operator_id), 1500)
        tb.total_minor -= price
    tb.finish()
    if vision_down:
        tb.do(
            PeripheralHealth("vision-link", ev.DeviceKind.VISION_LINK, ev.PeripheralState.CONNECTED)
        )


def _honest_variation(tb: TransactionBuilder, b: BasketItem) -> None:
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
_VISION_ONLY = frozenset(
    {"barcode_switch", "wrong_produce_plu", "item_left_in_cart", "camera_blocked", "pass_around"}
)

_POS_ONLY: dict[str, Callable[[TransactionBuilder], None]] = {
    "no_sale": _no_sale,
    "refund_without_receipt": lambda tb: _refund(tb, False),
    "honest_refund": lambda tb: _refund(tb, True),
    "large_price_override": lambda tb: _override(tb, True),
    "honest_override": lambda tb: _override(tb, False),
}


def generate_lanes(
    seed: int,
    lanes: int,
    transactions: int,
    catalog_items: list[CatalogItem],
    noise: Noise | None = None,
    loss_rate: float = 0.3,
    store_id: str = "store-1",
    start_ms: int = 1_750_000_000_000,
) -> list[list[Scenario]]:
    """``transactions`` scenarios for each of ``lanes`` lanes, from one seed.

    Three lanes in four are self-checkouts with a bagging scale; the fourth is staffed
    (an operator, no bagging scale). A share ``loss_rate`` of transactions stage one
    loss behaviour, taken in turn from the lane kind's list so every type is covered.
    """
    rng = random.Random(seed)
    noise = noise or Noise()
    catalogue = Catalogue.from_items(catalog_items)
    result: list[list[Scenario]] = []
    for index in range(lanes):
        lane_id = f"lane-{index + 1:02d}"
        self_checkout = index % 4 != 3
        behaviours = SELF_CHECKOUT_LOSSES if self_checkout else STAFFED_LOSSES
        operator = "" if self_checkout else f"op-{index + 1:02d}"
        turn = index
        at = start_ms + rng.randint(0, 60_000)
        scenarios: list[Scenario] = []
        for number in range(transactions):
            if rng.random() < loss_rate:
                behaviour = behaviours[turn % len(behaviours)]
                turn += 1
            elif not self_checkout and rng.random() < 0.06:
                behaviour = rng.choice(("honest_refund", "honest_override"))
            else:
                behaviour = "honest"
            prefix = "NS" if behaviour == "no_sale" else "T"
            scenario = Scenario(
                scenario_id=f"{store_id}/{lane_id}/{number}",
                store_id=store_id,
                lane_id=lane_id,
                transaction_id=f"{prefix}-{lane_id}-{number:05d}",
                start_ms=at,
                self_checkout=self_checkout,
                behaviour=behaviour,
            )
            build_transaction(rng, catalogue, noise, scenario, self_checkout, operator)
            scenarios.append(scenario)
            at += scenario.duration_ms + rng.randint(5_000, 40_000)
        result.append(scenarios)
    return result
