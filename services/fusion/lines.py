"""A POS line as fusion keeps it: its catalog item, price label and expected weight."""

from __future__ import annotations

from lanesight.fusion import events as ev
from lanesight.fusion.catalog import CATALOG_ERROR_FACTOR, CatalogBook, label_weight_range
from lanesight.fusion.config import BaggingSettings
from lanesight.fusion.lane import Line
from lanesight.fusion.profiles import WeightProfiles
from lanesight.fusion.rules.labels import PACK_ALLOWANCE_MG

_WEIGHED = (ev.UnitOfMeasure.KILOGRAM,)
# A catalog that gives one weight for an item (min = max) gives its net content: a pack
# weighs up to this much more (carton, tray, can), and a little less (filling tolerance).
PACKAGING_PCT = 15
NET_UNDER_PCT = 3


def new_line(
    event: ev.LaneEvent,
    p: ev.ItemAdded,
    read: ev.BarcodeRead | None,
    catalog: CatalogBook,
    store_id: str,
    currency: str,
) -> Line:
    """The line an ItemAdded adds, with its catalog item (by GTIN, a price-embedded
    label's item reference, or PLU) and the label price of a variable-measure label."""
    label_price = 0
    item = catalog.by_gtin(store_id, p.gtin) if p.gtin else None
    if p.entry_method is ev.EntryMethod.PRICE_EMBEDDED or (read and read.variable_measure):
        label_price = p.extended_price.amount_minor if p.extended_price else 0
        ref = p.plu or (read.variable_measure_item if read else "")
        item = item or catalog.by_plu(store_id, ref)
    item = item or catalog.by_plu(store_id, p.plu)
    money = p.extended_price or p.unit_price
    line = Line(
        line_id=p.line_id,
        event_id=event.event_id,
        added_ms=event.lane_time_ms,
        item=item,
        gtin=p.gtin,
        plu=p.plu,
        description=p.description or (item.description if item else ""),
        quantity=p.quantity,
        unit_price_minor=p.unit_price.amount_minor if p.unit_price else 0,
        extended_minor=p.extended_price.amount_minor if p.extended_price else 0,
        currency=money.currency_code if money else (currency or "USD"),
        weight_mg=p.weight_mg,
        entry_method=p.entry_method,
        sold_by_weight=p.unit_of_measure in _WEIGHED or (item is not None and item.sold_by_weight),
        label_price_minor=label_price,
    )
    if line.sold_by_weight:
        line.quantity = 1
    if item is not None:
        line.skip_bagging = item.skip_bagging
        line.item_tolerance_mg = item.weight_tolerance_mg
    return line


def set_expected_weight(line: Line, bagging: BaggingSettings, profiles: WeightProfiles) -> None:
    """What one unit of the line should weigh on the bagging scale, when it is known: the
    weighed amount (plus a produce-bag allowance), the weight a price label implies, the
    catalog range (or, once the camera has confirmed enough weights of the item outside
    it, the measured range: the catalog is wrong; or the weight the description's net
    quantity gives, where the catalog's is less than that), or the learned profile."""
    item = line.item
    if line.sold_by_weight and line.weight_mg > 0 and not line.label_price_minor:
        line.unit_low_mg = line.unit_high_mg = line.weight_mg
        allowance = bagging.weighed_item_allowance_mg + line.weight_mg // 20
        line.item_tolerance_mg = max(line.item_tolerance_mg, allowance)
    elif line.label_price_minor and item is not None and item.price_per_kg:
        per_kg = item.price_per_kg.amount_minor
        if per_kg <= 0:
            return
        implied = line.label_price_minor * 1_000_000 // per_kg
        line.unit_low_mg = int(implied * 0.97)
        line.unit_high_mg = int(implied * 1.03) + PACK_ALLOWANCE_MG
    elif item is not None and item.has_weight_range and not item.sold_by_weight:
        measured = profiles.measured_range(line.sku)
        if measured is not None:
            line.unit_low_mg, line.unit_high_mg = measured
        elif item.min_weight_mg == item.max_weight_mg:
            # One weight, not a range: an item master's weight is usually the net content
            # ("500 g"), and the pack on the scale weighs that plus its packaging. Once
            # enough clean transactions have weighed the pack, what it weighs here.
            net = item.min_weight_mg
            low, high = net * (100 - NET_UNDER_PCT) // 100, net * (100 + PACKAGING_PCT) // 100
            learned = profiles.expected_range(line.sku)
            if learned is not None and low <= learned[0] and learned[1] <= high:
                low, high = learned
            line.unit_low_mg, line.unit_high_mg = low, high
        else:
            line.unit_low_mg, line.unit_high_mg = item.min_weight_mg, item.max_weight_mg
            labelled = label_weight_range(item.description)
            if (
                labelled is not None
                and labelled[0] // CATALOG_ERROR_FACTOR <= item.max_weight_mg < labelled[0]
            ):
                # The catalog says the pack weighs less than the contents its description
                # states ("1 l" at 700 g): it cannot, so the catalog's weight is wrong and
                # the description's is used. Not when it is a fraction of it: a size in
                # the description that is not the pack's ("for dogs up to 30 kg").
                line.unit_low_mg, line.unit_high_mg = labelled
    else:
        learned = profiles.expected_range(line.sku)
        if learned is None:
            return
        line.unit_low_mg, line.unit_high_mg = learned
    line.weight_known = True
