"""A small DSL for lane scripts in tests, built on the simulator's physical actions."""

from __future__ import annotations

from lanesight.fusion import events as ev
from lanesight.fusion.catalog import CatalogItem
from lanesight.simulation.scenarios.actions import (
    BAGGING,
    CART,
    SCAN,
    Action,
    AddItem,
    ClearProduceScale,
    CompleteTender,
    EndTransaction,
    ItemCrossesZones,
    PlaceOnBaggingScale,
    PlaceOnProduceScale,
    RemoveFromBaggingScale,
    ScanBarcode,
    StartTender,
    StartTransaction,
)
from lanesight.simulation.scenarios.barcodes import ean13_scan

from .conftest import script_events


class Script:
    """One transaction at one lane, written step by step with times in ms."""

    def __init__(self, self_checkout: bool = True, transaction_id: str = "T1", lane="lane-1"):
        self.transaction_id = transaction_id
        self.lane_id = lane
        self.self_checkout = self_checkout
        operator = "" if self_checkout else "op-1"
        self.actions: list[tuple[int, Action]] = [
            (0, StartTransaction(transaction_id, self_checkout, operator))
        ]
        if self_checkout:  # the empty bagging scale reports zero as the lane starts
            self.actions.insert(0, (-1000, PlaceOnBaggingScale(0)))
        self.t = 1000
        self.bag_total = 0
        self.lines = 0
        self.tracks = 0
        self.total = 0

    def at(self, dt_ms: int, action: Action) -> Script:
        self.t += dt_ms
        self.actions.append((self.t, action))
        return self

    def track(self) -> str:
        self.tracks += 1
        return f"trk-{self.tracks}"

    def cross(self, track: str, label: str, src, dst, score: float = 0.9, labels=None):
        recognized = labels if labels is not None else (((label, score),) if label else ())
        return self.at(100, ItemCrossesZones(track, label, src, dst, recognized))

    def place(self, delta_mg: int, dt_ms: int = 200) -> Script:
        self.bag_total += delta_mg
        return self.at(dt_ms, PlaceOnBaggingScale(self.bag_total))

    def lift(self, delta_mg: int, dt_ms: int = 200) -> Script:
        self.bag_total -= delta_mg
        return self.at(dt_ms, RemoveFromBaggingScale(self.bag_total))

    def add_line(self, item: CatalogItem, quantity: int = 1, price: int | None = None) -> str:
        self.lines += 1
        line = str(self.lines)
        unit = item.unit_price.amount_minor if item.unit_price else 0
        extended = price if price is not None else unit * quantity
        gtin = item.gtins[0] if item.gtins else ""
        data = ean13_scan(gtin) if gtin else ""
        if data:
            self.at(300, ScanBarcode(data))
        self.at(
            200,
            AddItem(
                line,
                item.description,
                unit,
                extended,
                quantity=quantity,
                gtin=gtin,
                plu=item.plu,
                entry_method=ev.EntryMethod.SCANNED if gtin else ev.EntryMethod.PLU_LOOKUP,
                barcode_data=data[3:],
            ),
        )
        self.total += extended
        return line

    def scan(
        self,
        item: CatalogItem,
        weight_mg: int | None = None,
        bag: bool = True,
        seen_as: str | None = None,
        score: float = 0.9,
        quantity: int = 1,
    ) -> str:
        """An honest scan: cart → scanner (recognised) → POS line → bag (weighed)."""
        label = seen_as if seen_as is not None else (item.vision_labels or ("",))[0]
        track = self.track()
        self.cross(track, label, CART, SCAN, score)
        line = self.add_line(item, quantity)
        if bag:
            self.at(800, ItemCrossesZones(track, label, SCAN, BAGGING))
            if self.self_checkout:  # staffed lanes have no bagging scale
                unit = weight_mg or (item.min_weight_mg + item.max_weight_mg) // 2
                self.place(unit * quantity)
        return line

    def produce(
        self,
        item: CatalogItem,
        weight_mg: int,
        entered: CatalogItem | None = None,
        seen_as: str | None = None,
        score: float = 0.9,
    ) -> str:
        """Produce weighed on the scale and entered by PLU lookup (``entered`` if wrong)."""
        code = entered or item
        label = seen_as if seen_as is not None else item.vision_labels[0]
        track = self.track()
        self.cross(track, label, CART, SCAN, score)
        self.at(300, PlaceOnProduceScale(weight_mg))
        self.lines += 1
        line = str(self.lines)
        per_kg = code.price_per_kg.amount_minor
        price = per_kg * weight_mg // 1_000_000
        self.at(
            2500,
            AddItem(
                line,
                code.description,
                per_kg,
                price,
                plu=code.plu,
                weight_mg=weight_mg,
                entry_method=ev.EntryMethod.PLU_LOOKUP,
                unit_of_measure=ev.UnitOfMeasure.KILOGRAM,
            ),
        )
        self.total += price
        self.at(300, ClearProduceScale())
        self.at(800, ItemCrossesZones(track, label, SCAN, BAGGING))
        self.place(weight_mg)
        return line

    def pay(self, wait_ms: int = 2000) -> Script:
        self.at(wait_ms, StartTender(self.total))
        return self

    def finish(self) -> Script:
        self.at(3000, CompleteTender(self.total))
        self.at(500, EndTransaction(self.total, self.lines))
        return self

    def events(self, **kw) -> list[ev.LaneEvent]:
        return script_events(
            self.actions,
            lane_id=self.lane_id,
            transaction_id=self.transaction_id,
            self_checkout=self.self_checkout,
            **kw,
        )
