"""Every exception rule: one loss case and at least one honest case each."""

from __future__ import annotations

import pytest
from lanesight.fusion import events as ev
from lanesight.fusion.alerts import FORBIDDEN_WORDS, AlertType, PosExceptionKind
from lanesight.simulation.scenarios.actions import (
    BAGGING,
    CART,
    SCAN,
    AddItem,
    CameraHealthChange,
    CartItemCount,
    EndTransaction,
    IssueRefund,
    ItemCrossesZones,
    OpenDrawerNoSale,
    OverridePrice,
    PlaceOnProduceScale,
    ScanBarcode,
    StartTransaction,
    VoidItem,
)
from lanesight.simulation.scenarios.barcodes import us_price_embedded

from .conftest import feed, make_engine, script_events
from .scripts import Script

UNSPECIFIED = ev.LaneZone.UNSPECIFIED


def assert_neutral(run) -> None:
    for alert in run.alerts:
        text = (alert.reason + " " + alert.suggested_action).lower()
        assert not any(word in text for word in FORBIDDEN_WORDS), text
        assert 0.0 <= alert.confidence <= 1.0


# ---- missed scan --------------------------------------------------------------------


def test_pass_around_at_a_staffed_lane_is_a_missed_scan(engine, demo):
    s = Script(self_checkout=False)
    s.scan(demo["Arla-Medium-Fat-Milk"])
    juice = demo["Tropicana-Mandarin-Morning"]
    track = s.track()
    s.cross(track, juice.vision_labels[0], CART, SCAN).cross(
        track, juice.vision_labels[0], SCAN, BAGGING
    )
    s.at(5000, CartItemCount(0)).pay().finish()
    run = feed(engine, s.events())
    [alert] = run.of_type(AlertType.MISSED_SCAN)
    assert alert.type is AlertType.MISSED_SCAN
    assert alert.amount_at_risk.amount_minor == juice.unit_price.amount_minor
    assert alert.reason == "Item may not have scanned — please check the last item"
    assert alert.vision_available
    assert_neutral(run)


def test_honest_items_crossing_after_their_scan_raise_nothing(engine, demo):
    s = Script(self_checkout=False)
    for label in ("Arla-Medium-Fat-Milk", "Valio-Vanilla-Yoghurt", "Oatly-Oat-Milk"):
        item = demo[label]
        track = s.track()
        s.cross(track, label, CART, SCAN)
        s.add_line(item)
        s.at(1500, ItemCrossesZones(track, label, SCAN, BAGGING))
    s.pay().finish()
    run = feed(engine, s.events())
    assert run.alerts == []


def test_an_unrecognised_object_alone_is_too_weak_to_alert(engine, demo):
    s = Script(self_checkout=False)
    s.cross(s.track(), "", CART, BAGGING, labels=(("Cabbage", 0.12),))
    s.pay().finish()
    assert feed(engine, s.events()).alerts == []


# ---- unscanned item in the bagging area ---------------------------------------------


def test_weight_added_with_no_scan_is_an_unscanned_item(engine, demo):
    s = Script()
    s.scan(demo["Arla-Medium-Fat-Milk"])
    s.at(3000, CartItemCount(0))
    s.place(1_040_000, dt_ms=2000)  # a yoghurt straight into the bag, out of view
    s.pay(wait_ms=6000).finish()
    run = feed(engine, s.events())
    [alert] = run.alerts
    assert alert.type is AlertType.UNSCANNED_ITEM_IN_BAGGING
    assert alert.amount_at_risk.amount_minor > 0
    assert "may not have scanned" in alert.reason
    assert_neutral(run)


def test_own_bag_and_bagging_just_before_the_pos_line_are_honest(engine, demo):
    s = Script()
    s.place(35_000)  # the shopper's own bag
    milk = demo["Arla-Medium-Fat-Milk"]
    track = s.track()
    s.cross(track, milk.vision_labels[0], CART, SCAN)
    s.cross(track, milk.vision_labels[0], SCAN, BAGGING)
    s.place(1_066_000)  # bagged a moment before the POS adds the line
    s.add_line(milk)
    s.scan(demo["Valio-Vanilla-Yoghurt"], weight_mg=1_041_000)
    s.pay().finish()
    assert feed(engine, s.events()).alerts == []


# ---- item removed from the bagging area ---------------------------------------------


def test_weight_lifted_without_a_void_is_an_item_removed(engine, demo):
    s = Script()
    milk = demo["Arla-Medium-Fat-Milk"]
    s.scan(milk, weight_mg=1_070_000)
    s.scan(demo["Valio-Vanilla-Yoghurt"], weight_mg=1_040_000)
    s.lift(1_070_000, dt_ms=3000)
    s.pay(wait_ms=8000).finish()
    run = feed(engine, s.events())
    [alert] = run.alerts
    assert alert.type is AlertType.ITEM_REMOVED_FROM_BAGGING
    assert alert.item.description == milk.description
    assert alert.amount_at_risk.amount_minor == milk.unit_price.amount_minor


def test_lift_and_replace_and_void_then_remove_are_honest(engine, demo):
    s = Script()
    milk = demo["Arla-Medium-Fat-Milk"]
    s.scan(milk, weight_mg=1_070_000)
    s.lift(1_070_000, dt_ms=2000).place(1_070_000, dt_ms=1500)  # made room, put it back
    line = s.scan(demo["Oatly-Oat-Milk"], weight_mg=1_060_000)
    s.at(2000, VoidItem(line, 299))
    s.lift(1_060_000, dt_ms=1000)
    s.pay().finish()
    assert feed(engine, s.events()).alerts == []


# ---- weight mismatch ----------------------------------------------------------------


def test_heavy_item_bagged_for_a_light_scan_is_a_weight_mismatch(engine, demo):
    s = Script()
    gum, earbuds = demo["GEN-GUM"], demo["GEN-EARBUDS"]
    s.scan(gum, weight_mg=220_000, seen_as="")  # earbuds scanned with the gum's barcode
    s.pay(wait_ms=6000).finish()
    run = feed(engine, s.events())
    [alert] = run.alerts
    assert alert.type is AlertType.WEIGHT_MISMATCH
    assert alert.item.description == gum.description
    assert "expected about 30 g" in alert.reason and "measured 220 g" in alert.reason
    assert earbuds.max_weight_mg >= 220_000


def test_weights_within_tolerance_are_honest(engine, demo):
    s = Script()
    s.scan(demo["Arla-Medium-Fat-Milk"], weight_mg=1_085_000 + 12_000)
    s.scan(demo["Arla-Sour-Cream"], weight_mg=310_000 - 10_000)
    s.pay().finish()
    assert feed(engine, s.events()).alerts == []


# ---- item mismatch (barcode switching) ----------------------------------------------


def test_dear_item_seen_with_a_cheap_barcode_is_an_item_mismatch(engine, demo):
    s = Script(self_checkout=False)
    milk, juice = demo["Arla-Medium-Fat-Milk"], demo["Tropicana-Mandarin-Morning"]
    s.scan(milk, bag=False, seen_as=juice.vision_labels[0], score=0.93)
    s.pay().finish()
    run = feed(engine, s.events())
    [alert] = run.alerts
    assert alert.type is AlertType.ITEM_MISMATCH
    expected = juice.unit_price.amount_minor - milk.unit_price.amount_minor
    assert alert.amount_at_risk.amount_minor == expected
    assert juice.description in alert.reason


@pytest.mark.parametrize(
    ("scanned", "seen", "score"),
    [
        ("Arla-Medium-Fat-Milk", "Arla-Medium-Fat-Milk", 0.9),  # what was scanned
        ("Arla-Medium-Fat-Milk", "Tropicana-Mandarin-Morning", 0.45),  # an unsure guess
        ("Tropicana-Mandarin-Morning", "Arla-Medium-Fat-Milk", 0.95),  # cheaper than charged
    ],
)
def test_vision_that_agrees_is_unsure_or_sees_a_cheaper_item_is_honest(
    engine, demo, scanned, seen, score
):
    s = Script(self_checkout=False)
    s.scan(demo[scanned], bag=False, seen_as=seen, score=score)
    s.pay().finish()
    assert feed(engine, s.events()).alerts == []


# ---- wrong produce PLU ---------------------------------------------------------------


def test_pricier_produce_entered_as_bananas_is_a_wrong_plu(engine, demo):
    s = Script()
    pink, banana = demo["Pink-Lady"], demo["Banana"]
    s.produce(pink, 900_000, entered=banana)
    s.pay().finish()
    run = feed(engine, s.events())
    [alert] = run.alerts
    assert alert.type is AlertType.WRONG_PRODUCE_PLU
    diff = pink.price_per_kg.amount_minor - banana.price_per_kg.amount_minor
    assert alert.amount_at_risk.amount_minor == pytest.approx(diff * 0.9, abs=2)


def test_produce_entered_with_its_own_plu_is_honest(engine, demo):
    s = Script()
    s.produce(demo["Pink-Lady"], 900_000)
    s.produce(demo["Banana"], 650_000)
    s.pay().finish()
    assert feed(engine, s.events()).alerts == []


# ---- price-embedded label ------------------------------------------------------------


def _meat(s: Script, ribeye, label_minor: int, weight_mg: int) -> None:
    data = us_price_embedded(ribeye.plu, label_minor)
    track = s.track()
    s.cross(track, "", CART, SCAN, labels=())
    s.at(300, ScanBarcode(data))
    s.lines += 1
    s.at(
        200,
        AddItem(
            str(s.lines),
            ribeye.description,
            label_minor,
            label_minor,
            plu=ribeye.plu,
            entry_method=ev.EntryMethod.PRICE_EMBEDDED,
            barcode_data=data[3:],
        ),
    )
    s.total += label_minor
    s.at(800, ItemCrossesZones(track, "", SCAN, BAGGING))
    s.place(weight_mg + 15_000)  # and its tray


def test_label_from_a_smaller_pack_is_a_price_embedded_mismatch(engine, demo):
    ribeye = demo["MEAT-00065"]
    s = Script()
    _meat(s, ribeye, label_minor=660, weight_mg=650_000)  # a 250 g label on 650 g
    s.pay(wait_ms=6000).finish()
    run = feed(engine, s.events())
    [alert] = run.alerts
    assert alert.type is AlertType.PRICE_EMBEDDED_LABEL_MISMATCH
    assert alert.amount_at_risk.amount_minor > 800


def test_label_disagreeing_with_the_produce_scale_is_caught_at_the_scan(engine, demo):
    ribeye = demo["MEAT-00065"]
    s = Script(self_checkout=False)
    s.at(100, PlaceOnProduceScale(600_000))
    data = us_price_embedded(ribeye.plu, 500)
    s.at(900, ScanBarcode(data))
    s.at(
        100,
        AddItem(
            "1",
            ribeye.description,
            500,
            500,
            plu=ribeye.plu,
            entry_method=ev.EntryMethod.PRICE_EMBEDDED,
            barcode_data=data[3:],
        ),
    )
    run = feed(engine, s.events())
    assert [a.type for a in run.alerts] == [AlertType.PRICE_EMBEDDED_LABEL_MISMATCH]


def test_a_true_price_embedded_label_is_honest(engine, demo):
    ribeye = demo["MEAT-00065"]
    s = Script()
    price = ribeye.price_per_kg.amount_minor * 650_000 // 1_000_000
    _meat(s, ribeye, label_minor=price, weight_mg=650_000)
    s.pay().finish()
    assert feed(engine, s.events()).alerts == []


# ---- quantity mismatch ---------------------------------------------------------------


def test_three_bagged_for_one_scanned_is_a_quantity_mismatch(engine, demo):
    yoghurt = demo["Valio-Vanilla-Yoghurt"]
    s = Script()
    track = s.track()
    s.cross(track, yoghurt.vision_labels[0], CART, SCAN)
    s.add_line(yoghurt)
    s.at(800, ItemCrossesZones(track, yoghurt.vision_labels[0], SCAN, BAGGING))
    s.place(3 * 1_042_000)
    s.pay().finish()
    run = feed(engine, s.events())
    [alert] = run.alerts
    assert alert.type is AlertType.QUANTITY_MISMATCH
    assert alert.amount_at_risk.amount_minor == 2 * yoghurt.unit_price.amount_minor
    assert "scanned 1, bagged about 3" in alert.reason


def test_quantity_key_then_three_bagged_is_honest(engine, demo):
    s = Script()
    s.scan(demo["Valio-Vanilla-Yoghurt"], weight_mg=1_042_000, quantity=3)
    s.pay().finish()
    assert feed(engine, s.events()).alerts == []


# ---- item left in cart ---------------------------------------------------------------


def _cart_script(demo, leave_one: bool) -> Script:
    s = Script()
    milk, juice = demo["Arla-Medium-Fat-Milk"], demo["Tropicana-Mandarin-Morning"]
    s.actions.insert(
        0,
        (
            0,
            ItemCrossesZones(
                "c1", milk.vision_labels[0], UNSPECIFIED, CART, ((milk.vision_labels[0], 0.9),)
            ),
        ),
    )
    s.actions.insert(
        1,
        (
            0,
            ItemCrossesZones(
                "c2", juice.vision_labels[0], UNSPECIFIED, CART, ((juice.vision_labels[0], 0.9),)
            ),
        ),
    )
    s.actions.insert(2, (10, CartItemCount(2)))
    s.cross("c1", milk.vision_labels[0], CART, SCAN).at(10, CartItemCount(1))
    s.add_line(milk)
    s.at(800, ItemCrossesZones("c1", milk.vision_labels[0], SCAN, BAGGING))
    s.place(1_066_000)
    if not leave_one:
        s.cross("c2", juice.vision_labels[0], CART, SCAN).at(10, CartItemCount(0))
        s.add_line(juice)
        s.at(800, ItemCrossesZones("c2", juice.vision_labels[0], SCAN, BAGGING))
        s.place(905_000)
    return s.pay().finish()


def test_item_still_in_the_cart_at_tender_is_left_in_cart(engine, demo):
    run = feed(engine, _cart_script(demo, leave_one=True).events())
    [alert] = run.alerts
    assert alert.type is AlertType.ITEM_LEFT_IN_CART
    assert (
        alert.amount_at_risk.amount_minor
        == demo["Tropicana-Mandarin-Morning"].unit_price.amount_minor
    )


def test_empty_cart_at_tender_is_honest(engine, demo):
    assert feed(engine, _cart_script(demo, leave_one=False).events()).alerts == []


# ---- camera tamper -------------------------------------------------------------------


def test_camera_blocked_during_a_transaction_is_camera_tamper(engine, demo):
    s = Script()
    s.at(500, CameraHealthChange(ev.CameraHealth.BLOCKED, "low detail"))
    milk = demo["Arla-Medium-Fat-Milk"]
    s.add_line(milk)  # the covered camera sees nothing of it
    s.place(1_066_000)
    s.at(6000, CameraHealthChange(ev.CameraHealth.OK))
    s.pay().finish()
    run = feed(engine, s.events())
    [alert] = run.of_type(AlertType.CAMERA_TAMPER)
    assert "blocked" in alert.reason
    assert alert.severity.name == "HIGH"


def test_a_camera_that_names_items_works_though_its_recovery_report_was_lost(engine, demo):
    s = Script(transaction_id="T1")
    s.at(500, CameraHealthChange(ev.CameraHealth.DARK, "dim"))
    s.at(6_000, CameraHealthChange(ev.CameraHealth.OK))
    s.scan(demo["Arla-Medium-Fat-Milk"], weight_mg=1_066_000)
    s.pay().finish()
    events = [  # the recovery report is lost; the camera goes on naming items
        e for e in s.events() if not (
            isinstance(e.payload, ev.CameraHealthChanged)
            and e.payload.health is ev.CameraHealth.OK
        )
    ]
    run = feed(engine, events)
    assert [a.type for a in run.alerts] == [AlertType.CAMERA_TAMPER]  # dark while in use
    engine.take_outputs()
    later = Script(transaction_id="T2")
    later.scan(demo["Arla-Medium-Fat-Milk"], weight_mg=1_066_000)
    later.pay().finish()
    start = events[-1].lane_time_ms + 5_000
    more = later.events(start_ms=start, first_sequence=events[-1].sequence + 1)
    assert feed(engine, more).alerts == []  # not raised again, transaction after transaction


def test_brief_flicker_and_a_blocked_camera_between_transactions_are_honest(engine, demo):
    s = Script()
    s.at(500, CameraHealthChange(ev.CameraHealth.DARK, "flicker"))
    s.at(600, CameraHealthChange(ev.CameraHealth.OK))
    s.scan(demo["Arla-Medium-Fat-Milk"], weight_mg=1_066_000)
    s.pay().finish()
    s.at(2000, CameraHealthChange(ev.CameraHealth.BLOCKED))  # after the transaction ended
    s.at(10_000, CameraHealthChange(ev.CameraHealth.OK))
    assert feed(engine, s.events()).alerts == []


# ---- POS exceptions ------------------------------------------------------------------


def test_void_after_tender_is_a_pos_exception_and_void_before_is_not(engine, demo):
    s = Script(self_checkout=False)
    first = s.scan(demo["Arla-Medium-Fat-Milk"], bag=False)
    second = s.scan(demo["Oatly-Oat-Milk"], bag=False)
    s.at(1000, VoidItem(first, 149, "op-1"))  # before tender: fine
    s.pay()
    s.at(2000, VoidItem(second, 299, "op-1"))
    s.finish()
    run = feed(engine, s.events())
    [alert] = run.alerts
    assert alert.pos_exception_kind is PosExceptionKind.VOID_AFTER_TENDER
    assert alert.amount_at_risk.amount_minor == 299


def test_refund_without_receipt_alerts_and_with_receipt_does_not(engine):
    actions = [
        (0, StartTransaction("R1", False, "op-1", ev.TransactionKind.RETURN)),
        (1000, IssueRefund("1", 4999, with_receipt=True)),
        (2000, IssueRefund("2", 2499, with_receipt=False)),
        (3000, EndTransaction(-7498, 2)),
    ]
    run = feed(engine, script_events(actions, transaction_id="R1", self_checkout=False))
    [alert] = run.alerts
    assert alert.pos_exception_kind is PosExceptionKind.REFUND_WITHOUT_RECEIPT
    assert alert.amount_at_risk.amount_minor == 2499


def test_no_sale_drawer_open_outside_a_transaction(engine):
    run = feed(engine, script_events([(0, OpenDrawerNoSale("op-1"))], transaction_id="NS1"))
    [alert] = run.alerts
    assert alert.pos_exception_kind is PosExceptionKind.NO_SALE_DRAWER_OPEN
    assert alert.transaction_id == "NS1"
    assert alert.severity.name == "LOW"


def test_large_override_alerts_and_a_small_one_does_not(engine, demo):
    s = Script(self_checkout=False)
    earbuds = demo["GEN-EARBUDS"]
    line = s.scan(earbuds, bag=False, seen_as="")
    s.at(1000, OverridePrice(line, 4999, 4499, "op-1"))  # 10 % off: within policy
    s.at(1000, OverridePrice(line, 4499, 999, "op-1"))
    s.pay().finish()
    run = feed(engine, s.events())
    [alert] = run.alerts
    assert alert.pos_exception_kind is PosExceptionKind.LARGE_PRICE_OVERRIDE
    assert alert.amount_at_risk.amount_minor == 3500


def test_excessive_voids_by_one_operator(demo_items, demo):
    engine = make_engine(demo_items, pos={"excessive_voids": 3})
    s = Script(self_checkout=False)
    for _ in range(3):
        line = s.scan(demo["Arla-Medium-Fat-Milk"], bag=False)
        s.at(500, VoidItem(line, 149, "op-1"))
    s.pay().finish()
    run = feed(engine, s.events())
    [alert] = run.alerts
    assert alert.pos_exception_kind is PosExceptionKind.EXCESSIVE_VOIDS
    assert len(alert.supporting_event_ids) == 3
