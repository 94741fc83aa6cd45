"""Fusion's rules, grouped by the evidence they read; each emits Signals to the engine."""

from __future__ import annotations

from typing import Protocol

from lanesight.fusion.alertbook import AlertBook
from lanesight.fusion.alerts import Alert, ItemRef
from lanesight.fusion.catalog import CatalogBook, CatalogItem
from lanesight.fusion.config import FusionConfig
from lanesight.fusion.lane import Lane, Line
from lanesight.fusion.ledger import WeightChange
from lanesight.fusion.signals import Signal


class RuleHost(Protocol):
    """What rules may use of the engine."""

    config: FusionConfig
    catalog: CatalogBook

    @property
    def alerts(self) -> AlertBook:
        """The alert book (for shopper corrections)."""

    def emit(self, lane: Lane, signal: Signal) -> Alert | None:
        """Hand a signal to the alert book; the alert it raised or joined, if any."""

    def amount_for_weight(self, lane: Lane, weight_mg: int) -> int:
        """An estimate of what an unidentified item of this weight costs."""

    def vision_allows(
        self, lane: Lane, line: Line, change: WeightChange, also: tuple[Line, ...] = ()
    ) -> bool:
        """False when the camera surely saw another item (than line, and those in
        ``also``) reach the bag for this change."""

    def vision_names_other(self, lane: Lane, line: Line, change: WeightChange) -> bool:
        """True when the camera surely named another item, of this change's weight,
        reaching the bag for it (a swapped item, not more units of line)."""

    def vision_confirms_item(self, lane: Lane, line: Line, change: WeightChange) -> bool:
        """True when the camera surely saw the scanned item itself go down for this
        change and no other catalog item of its kind weighs it."""

    def measured_weight(self, sku: str, weight_mg: int, confirmed: bool, source: str = "") -> bool:
        """Record one unit's weight off the catalog (confirmed by the camera or not); True
        when the weights so far show the catalog is wrong and this one fits them."""

    def defer_for_plu(self, lane: Lane, track, kind: str, data: object) -> bool:
        """Reopen a window while the track's produce code is visibly being entered."""

    def labels_near(self, lane: Lane, at_ms: int, since_ms: int | None = None) -> tuple:
        """The labels of the named item that reached the bag around at_ms, if any."""

    def currency_of(self, lane: Lane) -> str:
        """The currency of the lane's transaction (or its store's catalog)."""


def item_ref_of_line(line: Line) -> ItemRef:
    """The alert's item reference for a POS line."""
    item = line.item
    return ItemRef(
        sku=item.sku if item else "",
        gtin=line.gtin,
        plu=line.plu,
        description=line.description or (item.description if item else ""),
        category=item.category if item else "",
    )


def item_ref_of(item: CatalogItem | None) -> ItemRef:
    """The alert's item reference for a catalog item."""
    if item is None:
        return ItemRef()
    return ItemRef(
        sku=item.sku,
        gtin=item.gtins[0] if item.gtins else "",
        plu=item.plu,
        description=item.description,
        category=item.category,
    )


def unit_price_minor(line: Line) -> int:
    """What one unit of a line costs (the whole line for weighed items)."""
    if line.sold_by_weight or line.quantity <= 1:
        return line.extended_minor
    return line.unit_price_minor or line.extended_minor // max(line.quantity, 1)
