"""What one shopper does at a lane, written as timed lane events (the generator's vocabulary)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from lanesight.fusion import events as ev
from lanesight.simulation.robustness.labels import LabelSampler
from lanesight.simulation.robustness.stores import PACK_SPREAD, Store, StoreItem
from lanesight.simulation.robustness.stream import (
    BAGGING_SCALE,
    CAMERA,
    POS,
    PRODUCE_SCALE,
    SCANNER,
    Emitted,
    Visit,
)
from stdnum import ean

Z = ev.LaneZone


@dataclass
class Unit:
    """Goods the shopper handles as one: ``count`` pieces of an item weighing ``weight_mg``."""

    si: StoreItem
    count: int
    weight_mg: int
    track: str
    bag_extra_mg: int = 0  # produce bag, tray and film: on the scale, not in the price

    @property
    def bagged_mg(self) -> int:
        return self.weight_mg + self.bag_extra_mg


class Shopper:
    """Writes a visit's events as the shopper, the POS and the lane's sources would report."""

    def __init__(
        self,
        rng: random.Random,
        store: Store,
        visit: Visit,
        sampler: LabelSampler,
        operator_id: str = "",
    ) -> None:
        self.rng = rng
        self.store = store
        self.visit = visit
        self.sampler = sampler
        # Labels draw from their own stream, so the stress mode stages the same shoppers.
        self.label_rng = random.Random(f"{visit.transaction_id}/labels")
        self.has_scale = visit.self_checkout
        self.operator_id = operator_id
        self.t = visit.start_ms
        self.bag_mg = 0
        self.cart: list[Unit] = []
        self.bagged: list[tuple[str, Unit]] = []
        self.lines = 0
        self.tracks = 0
        self.total_minor = 0
        self.line_count = 0
        self.last_line: tuple[str, int] | None = None
        self.rung_skus: set[str] = set()
        self.held: tuple[str, Unit] | None = None  # scanned, not bagged yet
        self.vision_up = True

    # ---- basics -------------------------------------------------------------------------

    def emit(self, payload: ev.Payload, source: str, tag: str = "", after_ms: int = 0) -> None:
        self.visit.events.append(Emitted(self.t, payload, source, self.visit.transaction_id, tag))
        self.t += after_ms

    def wait(self, low_ms: int, high_ms: int) -> None:
        self.t += self.rng.randint(low_ms, high_ms)

    def money(self, amount_minor: int) -> ev.Money:
        return ev.Money(amount_minor, self.store.currency)

    def new_track(self) -> str:
        self.tracks += 1
        return f"{self.visit.transaction_id}.{self.tracks}"

    def next_line(self) -> str:
        self.lines += 1
        return str(self.lines)

    def unit(self, si: StoreItem, count: int = 1) -> Unit:
        """Goods picked from the shelf: real weights vary around the nominal."""
        rng = self.rng
        if si.kind == "kg":
            pieces = rng.randint(1, 7) if si.nominal_mg < 500_000 else 1
            weight = sum(int(si.nominal_mg * rng.uniform(0.75, 1.25)) for _ in range(pieces))
            return Unit(si, 1, weight, self.new_track(), rng.randint(3_000, 8_000))
        if si.kind == "deli":
            weight = int(si.nominal_mg * rng.uniform(0.7, 1.3))
            return Unit(si, 1, weight, self.new_track(), rng.randint(9_000, 24_000))
        spread = 0.12 if si.kind == "each" else PACK_SPREAD
        weight = sum(
            int(si.nominal_mg * min(max(rng.gauss(1, spread), 0.7), 1.3)) for _ in range(count)
        )
        return Unit(si, count, weight, self.new_track())

    # ---- sources ------------------------------------------------------------------------

    def scale_value(self, true_mg: int) -> int:
        """What the scale shows: a little noise, rounded to its division."""
        if true_mg == 0:
            return 0  # zero tracking: an empty scale reads zero
        division = self.store.scale_division_mg
        noisy = true_mg + int(self.rng.gauss(0, 1_500))
        return round(noisy / division) * division

    def settle(self, tag: str) -> None:
        """The bagging scale moves, then settles at the goods' weight."""
        if not self.has_scale:
            return
        rng = self.rng
        role = ev.ScaleRole.BAGGING
        moving = self.scale_value(self.bag_mg + rng.randint(-40_000, 120_000))
        motion = ev.ScaleReading(BAGGING_SCALE, role, ev.ScaleStatus.IN_MOTION, max(moving, 0))
        self.emit(motion, BAGGING_SCALE, tag, rng.randint(250, 900))
        value = self.scale_value(self.bag_mg)
        status = ev.ScaleStatus.STABLE if value > 0 else ev.ScaleStatus.ZERO
        self.emit(ev.ScaleReading(BAGGING_SCALE, role, status, max(value, 0)), BAGGING_SCALE, tag)

    def bag(self, weight_mg: int, tag: str) -> None:
        self.bag_mg += weight_mg
        self.settle(tag)

    def unbag(self, weight_mg: int, tag: str) -> None:
        self.bag_mg -= weight_mg
        self.settle(tag)

    def see(self, unit: Unit | None, track: str, src: Z, dst: Z, tag: str = "") -> None:
        """The camera follows a track between zones and recognises it in the new one."""
        if not self.vision_up:
            return
        rng = self.rng
        if src is not Z.UNSPECIFIED:
            left = ev.ZoneCrossing(CAMERA, track, src, ev.ZoneDirection.LEFT)
            self.emit(left, CAMERA, tag, rng.randint(20, 120))
        if dst is Z.UNSPECIFIED:
            return
        self.emit(ev.ZoneCrossing(CAMERA, track, dst, ev.ZoneDirection.ENTERED), CAMERA, tag)
        # Views in the cart are mostly occluded; the scan and bagging zones give 1-3 views.
        views = (0 if rng.random() < 0.7 else 1) if dst is Z.CART else rng.choice((1, 1, 2, 3))
        if rng.random() < 0.05:
            views = 0  # the tracker lost it before a crop was good enough
        label = unit.si.vision_label if unit else ""
        for _ in range(views):
            self.t += rng.randint(60, 400)
            ranked = self.sampler.draw(self.label_rng, label)
            if not ranked:
                continue
            labels = tuple(ev.LabelScore(*label) for label in ranked)
            self.emit(ev.ItemRecognized(CAMERA, track, dst, labels), CAMERA, tag)

    def count_cart(self, always: bool = False) -> None:
        if self.vision_up and (always or self.rng.random() < 0.35):
            count = sum(u.count for u in self.cart)
            self.emit(ev.ZoneItemCount(CAMERA, Z.CART, count), CAMERA, "cartcount")

    # ---- POS ----------------------------------------------------------------------------

    def start(self, basket: list[Unit]) -> None:
        self.cart = list(basket)
        for unit in basket:
            self.see(unit, unit.track, Z.UNSPECIFIED, Z.CART)
        self.count_cart(always=True)
        self.wait(300, 2_500)
        started = ev.TransactionStarted(self.operator_id, self.visit.self_checkout)
        self.emit(started, POS, "start", self.rng.randint(600, 3_000))

    def add_line(self, payload: ev.ItemAdded, price_minor: int) -> str:
        self.emit(payload, POS, f"add:{payload.line_id}")
        self.total_minor += price_minor
        self.line_count += 1
        self.last_line = (payload.line_id, price_minor)
        return payload.line_id

    def ring(self, unit: Unit, as_item: StoreItem | None = None, count: int | None = None) -> str:
        """Scan, weigh or key the unit (as ``as_item`` when the shopper cheats)."""
        rng = self.rng
        si = as_item or unit.si
        item = si.item
        self.rung_skus.add(item.sku)
        count = unit.count if count is None else count
        line = self.next_line()
        if si.kind == "kg":
            self.emit(
                ev.ScaleReading(PRODUCE_SCALE, ev.ScaleRole.PRODUCE, ev.ScaleStatus.IN_MOTION, 0),
                PRODUCE_SCALE,
                "produce",
                rng.randint(300, 900),
            )
            weight = self.scale_value(unit.weight_mg)
            produce = ev.ScaleReading(
                PRODUCE_SCALE, ev.ScaleRole.PRODUCE, ev.ScaleStatus.STABLE, weight
            )
            self.emit(produce, PRODUCE_SCALE, "produce", rng.randint(1_500, 6_000))
            per_kg = item.price_per_kg.amount_minor
            price = per_kg * weight // 1_000_000
            added = ev.ItemAdded(
                line,
                plu=item.plu,
                description=item.description,
                unit_price=self.money(per_kg),
                extended_price=self.money(price),
                weight_mg=weight,
                entry_method=ev.EntryMethod.PLU_LOOKUP,
                unit_of_measure=ev.UnitOfMeasure.KILOGRAM,
            )
            self.add_line(added, price)
            self.wait(200, 1_200)
            zero = ev.ScaleReading(PRODUCE_SCALE, ev.ScaleRole.PRODUCE, ev.ScaleStatus.ZERO, 0)
            self.emit(zero, PRODUCE_SCALE, "produce")
            return line
        if si.kind == "each":
            self.wait(1_200, 5_000)
            unit_price = item.unit_price.amount_minor
            added = ev.ItemAdded(
                line,
                plu=item.plu,
                description=item.description,
                quantity=count,
                unit_price=self.money(unit_price),
                extended_price=self.money(unit_price * count),
                entry_method=ev.EntryMethod.PLU_LOOKUP,
            )
            return self.add_line(added, unit_price * count)
        if si.kind == "deli":
            per_kg = item.price_per_kg.amount_minor
            price = per_kg * unit.weight_mg // 1_000_000
            return self.scan_label(line, si, price, unit.weight_mg)
        if rng.random() < 0.07:
            self.visit.quirks.append("no_read")
            self.emit(
                ev.ScannerNoRead(SCANNER, "no read"), SCANNER, "noread", rng.randint(400, 1_800)
            )
        gtin = item.gtins[0]
        raw = gtin[-13:]
        read = ev.BarcodeRead(SCANNER, raw, "]E0", "EAN-13", gtin)
        self.emit(read, SCANNER, "scan", rng.randint(60, 450))
        unit_price = item.unit_price.amount_minor
        added = ev.ItemAdded(
            line,
            gtin=gtin,
            description=item.description,
            unit_price=self.money(unit_price),
            extended_price=self.money(unit_price),
            barcode_data=raw,
        )
        self.add_line(added, unit_price)
        if count > 1:
            self.visit.quirks.append("quantity_key")
            self.wait(400, 1_500)
            change = ev.QuantityChanged(line, 1, count, self.money(unit_price * count))
            self.emit(change, POS, f"qty:{line}")
            self.total_minor += unit_price * (count - 1)
        return line

    def scan_label(self, line: str, si: StoreItem, price_minor: int, weight_mg: int) -> str:
        """A weighed pack's price-embedded label: the scanner decodes price and weight."""
        rng = self.rng
        self.rung_skus.add(si.item.sku)
        # An in-store EAN-13: "2", a digit, the 5-digit item, the 5-digit price, the check.
        body = f"21{si.scan_code[-5:]:0>5}{price_minor % 100_000:05d}"
        raw = body + ean.calc_check_digit(body)
        read = ev.BarcodeRead(
            SCANNER,
            raw,
            "]E0",
            "EAN-13",
            variable_measure=True,
            variable_measure_item=si.scan_code,
            label_price=self.money(price_minor),
            label_weight_mg=weight_mg,
        )
        self.emit(read, SCANNER, "scan", rng.randint(60, 450))
        added = ev.ItemAdded(
            line,
            plu=si.scan_code,
            description=si.item.description,
            unit_price=self.money(price_minor),
            extended_price=self.money(price_minor),
            weight_mg=weight_mg,
            entry_method=ev.EntryMethod.PRICE_EMBEDDED,
            unit_of_measure=ev.UnitOfMeasure.KILOGRAM,
            barcode_data=raw,
        )
        return self.add_line(added, price_minor)

    def take_from_cart(self, unit: Unit) -> None:
        if unit in self.cart:
            self.cart.remove(unit)
        self.see(unit, unit.track, Z.CART, Z.SCAN)
        self.count_cart()

    def place_in_bag(self, unit: Unit, line: str, loss: bool = False) -> None:
        """From the scan zone into the bagging area (one placement per handful)."""
        rng = self.rng
        if loss:
            self.visit.loss_lines.add(line)
        self.t += rng.randint(300, 2_000) if rng.random() < 0.9 else rng.randint(3_000, 6_500)
        self.see(unit, unit.track, Z.SCAN, Z.BAGGING, f"vbag:{line}")
        self.t += rng.randint(80, 700)
        self.bag(unit.bagged_mg, f"bag:{line}")
        self.bagged.append((line, unit))

    def honest_item(self, unit: Unit) -> str:
        """Take, ring and bag one item; now and then in another order or two at a time."""
        rng = self.rng
        self.wait(800, 6_000)
        self.take_from_cart(unit)
        self.wait(200, 1_500)
        roll = rng.random()
        if self.has_scale and self.held is None and roll < 0.03 and unit.si.kind != "kg":
            # Into the bag first, then scanned there with the hand scanner (or its code
            # keyed; produce sold by weight must go on the produce scale, not in the bag).
            self.visit.quirks.append("bag_before_scan")
            line = str(self.lines + 1)
            self.t += rng.randint(200, 900)
            self.see(unit, unit.track, Z.SCAN, Z.BAGGING, f"vbag:{line}")
            self.bag(unit.bagged_mg, f"bag:{line}")
            self.wait(200, 1_200)
            line = self.ring(unit)
            self.bagged.append((line, unit))
            return line
        line = self.ring(unit)
        if self.has_scale and self.held is None and roll < 0.15:
            self.held = (line, unit)  # scans the next one before bagging this one
            return line
        if self.held is None:
            self.place_in_bag(unit, line)
        else:
            self.place_together([self.held, (line, unit)])
        return line

    def place_together(self, held: list[tuple[str, Unit]]) -> None:
        """Two scanned items put down in the bagging area in one go: one weight change."""
        rng = self.rng
        self.held = None
        if len(held) > 1:
            self.visit.quirks.append("two_at_once")
        self.t += rng.randint(300, 2_000)
        for line, unit in held:
            self.see(unit, unit.track, Z.SCAN, Z.BAGGING, f"vbag:{line}")
        self.t += rng.randint(80, 700)
        lines = ",".join(line for line, _ in held)
        self.bag(sum(unit.bagged_mg for _, unit in held), f"bagmany:{lines}")
        self.bagged.extend(held)

    def flush_held(self) -> None:
        if self.held is not None:
            self.place_together([self.held])

    def pay(self) -> int:
        """Payment starts (the cart is judged then); returns when."""
        rng = self.rng
        self.flush_held()
        self.wait(1_000, 5_000)
        started = self.t
        self.emit(ev.TenderStarted(self.money(self.total_minor)), POS, "tender", 200)
        self.count_cart(always=True)
        self.wait(3_000, 15_000)
        tender = ev.TenderCompleted(
            ev.TenderType.CARD if rng.random() < 0.8 else ev.TenderType.MOBILE,
            self.money(self.total_minor),
            self.money(0),
        )
        self.emit(tender, POS, "paid", rng.randint(300, 1_200))
        return started

    def finish(self) -> None:
        rng = self.rng
        self.emit(ev.ReceiptPrinted("printer-1", "receipt"), "printer-1", "", rng.randint(300, 900))
        ended = ev.TransactionEnded(self.money(self.total_minor), self.line_count)
        self.emit(ended, POS, "end", rng.randint(1_000, 7_000))
        if self.has_scale and self.bag_mg:
            # The shopper lifts their bags off once the transaction is over.
            self.bag_mg = 0
            self.settle("lift")
