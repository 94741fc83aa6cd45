"""The catalog (demo data, files, validation, upsert) and learned weight profiles."""

from __future__ import annotations

import csv
import json
import statistics

import pytest
from lanesight.fusion.alerts import AlertType
from lanesight.fusion.catalog import (
    CatalogBook,
    CatalogError,
    CatalogItem,
    label_weight_range,
    load_catalog_file,
    stated_net,
    write_catalog_csv,
)
from lanesight.fusion.events import Money, UnitOfMeasure
from lanesight.fusion.profiles import FusionStore, WeightProfiles
from stdnum import ean

from .conftest import feed, make_engine
from .scripts import Script


def test_demo_catalog_covers_every_grocery_class(demo_items, shared_data):
    with (shared_data / "grocery" / "dataset" / "classes.csv").open() as handle:
        classes = {row["Class Name (str)"] for row in csv.DictReader(handle)}
    assert len(classes) == 81
    labels = {label for item in demo_items for label in item.vision_labels}
    assert labels == classes
    banana = next(i for i in demo_items if "Banana" in i.vision_labels)
    assert banana.plu == "4011" and banana.sold_by_weight
    for item in demo_items:
        assert all(ean.is_valid(g) and len(g) == 13 for g in item.gtins), item.sku
        assert item.currency_code == "USD"
        assert 0 < item.min_weight_mg <= item.max_weight_mg, item.sku
        if item.category.startswith("produce"):
            assert item.plu.isdigit() and 3000 <= int(item.plu) <= 4999, item.sku
    assert any(not i.vision_labels for i in demo_items)  # non-grocery items for switching


def test_csv_and_json_load_the_same_items(tmp_path, demo_items):
    path = tmp_path / "catalog.csv"
    write_catalog_csv(demo_items[:10], path)
    from_csv = load_catalog_file(path)
    rows = []
    for item in from_csv:
        rows.append(
            {
                "sku": item.sku,
                "gtins": list(item.gtins),
                "plu": item.plu,
                "description": item.description,
                "unit_of_measure": "kg" if item.sold_by_weight else "each",
                "unit_price_minor": item.unit_price.amount_minor if item.unit_price else "",
                "price_per_kg_minor": item.price_per_kg.amount_minor if item.price_per_kg else "",
                "currency_code": "USD",
                "category": item.category,
                "vision_labels": list(item.vision_labels),
                "min_weight_mg": item.min_weight_mg,
                "max_weight_mg": item.max_weight_mg,
            }
        )
    json_path = tmp_path / "catalog.json"
    json_path.write_text(json.dumps(rows))
    assert load_catalog_file(json_path) == from_csv == demo_items[:10]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"gtins": ("7310865010217",)}, "items[0].gtins[0]"),  # wrong check digit
        ({"unit_price": Money(149, "DOLLARS")}, "items[0].unit_price.currency_code"),
        ({"min_weight_mg": -1}, "items[0].min_weight_mg"),
        ({"min_weight_mg": 2_000_000}, "items[0].min_weight_mg"),  # above max
        ({"sku": " "}, "items[0].sku"),
        ({"unit_price": None}, "items[0].unit_price"),
        ({"plu": "12"}, "items[0].plu"),
    ],
)
def test_upsert_rejects_invalid_items_naming_the_field(demo, change, field):
    base = demo["Arla-Medium-Fat-Milk"]
    values = {name: getattr(base, name) for name in base.__slots__}
    values.update(change)
    item = CatalogItem(**values)
    with pytest.raises(CatalogError) as error:
        CatalogBook().upsert("", [item])
    assert error.value.field == field


def test_upsert_inserts_replaces_and_store_overrides_win(demo):
    book = CatalogBook()
    milk = demo["Arla-Medium-Fat-Milk"]
    assert book.upsert("", [milk]) == (1, 0)
    dearer = CatalogItem(
        **{**{n: getattr(milk, n) for n in milk.__slots__}, "unit_price": Money(199, "USD")}
    )
    assert book.upsert("", [dearer]) == (0, 1)
    assert book.by_gtin("any", milk.gtins[0]).unit_price.amount_minor == 199
    local = CatalogItem(
        **{**{n: getattr(milk, n) for n in milk.__slots__}, "unit_price": Money(99, "USD")}
    )
    book.upsert("store-9", [local])
    assert book.by_gtin("store-9", "0" + milk.gtins[0]).unit_price.amount_minor == 99
    assert book.by_gtin("store-1", milk.gtins[0]).unit_price.amount_minor == 199
    assert book.by_label("store-1", "arla-medium-fat-milk") is not None


def test_welford_profile_learns_and_discards_outliers():
    profiles = WeightProfiles(min_samples=5, outlier_sigma=4, outlier_floor_mg=20_000)
    samples = [500_000 + d for d in (-3000, 1000, 2000, -1000, 0, 1500, -2500, 500)]
    for weight in samples:
        assert profiles.observe("sku", weight)
    assert not profiles.observe("sku", 900_000)  # a bag with two in it
    profile = profiles.profiles["sku"]
    assert profile.count == len(samples) and profile.discarded == 1
    assert profile.mean_mg == pytest.approx(statistics.mean(samples))
    assert profile.std_mg == pytest.approx(statistics.stdev(samples))
    low, high = profiles.expected_range("sku")
    assert low < 500_000 < high and high - low < 30_000


def test_profiles_and_thresholds_persist_in_sqlite(tmp_path):
    path = tmp_path / "deep" / "fusion.sqlite"
    profiles = WeightProfiles()
    for weight in (100_000, 101_000, 99_000):
        profiles.observe("sku-1", weight)
    store = FusionStore(path)
    store.save_profiles(profiles.take_dirty())
    store.save_thresholds({("store-1", "missed_scan"): 0.62})
    store.close()
    reopened = FusionStore(path)
    loaded = WeightProfiles()
    loaded.load(reopened.load_profiles())
    assert loaded.profiles["sku-1"].count == 3
    assert loaded.profiles["sku-1"].mean_mg == pytest.approx(100_000)
    assert reopened.load_thresholds() == {("store-1", "missed_scan"): 0.62}
    reopened.close()


def test_learned_profile_is_used_when_the_catalog_has_no_range(demo_items):
    soap = CatalogItem(
        sku="SOAP",
        description="Hand Soap 250 ml",
        unit_of_measure=UnitOfMeasure.EACH,
        gtins=("0012345000997",),
        unit_price=Money(349, "USD"),
        category="household",
    )
    engine = make_engine(demo_items, profiles={"min_samples": 3})
    engine.catalog.upsert("", [soap])
    for number in range(4):  # clean transactions teach fusion what the soap weighs
        s = Script(transaction_id=f"T{number}", lane=f"lane-{number}")
        s.scan(soap, weight_mg=280_000 + 1_000 * number, seen_as="")
        s.pay().finish()
        assert feed(engine, s.events()).alerts == []
    assert engine.profiles.expected_range("SOAP") is not None
    s = Script(transaction_id="T9", lane="lane-9")
    s.scan(soap, weight_mg=2_000_000, seen_as="")  # something far heavier under its code
    s.pay(wait_ms=6000).finish()
    run = feed(engine, s.events())
    assert [a.type for a in run.alerts] == [AlertType.WEIGHT_MISMATCH]


def test_weights_off_the_catalog_that_agree_become_the_measured_range():
    profiles = WeightProfiles(min_samples=5)
    # Three transactions' agreeing weights settle it when the camera confirmed one.
    assert not profiles.observe_measured("juice", 700_000, confirmed=False, source="t1")
    assert not profiles.observe_measured("juice", 705_000, confirmed=True, source="t2")
    assert profiles.measured_range("juice") is None  # two are not enough
    # A second weight from one transaction is no second shopper's.
    assert not profiles.observe_measured("juice", 702_000, confirmed=True, source="t2")
    assert profiles.measured_range("juice") is None
    assert profiles.observe_measured("juice", 698_000, confirmed=False, source="t3")
    low, high = profiles.measured_range("juice")
    assert low < 700_000 < high and high - low < 100_000
    # Unconfirmed by the camera: four needed, and a stray weight among them does not
    # stop the agreeing ones (a unit miscounted, another item's weight).
    for n, weight in enumerate((1_300_000, 2_600_000, 1_310_000, 1_290_000)):
        profiles.observe_measured("milk", weight, confirmed=False, source=f"m{n}")
    assert profiles.measured_range("milk") is None
    assert profiles.observe_measured("milk", 1_305_000, confirmed=False, source="m9")
    assert profiles.measured_range("milk")[0] > 1_200_000
    # Scattered weights (losses: whatever was really taken) never agree.
    for n, weight in enumerate((400_000, 900_000, 1_500_000, 650_000, 2_100_000) * 2):
        profiles.observe_measured("soap", weight, confirmed=True, source=f"s{n}")
    assert profiles.measured_range("soap") is None
    # They persist with the clean profiles (a prefix of the SKU keeps them apart).
    loaded = WeightProfiles(min_samples=5)
    loaded.load(profiles.take_dirty())
    assert loaded.measured_range("juice") == (low, high)
    assert loaded.expected_range("juice") is None


def test_small_packs_weights_agree_within_what_a_scale_reads():
    # Razor blades weigh 65 g where the catalog says 87 g; a bagging scale reads them at
    # 60 to 66 g. 6 % of 65 g is under 4 g: within 5 g they still agree.
    profiles = WeightProfiles(min_samples=5)
    for n, weight in enumerate((65_000, 65_000, 61_000)):
        assert not profiles.observe_measured("blades", weight, confirmed=False, source=f"b{n}")
    assert profiles.observe_measured("blades", 66_000, confirmed=False, source="b9")
    low, high = profiles.measured_range("blades")
    assert low <= 60_000 and 66_000 <= high < 72_000
    # Not beyond: weights 10 g apart are not one pack's.
    for n, weight in enumerate((65_000, 75_000, 55_000, 85_000)):
        profiles.observe_measured("gum", weight, confirmed=False, source=f"g{n}")
    assert profiles.measured_range("gum") is None


@pytest.mark.parametrize(
    ("description", "net"),
    [
        ("Spaghetti 500 g", (500_000, False)),
        ("BARILLA SPAGHETTI 500G", (500_000, False)),
        ("Arla Whole Milk 1 L", (1_000_000, True)),
        ("Pepsi 1,5l", (1_500_000, True)),
        ("Red wine 0.75 l", (750_000, True)),
        ("Sparkling Water 6 x 500 ml", (3_000_000, True)),
        ("HEINZ KETCHUP 20OZ", (567_000, False)),
        ("ORANGE JUICE 64 FL OZ", (1_892_736, True)),
        ("MILK 2% 1GAL", (3_785_412, True)),
        ("Cat litter 10 kg", (10_000_000, False)),
        ("Razor blades 4 pack", None),
        ("Apple Golden Delicious", None),
        ("Gum 12g", (12_000, False)),
        ("Model 500GT", None),  # letters go on: no unit
        ("Nappies size 4 (9-14 kg) 44 pack", None),  # a range, not the contents
        ("Tile adhesive 25 kg, 5 kg/m2", (25_000_000, False)),
    ],
)
def test_the_net_quantity_a_description_states(description, net):
    assert stated_net(description) == net


def test_a_packs_weight_by_its_label_allows_light_packaging_only():
    low, high = label_weight_range("Spaghetti 500 g")
    assert low <= 500_000 < 510_000 < high < 600_000
    low, high = label_weight_range("Oat drink 1 l")  # a volume: a drink's density varies
    assert low <= 950_000 and 1_080_000 <= high < 1_300_000  # a glass litre weighs ~1.5 kg
    assert label_weight_range("Razor blades 4 pack") is None


def test_a_catalog_weight_that_is_wrong_is_learned_and_stops_alerting(demo_items, demo):
    # The catalog says 1 l of juice weighs about 1.07 kg; this store's cartons weigh
    # 1.45 kg. The camera is unsure of the cartons, so each is a weight mismatch at first;
    # the fourth shopper's agreeing weight settles the measured range, which replaces the
    # catalog's from then on.
    juice = demo["Bravo-Apple-Juice"]
    engine = make_engine(demo_items)
    raised = []
    for number in range(12):
        s = Script(transaction_id=f"W{number}", lane=f"lane-{number}")
        s.scan(
            juice,
            weight_mg=1_450_000 + 1_000 * (number % 3),
            seen_as="Bravo-Apple-Juice",
            score=0.3,
        )
        s.pay(wait_ms=6_000).finish()
        raised.append([a.type for a in feed(engine, s.events()).alerts])
    assert raised[:3] == [[AlertType.WEIGHT_MISMATCH]] * 3
    assert raised[3:] == [[]] * 9
    assert engine.profiles.measured_range(juice.sku) is not None


def test_the_same_swap_again_and_again_does_not_teach_a_weight(demo_items, demo):
    # One shopper after another scans the gum's code for a litre of juice (a label they
    # carry): the weights agree, but a litre is no pack of gum with a wrong catalog
    # weight. Without the camera confirming the gum, every one stays a weight mismatch.
    gum = demo["GEN-GUM"]
    engine = make_engine(demo_items)
    raised = []
    for number in range(8):
        s = Script(transaction_id=f"G{number}", lane=f"lane-{number}")
        s.scan(gum, weight_mg=1_060_000 + 2_000 * (number % 3), seen_as="", score=0.0)
        s.pay(wait_ms=6_000).finish()
        raised.append([a.type for a in feed(engine, s.events()).alerts])
    assert raised == [[AlertType.WEIGHT_MISMATCH]] * 8
    assert engine.profiles.measured_range(gum.sku) is None


@pytest.mark.parametrize(
    ("description", "catalog_mg", "label"),
    [
        ("Arla semi-skimmed 1 l", 730_000, True),  # under its contents: the label's
        ("Arla semi-skimmed 1 l", 1_050_000, False),  # agrees: the catalog's
        ("Red wine 0.75 l", 1_310_000, False),  # glass: heavier is no error
        ("Dog food for dogs up to 30 kg", 2_000_000, False),  # a size, not its contents
        ("Arla semi-skimmed milk", 730_000, False),  # states nothing
    ],
)
def test_a_catalog_weight_under_the_stated_contents_is_replaced(description, catalog_mg, label):
    from lanesight.fusion.config import BaggingSettings
    from lanesight.fusion.events import EntryMethod
    from lanesight.fusion.lane import Line
    from lanesight.fusion.lines import set_expected_weight

    item = CatalogItem(
        sku="x",
        description=description,
        unit_of_measure=UnitOfMeasure.EACH,
        unit_price=Money(100, "EUR"),
        min_weight_mg=catalog_mg,
        max_weight_mg=catalog_mg + 20_000,
    )
    line = Line(
        line_id="1",
        event_id="e",
        added_ms=0,
        item=item,
        gtin="",
        plu="",
        description=description,
        quantity=1,
        unit_price_minor=100,
        extended_minor=100,
        currency="EUR",
        weight_mg=0,
        entry_method=EntryMethod.SCANNED,
        sold_by_weight=False,
    )
    set_expected_weight(line, BaggingSettings(), WeightProfiles())
    expected = (900_000, 1_150_000) if label else (catalog_mg, catalog_mg + 20_000)
    assert (line.unit_low_mg, line.unit_high_mg) == expected and line.weight_known
