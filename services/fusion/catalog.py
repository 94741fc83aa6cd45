"""The product catalog fusion judges items against: load from CSV/JSON, validate, upsert."""

from __future__ import annotations

import csv
import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lanesight.common.money import is_known_currency
from lanesight.fusion.events import Money, UnitOfMeasure
from stdnum import ean

DEMO_CATALOG = Path(__file__).parent / "data" / "catalog_demo.csv"

# A pack's net quantity as item masters write it in the description: "Spaghetti 500 g",
# "MILK 2% 1GAL", "Cola 6 x 330 ml", "KETCHUP 20OZ". The last one written counts; the end
# of a range ("nappies 9-14 kg") or a ratio ("5 kg/m2") is no quantity.
_NET_QUANTITY = re.compile(
    r"(?<![\w.,\-\u2013/])(?:(\d+)\s*[x\u00d7]\s*)?(\d+(?:[.,]\d+)?)\s*"
    r"(kg|g|lbs?|oz|fl\.?\s?oz|l|ltr|litres?|liters?|dl|cl|ml|gal)(?![a-z/])",
    re.IGNORECASE,
)
# Milligrams per unit; a volume counts as water's mass (and says it is a volume).
_MG_PER_UNIT: dict[str, tuple[float, bool]] = {
    "kg": (1_000_000, False),
    "g": (1_000, False),
    "lb": (453_592, False),
    "lbs": (453_592, False),
    "oz": (28_350, False),
    "floz": (29_574, True),
    "l": (1_000_000, True),
    "ltr": (1_000_000, True),
    "litre": (1_000_000, True),
    "litres": (1_000_000, True),
    "liter": (1_000_000, True),
    "liters": (1_000_000, True),
    "dl": (100_000, True),
    "cl": (10_000, True),
    "ml": (1_000, True),
    "gal": (3_785_412, True),
}


@functools.lru_cache(maxsize=65_536)
def stated_net(description: str) -> tuple[int, bool] | None:
    """The net quantity a description states, in milligrams (a volume as that much water),
    and whether it is a volume; None when it states none."""
    found = _NET_QUANTITY.findall(description)
    if not found:
        return None
    count, amount, unit = found[-1]
    unit = unit.lower().replace(".", "").replace(" ", "")
    per_unit, volume = _MG_PER_UNIT[unit]
    net = float(amount.replace(",", ".")) * per_unit * (int(count) if count else 1)
    return (int(net), volume) if net > 0 else None


# A catalog weight gone wrong (a new size or supplier, a typo) is off by less than this
# factor either way: a pack of gum does not become a litre of milk.
CATALOG_ERROR_FACTOR = 2

# A pack in light packaging weighs this share of the net quantity its description states:
# of a mass, and of a volume taken as water (drinks are a little lighter or heavier).
# Glass and other heavy packaging weigh more; nothing weighs less than its contents.
LABEL_MASS_SHARE = (0.97, 1.12)
LABEL_VOLUME_SHARE = (0.9, 1.15)


def label_weight_range(description: str) -> tuple[int, int] | None:
    """What one pack weighs in light packaging, by the net quantity its description states
    ("Spaghetti 500 g": 485 to 560 g; "Oat drink 1 l": 0.9 to 1.15 kg); None when it
    states none."""
    stated = stated_net(description)
    if stated is None:
        return None
    net, volume = stated
    low, high = LABEL_VOLUME_SHARE if volume else LABEL_MASS_SHARE
    return int(net * low), int(net * high)


@dataclass(slots=True, frozen=True)
class CatalogItem:
    """One product: codes, price, category, what it looks like and what it weighs."""

    sku: str
    description: str
    unit_of_measure: UnitOfMeasure
    gtins: tuple[str, ...] = ()
    plu: str = ""
    unit_price: Money | None = None
    price_per_kg: Money | None = None
    category: str = ""
    vision_labels: tuple[str, ...] = ()
    min_weight_mg: int = 0
    max_weight_mg: int = 0
    weight_tolerance_mg: int = 0
    skip_bagging: bool = False

    @property
    def sold_by_weight(self) -> bool:
        """True for items priced per kilogram."""
        return self.unit_of_measure is UnitOfMeasure.KILOGRAM

    @property
    def has_weight_range(self) -> bool:
        """True when the catalog gives a usable weight range for one unit."""
        return self.max_weight_mg > 0 and self.max_weight_mg >= self.min_weight_mg

    def price_minor(self, weight_mg: int = 0, quantity: int = 1) -> int:
        """The price of quantity units, or of weight_mg for items sold by weight."""
        if self.sold_by_weight and self.price_per_kg is not None:
            if weight_mg <= 0 and self.has_weight_range:
                weight_mg = (self.min_weight_mg + self.max_weight_mg) // 2 * max(quantity, 1)
            return self.price_per_kg.amount_minor * weight_mg // 1_000_000
        if self.unit_price is not None:
            return self.unit_price.amount_minor * max(quantity, 1)
        return 0

    @property
    def currency_code(self) -> str:
        """The currency the item is priced in."""
        money = self.unit_price or self.price_per_kg
        return money.currency_code if money else "USD"


class CatalogError(ValueError):
    """An item is invalid; ``field`` names the offending field as a path."""

    def __init__(self, field_path: str, message: str) -> None:
        self.field = field_path
        self.message = message
        super().__init__(f"{field_path}: {message}")


def normalize_gtin(code: str) -> str:
    """A GTIN-8/12/13/14 as 14 digits; raises ValueError when it is not a valid GTIN."""
    code = code.strip()
    if not code.isdigit() or len(code) not in (8, 12, 13, 14):
        raise ValueError("must be 8, 12, 13 or 14 digits")
    if not ean.is_valid(code):
        raise ValueError("check digit is wrong")
    return code.zfill(14)


def validate_item(item: CatalogItem, prefix: str = "") -> None:
    """Raise CatalogError naming the first invalid field of item."""
    if not item.sku.strip():
        raise CatalogError(f"{prefix}sku", "is required")
    for i, gtin in enumerate(item.gtins):
        try:
            normalize_gtin(gtin)
        except ValueError as exc:
            raise CatalogError(f"{prefix}gtins[{i}]", f"{gtin!r} {exc}") from None
    if item.plu and not (item.plu.isdigit() and 4 <= len(item.plu) <= 5):
        raise CatalogError(f"{prefix}plu", f"{item.plu!r} must be 4 or 5 digits")
    if item.unit_of_measure is UnitOfMeasure.UNSPECIFIED:
        raise CatalogError(f"{prefix}unit_of_measure", "must be EACH or KILOGRAM")
    for name in ("unit_price", "price_per_kg"):
        money: Money | None = getattr(item, name)
        if money is None:
            continue
        if not is_known_currency(money.currency_code):
            raise CatalogError(
                f"{prefix}{name}.currency_code",
                f"{money.currency_code!r} is not an ISO 4217 currency code",
            )
        if money.amount_minor < 0:
            raise CatalogError(f"{prefix}{name}.amount_minor", "must not be negative")
    if item.unit_of_measure is UnitOfMeasure.EACH and item.unit_price is None:
        raise CatalogError(f"{prefix}unit_price", "is required for items sold by count")
    if item.unit_of_measure is UnitOfMeasure.KILOGRAM and item.price_per_kg is None:
        raise CatalogError(f"{prefix}price_per_kg", "is required for items sold by weight")
    for name in ("min_weight_mg", "max_weight_mg", "weight_tolerance_mg"):
        if getattr(item, name) < 0:
            raise CatalogError(f"{prefix}{name}", "must not be negative")
    if item.max_weight_mg and item.min_weight_mg > item.max_weight_mg:
        raise CatalogError(f"{prefix}min_weight_mg", "must not exceed max_weight_mg")
    for i, label in enumerate(item.vision_labels):
        if not label.strip():
            raise CatalogError(f"{prefix}vision_labels[{i}]", "must not be empty")


def normalized(item: CatalogItem) -> CatalogItem:
    """The item with its GTINs as 14 digits (validate first)."""
    gtins = tuple(normalize_gtin(g) for g in item.gtins)
    if gtins == item.gtins:
        return item
    return CatalogItem(
        sku=item.sku,
        description=item.description,
        unit_of_measure=item.unit_of_measure,
        gtins=gtins,
        plu=item.plu,
        unit_price=item.unit_price,
        price_per_kg=item.price_per_kg,
        category=item.category,
        vision_labels=item.vision_labels,
        min_weight_mg=item.min_weight_mg,
        max_weight_mg=item.max_weight_mg,
        weight_tolerance_mg=item.weight_tolerance_mg,
        skip_bagging=item.skip_bagging,
    )


@dataclass
class Catalog:
    """The items of one scope (the chain, or one store's overrides), indexed for lookups."""

    items: dict[str, CatalogItem] = field(default_factory=dict)
    by_gtin: dict[str, CatalogItem] = field(default_factory=dict)
    by_plu: dict[str, CatalogItem] = field(default_factory=dict)
    by_label: dict[str, list[CatalogItem]] = field(default_factory=dict)

    def upsert(self, items: Iterable[CatalogItem]) -> tuple[int, int]:
        """Insert or replace items by SKU; returns (inserted, updated). Validate first."""
        inserted = updated = 0
        for raw in items:
            item = normalized(raw)
            old = self.items.get(item.sku)
            if old is not None:
                self._unindex(old)
                updated += 1
            else:
                inserted += 1
            self.items[item.sku] = item
            self._index(item)
        return inserted, updated

    def _index(self, item: CatalogItem) -> None:
        for gtin in item.gtins:
            self.by_gtin[gtin] = item
        if item.plu:
            self.by_plu[item.plu] = item
        for label in item.vision_labels:
            self.by_label.setdefault(label.lower(), []).append(item)

    def _unindex(self, item: CatalogItem) -> None:
        for gtin in item.gtins:
            if self.by_gtin.get(gtin) is item:
                del self.by_gtin[gtin]
        if item.plu and self.by_plu.get(item.plu) is item:
            del self.by_plu[item.plu]
        for label in item.vision_labels:
            same = self.by_label.get(label.lower(), [])
            same[:] = [other for other in same if other.sku != item.sku]


class CatalogBook:
    """The chain-wide catalog plus per-store overrides; lookups try the store first."""

    def __init__(self) -> None:
        self.chain = Catalog()
        self.stores: dict[str, Catalog] = {}

    def upsert(self, store_id: str, items: list[CatalogItem]) -> tuple[int, int]:
        """Validate every item (raising CatalogError naming items[i].field) then upsert."""
        for i, item in enumerate(items):
            validate_item(item, prefix=f"items[{i}].")
        scope = self.stores.setdefault(store_id, Catalog()) if store_id else self.chain
        return scope.upsert(items)

    def _scopes(self, store_id: str) -> tuple[Catalog, ...]:
        store = self.stores.get(store_id)
        return (store, self.chain) if store is not None else (self.chain,)

    def by_gtin(self, store_id: str, gtin: str) -> CatalogItem | None:
        """The item with this GTIN (any length; normalised to 14 digits)."""
        if not gtin:
            return None
        key = gtin.zfill(14)
        for scope in self._scopes(store_id):
            item = scope.by_gtin.get(key)
            if item is not None:
                return item
        return None

    def by_plu(self, store_id: str, plu: str) -> CatalogItem | None:
        """The item with this PLU (or variable-measure item reference)."""
        if not plu:
            return None
        for scope in self._scopes(store_id):
            item = scope.by_plu.get(plu)
            if item is not None:
                return item
        return None

    def items_by_label(self, store_id: str, label: str) -> list[CatalogItem]:
        """Every item vision label ``label`` can be (the store's first)."""
        found: list[CatalogItem] = []
        for scope in self._scopes(store_id):
            found.extend(scope.by_label.get(label.lower(), ()))
        return found

    def by_label(self, store_id: str, label: str) -> CatalogItem | None:
        """The cheapest item vision label ``label`` can be (a conservative amount at risk)."""
        found = self.items_by_label(store_id, label)
        if not found:
            return None
        return min(found, key=lambda item: item.price_minor())

    def by_sku(self, store_id: str, sku: str) -> CatalogItem | None:
        """The item with this SKU."""
        for scope in self._scopes(store_id):
            item = scope.items.get(sku)
            if item is not None:
                return item
        return None

    def currency(self, store_id: str) -> str:
        """The currency the store's catalog prices in (its first item's); "" if unknown."""
        for scope in self._scopes(store_id):
            for item in scope.items.values():
                if item.currency_code:
                    return item.currency_code
        return ""

    def lookup(self, store_id: str, gtin: str = "", plu: str = "") -> CatalogItem | None:
        """The item for a POS line: by GTIN, else by PLU."""
        return self.by_gtin(store_id, gtin) or self.by_plu(store_id, plu)

    def __len__(self) -> int:
        return len(self.chain.items) + sum(len(s.items) for s in self.stores.values())


# ---- files --------------------------------------------------------------------------

CSV_COLUMNS = (
    "sku",
    "gtins",
    "plu",
    "description",
    "unit_of_measure",
    "unit_price_minor",
    "price_per_kg_minor",
    "currency_code",
    "category",
    "vision_labels",
    "min_weight_mg",
    "max_weight_mg",
    "weight_tolerance_mg",
    "skip_bagging",
)

_UOM = {
    "each": UnitOfMeasure.EACH,
    "kg": UnitOfMeasure.KILOGRAM,
    "kilogram": UnitOfMeasure.KILOGRAM,
}


def _int(row: dict, key: str, where: str) -> int:
    raw = row.get(key)
    if raw in (None, ""):
        return 0
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise CatalogError(f"{where}{key}", f"{raw!r} is not an integer") from None


def _list(value: object) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value).split(";") if part.strip())


def item_from_mapping(row: dict, where: str = "") -> CatalogItem:
    """Build an item from one CSV row or JSON object (keys as in CSV_COLUMNS)."""
    unknown = set(row) - set(CSV_COLUMNS)
    if unknown:
        raise CatalogError(f"{where}{sorted(unknown)[0]}", "unknown column")
    uom_text = str(row.get("unit_of_measure") or "").strip().lower()
    if uom_text not in _UOM:
        raise CatalogError(f"{where}unit_of_measure", f"{uom_text!r} must be 'each' or 'kg'")
    currency = str(row.get("currency_code") or "USD").strip()
    unit_price = price_per_kg = None
    if row.get("unit_price_minor") not in (None, ""):
        unit_price = Money(_int(row, "unit_price_minor", where), currency)
    if row.get("price_per_kg_minor") not in (None, ""):
        price_per_kg = Money(_int(row, "price_per_kg_minor", where), currency)
    skip = str(row.get("skip_bagging") or "").strip().lower() in ("1", "true", "yes")
    item = CatalogItem(
        sku=str(row.get("sku") or "").strip(),
        description=str(row.get("description") or "").strip(),
        unit_of_measure=_UOM[uom_text],
        gtins=_list(row.get("gtins")),
        plu=str(row.get("plu") or "").strip(),
        unit_price=unit_price,
        price_per_kg=price_per_kg,
        category=str(row.get("category") or "").strip(),
        vision_labels=_list(row.get("vision_labels")),
        min_weight_mg=_int(row, "min_weight_mg", where),
        max_weight_mg=_int(row, "max_weight_mg", where),
        weight_tolerance_mg=_int(row, "weight_tolerance_mg", where),
        skip_bagging=skip,
    )
    validate_item(item, prefix=where)
    return item


def load_catalog_file(path: str | Path) -> list[CatalogItem]:
    """Read items from a .csv (header row, ';'-separated lists) or .json (a list of objects)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise CatalogError(f"{path.name}", "must hold a JSON list of items")
        return [item_from_mapping(row, f"{path.name}[{i}].") for i, row in enumerate(rows)]
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return [
            item_from_mapping(row, f"{path.name}:{line}.")
            for line, row in enumerate(reader, start=2)
        ]


def write_catalog_csv(items: Iterable[CatalogItem], path: str | Path) -> None:
    """Write items in the CSV format load_catalog_file reads."""
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for item in items:
            writer.writerow(
                {
                    "sku": item.sku,
                    "gtins": ";".join(item.gtins),
                    "plu": item.plu,
                    "description": item.description,
                    "unit_of_measure": "kg" if item.sold_by_weight else "each",
                    "unit_price_minor": item.unit_price.amount_minor if item.unit_price else "",
                    "price_per_kg_minor": item.price_per_kg.amount_minor
                    if item.price_per_kg
                    else "",
                    "currency_code": item.currency_code,
                    "category": item.category,
                    "vision_labels": ";".join(item.vision_labels),
                    "min_weight_mg": item.min_weight_mg,
                    "max_weight_mg": item.max_weight_mg,
                    "weight_tolerance_mg": item.weight_tolerance_mg,
                    "skip_bagging": "true" if item.skip_bagging else "",
                }
            )
