"""The shopper's primitives: the catalog as shoppers pick from it, baskets, and the builder."""

from __future__ import annotations

import random
from dataclasses import dataclass

from lanesight.fusion import events as ev
from lanesight.fusion.alerts import AlertType
from lanesight.fusion.catalog import CatalogItem
from lanesight.simulation.scenarios.actions import (
    BAGGING,
    CART,
    SCAN,
    Action,
    AddItem,
    CartItemCount,
    ChangeQuantity,
    ClearProduceScale,
    CompleteTender,
    DrawerChange,
    EndTransaction,
    ItemCrossesZones,
    PlaceOnBaggingScale,
    PlaceOnProduceScale,
    PrinterStatus,
    PrintReceipt,
    RemoveFromBaggingScale,
    ScanBarcode,
    ScannerNoRead,
    StartTender,
    StartTransaction,
)
from lanesight.simulation.scenarios.barcodes import ean13_scan, us_price_embedded
from lanesight.simulation.scenarios.scenario import Noise, Scenario, StagedLoss, TimedAction

UNSPECIFIED_ZONE = ev.LaneZone.UNSPECIFIED


def price_minor(price: ev.Money | None) -> int:
    """A catalog price's amount; the simulated catalogs price every item they sell."""
    if price is None:
        raise ValueError("a simulated item has no price for how it is sold")
    return price.amount_minor


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
                price = price_minor(item.price_per_kg) * weight // 1_000_000
                self.do(
                    AddItem(
                        line,
                        item.description,
                        price_minor(item.price_per_kg),
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
                price = price_minor(item.unit_price) * b.quantity
                self.do(
                    AddItem(
                        line,
                        item.description,
                        price_minor(item.unit_price),
                        price,
                        quantity=b.quantity,
                        plu=item.plu,
                        entry_method=ev.EntryMethod.PLU_LOOKUP,
                    ),
                    rng.randint(300, 800),
                )
        elif not item.gtins:
            # A weighed pack with a price-embedded label printed at the deli counter.
            price = price_minor(item.price_per_kg) * b.weight_mg // 1_000_000
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
            price = price_minor(item.unit_price)
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
