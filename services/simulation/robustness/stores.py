"""Two stores of its own (EUR and USD) with items, prices and weights unlike the demo catalog."""

from __future__ import annotations

from dataclasses import dataclass

from lanesight.fusion.catalog import CatalogItem
from lanesight.fusion.events import Money, UnitOfMeasure
from stdnum import ean

# (key, description, vision class or "", kind, price in the EUR store, price in the USD
# store (both per unit, or per kg for "kg"), nominal unit weight in grams, code).
# kind: "pack" (barcode), "kg" (weighed produce, PLU), "each" (produce sold by count,
# PLU), "deli" (weighed pack with a price-embedded label, per-kg price).
_ITEMS = (
    ("oj-bravo", "Bravo orange juice 1 l", "Bravo-Orange-Juice", "pack", 189, 329, 1_080, "1"),
    ("aj-bravo", "Bravo apple juice 1 l", "Bravo-Apple-Juice", "pack", 179, 319, 1_080, "2"),
    ("oj-gm", "God Morgon orange 1 l", "God-Morgon-Orange-Juice", "pack", 259, 429, 1_090, "3"),
    ("aj-gm", "God Morgon apple 1 l", "God-Morgon-Apple-Juice", "pack", 249, 419, 1_090, "4"),
    (
        "gf-gm",
        "God Morgon grapefruit 1 l",
        "God-Morgon-Red-Grapefruit-Juice",
        "pack",
        269,
        449,
        1_090,
        "5",
    ),
    (
        "ogf-gm",
        "God Morgon orange-grapefruit",
        "God-Morgon-Orange-Red-Grapefruit-Juice",
        "pack",
        269,
        449,
        1_090,
        "6",
    ),
    (
        "trop-man",
        "Tropicana mandarin 0.85 l",
        "Tropicana-Mandarin-Morning",
        "pack",
        349,
        499,
        920,
        "7",
    ),
    ("milk-arla", "Arla whole milk 1.5 l", "Arla-Standard-Milk", "pack", 155, 279, 1_560, "8"),
    ("milk-arla-mf", "Arla semi-skimmed 1 l", "Arla-Medium-Fat-Milk", "pack", 109, 219, 1_045, "9"),
    (
        "milk-arla-eco",
        "Arla organic semi 1 l",
        "Arla-Ecological-Medium-Fat-Milk",
        "pack",
        139,
        259,
        1_045,
        "10",
    ),
    (
        "milk-garant",
        "Garant organic whole 1 l",
        "Garant-Ecological-Standard-Milk",
        "pack",
        135,
        249,
        1_045,
        "11",
    ),
    ("oat-oatly", "Oatly oat drink 1 l", "Oatly-Oat-Milk", "pack", 229, 399, 1_050, "12"),
    ("oatgurt", "Oatly oatgurt 1 kg", "Oatly-Natural-Oatghurt", "pack", 299, 549, 1_040, "13"),
    ("soyg-blue", "Alpro blueberry 500 g", "Alpro-Blueberry-Soyghurt", "pack", 219, 379, 520, "14"),
    ("soyg-van", "Alpro vanilla 500 g", "Alpro-Vanilla-Soyghurt", "pack", 219, 379, 520, "15"),
    (
        "yog-valio",
        "Valio vanilla yoghurt 1 kg",
        "Valio-Vanilla-Yoghurt",
        "pack",
        289,
        499,
        1_030,
        "16",
    ),
    (
        "yog-yoggi",
        "Yoggi strawberry 1 kg",
        "Yoggi-Strawberry-Yoghurt",
        "pack",
        249,
        459,
        1_030,
        "17",
    ),
    ("sour-arla", "Arla sour cream 300 g", "Arla-Sour-Cream", "pack", 119, 229, 318, "18"),
    ("soy-alpro", "Alpro soy drink 1 l", "Alpro-Shelf-Soy-Milk", "pack", 199, 349, 1_050, "19"),
    # Items the model has no class for.
    ("coffee", "Ground coffee 500 g", "", "pack", 649, 899, 515, "20"),
    ("choc", "Dark chocolate 100 g", "", "pack", 149, 299, 104, "21"),
    ("razor", "Razor blades 4 pack", "", "pack", 1_899, 2_499, 62, "22"),
    ("batt", "AA batteries 8 pack", "", "pack", 899, 1_299, 205, "23"),
    ("wine", "Red wine 0.75 l", "", "pack", 799, 1_499, 1_310, "24"),
    ("rice", "Basmati rice 1 kg", "", "pack", 289, 399, 1_015, "25"),
    ("deterg", "Laundry liquid 2.5 l", "", "pack", 1_249, 1_799, 2_720, "26"),
    ("water6", "Still water 6 x 1.5 l", "", "pack", 299, 549, 9_250, "27"),
    ("litter", "Cat litter 10 kg", "", "pack", 899, 1_399, 10_080, "28"),
    ("gum", "Chewing gum", "", "pack", 129, 199, 28, "29"),
    ("pasta", "Spaghetti 500 g", "", "pack", 119, 189, 508, "30"),
    ("bread", "Rye bread 750 g", "", "pack", 279, 449, 760, "31"),
    # Produce by weight (price per kg); nominal weight is one piece.
    ("apple-gd", "Apples Golden", "Golden-Delicious", "kg", 279, 440, 190, "4021"),
    ("apple-gs", "Apples Granny Smith", "Granny-Smith", "kg", 299, 460, 200, "4017"),
    ("apple-pl", "Apples Pink Lady", "Pink-Lady", "kg", 449, 660, 200, "4130"),
    ("apple-rg", "Apples Royal Gala", "Royal-Gala", "kg", 259, 420, 180, "4173"),
    ("apple-rd", "Apples Red Delicious", "Red-Delicious", "kg", 289, 440, 210, "4016"),
    ("banana", "Bananas", "Banana", "kg", 169, 150, 180, "4011"),
    ("kiwi", "Kiwis", "Kiwi", "kg", 499, 660, 90, "4030"),
    ("lemon", "Lemons", "Lemon", "kg", 349, 520, 120, "4053"),
    ("orange", "Oranges", "Orange", "kg", 229, 350, 220, "4012"),
    ("satsuma", "Satsumas", "Satsumas", "kg", 299, 480, 80, "4055"),
    ("peach", "Peaches", "Peach", "kg", 399, 550, 160, "4038"),
    ("nectarine", "Nectarines", "Nectarine", "kg", 379, 550, 150, "4036"),
    ("plum", "Plums", "Plum", "kg", 349, 490, 60, "4042"),
    ("pear", "Pears Conference", "Conference", "kg", 299, 430, 200, "3017"),
    ("tomato-vine", "Vine tomatoes", "Vine-Tomato", "kg", 449, 660, 90, "4664"),
    ("tomato-beef", "Beef tomatoes", "Beef-Tomato", "kg", 399, 590, 260, "4799"),
    ("potato-fl", "Floury potatoes", "Floury-Potato", "kg", 149, 220, 170, "4072"),
    ("potato-sw", "Sweet potatoes", "Sweet-Potato", "kg", 349, 440, 380, "4816"),
    ("onion", "Yellow onions", "Yellow-Onion", "kg", 129, 240, 150, "4093"),
    ("carrot", "Carrots", "Carrots", "kg", 119, 210, 90, "4562"),
    ("ginger", "Ginger", "Ginger", "kg", 799, 990, 110, "4612"),
    ("mushroom", "Brown mushrooms", "Brown-Cap-Mushroom", "kg", 699, 990, 20, "4650"),
    ("pepper-red", "Red peppers", "Red-Bell-Pepper", "kg", 599, 770, 180, "4088"),
    ("pepper-yel", "Yellow peppers", "Yellow-Bell-Pepper", "kg", 599, 770, 180, "4689"),
    ("pepper-or", "Orange peppers", "Orange-Bell-Pepper", "kg", 649, 790, 180, "3121"),
    ("zucchini", "Courgettes", "Zucchini", "kg", 249, 390, 300, "4067"),
    ("garlic", "Garlic", "Garlic", "kg", 899, 1_100, 50, "4608"),
    ("beet", "Red beets", "Red-Beet", "kg", 179, 330, 200, "4539"),
    # Produce by count.
    ("avocado", "Avocado", "Avocado", "each", 99, 129, 210, "4225"),
    ("mango", "Mango", "Mango", "each", 179, 149, 420, "4051"),
    ("pineapple", "Pineapple", "Pineapple", "each", 249, 399, 1_450, "4430"),
    ("melon-hd", "Honeydew melon", "Honeydew-Melon", "each", 299, 399, 1_900, "4034"),
    ("melon-ga", "Galia melon", "Galia-Melon", "each", 249, 349, 1_200, "3421"),
    ("melon-c", "Cantaloupe", "Cantaloupe", "each", 229, 329, 1_300, "4050"),
    ("watermelon", "Watermelon", "Watermelon", "each", 599, 699, 4_800, "4032"),
    ("cabbage", "White cabbage", "Cabbage", "each", 129, 199, 1_400, "4069"),
    ("cucumber", "Cucumber", "Cucumber", "each", 69, 99, 350, "4062"),
    ("leek", "Leek", "Leek", "each", 89, 149, 320, "4629"),
    ("aubergine", "Aubergine", "Aubergine", "each", 119, 179, 330, "4081"),
    ("pomegranate", "Pomegranate", "Pomegranate", "each", 149, 249, 350, "4445"),
    ("passion", "Passion fruit", "Passion-Fruit", "each", 59, 99, 40, "4397"),
    ("lime", "Lime", "Lime", "each", 39, 49, 70, "4048"),
    ("grapefruit", "Red grapefruit", "Red-Grapefruit", "each", 99, 149, 380, "4282"),
    ("asparagus", "Green asparagus bunch", "Asparagus", "each", 399, 499, 500, "4080"),
    # Weighed packs from the counter, price-embedded labels (per-kg price).
    ("ham", "Smoked ham sliced", "", "deli", 2_290, 1_990, 200, "23001"),
    ("cheese", "Aged cheese piece", "", "deli", 2_690, 2_390, 350, "23002"),
    ("steak", "Beef ribeye steak", "", "deli", 3_990, 4_190, 420, "23003"),
    ("salmon", "Salmon fillet", "", "deli", 2_990, 2_790, 380, "23004"),
)

# Per-pack weights vary this much around nominal; the catalog range allows 5 %.
PACK_SPREAD = 0.015
CATALOG_RANGE = 0.05


@dataclass(frozen=True)
class StoreItem:
    """A catalog item with what the generator needs to stage it physically."""

    item: CatalogItem
    kind: str
    vision_label: str
    nominal_mg: int
    scan_code: str  # the GTIN (14 digits) for packs, the PLU for produce and deli


@dataclass(frozen=True)
class Store:
    """One store: id, currency, scale division and items."""

    store_id: str
    currency: str
    scale_division_mg: int
    items: tuple[StoreItem, ...]

    def of_kind(self, *kinds: str) -> list[StoreItem]:
        return [s for s in self.items if s.kind in kinds]

    @property
    def catalog(self) -> list[CatalogItem]:
        return [s.item for s in self.items]


def _gtin(prefix: str, number: str) -> str:
    body = (prefix + number.zfill(12 - len(prefix)))[:12]
    return (body + ean.calc_check_digit(body)).zfill(14)


def _store(store_id: str, currency: str, column: int, prefix: str, division_mg: int) -> Store:
    items = []
    for key, text, label, kind, eur, usd, grams, code in _ITEMS:
        price = Money((eur, usd)[column], currency)
        nominal = grams * 1_000
        if kind == "pack":
            low, high = int(nominal * (1 - CATALOG_RANGE)), int(nominal * (1 + CATALOG_RANGE))
            gtin = _gtin(prefix, "77" + code.zfill(3))
            item = CatalogItem(
                sku=f"{store_id}-{key}",
                description=text,
                unit_of_measure=UnitOfMeasure.EACH,
                gtins=(gtin,),
                unit_price=price,
                category="grocery",
                vision_labels=(label,) if label else (),
                min_weight_mg=low,
                max_weight_mg=high,
            )
            scan = gtin
        elif kind == "each":
            item = CatalogItem(
                sku=f"{store_id}-{key}",
                description=text,
                unit_of_measure=UnitOfMeasure.EACH,
                plu=code,
                unit_price=price,
                category="produce",
                vision_labels=(label,),
                min_weight_mg=int(nominal * 0.7),
                max_weight_mg=int(nominal * 1.35),
            )
            scan = code
        else:
            item = CatalogItem(
                sku=f"{store_id}-{key}",
                description=text,
                unit_of_measure=UnitOfMeasure.KILOGRAM,
                plu=code,
                price_per_kg=price,
                category="produce" if kind == "kg" else "deli",
                vision_labels=(label,) if label else (),
                min_weight_mg=int(nominal * 0.6),
                max_weight_mg=int(nominal * 1.5),
            )
            scan = code
        items.append(StoreItem(item, kind, label, nominal, scan))
    return Store(store_id, currency, division_mg, tuple(items))


# A euro store whose scale counts in 5 g steps, and a US store whose scale counts 0.01 lb.
EURO_STORE = _store("eu-07", "EUR", 0, "40", 5_000)
DOLLAR_STORE = _store("us-12", "USD", 1, "0", 4_536)
STORES = (EURO_STORE, DOLLAR_STORE)
