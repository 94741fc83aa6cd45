"""Shoppers at a lane, generated from a seed: honest baskets, checkout faults, loss behaviours."""

from __future__ import annotations

import random

from lanesight.fusion import events as ev
from lanesight.fusion.alerts import AlertType, PosExceptionKind
from lanesight.fusion.catalog import CatalogItem
from lanesight.simulation.scenarios.actions import (
    PeripheralHealth,
    VoidItem,
)
from lanesight.simulation.scenarios.basket import Catalogue, TransactionBuilder
from lanesight.simulation.scenarios.behaviours import (
    POS_ONLY,
    VISION_ONLY,
    honest_variation,
    stage_loss,
)
from lanesight.simulation.scenarios.scenario import Noise, Scenario

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


def build_transaction(
    rng: random.Random,
    catalogue: Catalogue,
    noise: Noise,
    scenario: Scenario,
    has_bagging_scale: bool,
    operator_id: str,
    basket_sizes: tuple[int, int] | None = None,
) -> None:
    """Fill a scenario's actions for its behaviour (honest, or one loss).

    ``basket_sizes`` (low, high) overrides the basket size range (the demo keeps it small).
    """
    tb = TransactionBuilder(rng, catalogue, noise, scenario, has_bagging_scale, operator_id)
    behaviour = scenario.behaviour
    if behaviour in POS_ONLY:
        POS_ONLY[behaviour](tb)
        return
    if basket_sizes is not None:
        size = rng.randint(*basket_sizes)
    else:
        size = rng.randint(3, 12) if scenario.self_checkout else rng.randint(4, 16)
    basket = tb.pick_basket(size)
    vision_only = behaviour in VISION_ONLY or (behaviour != "honest" and not tb.has_scale)
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
            stage_loss(tb, behaviour, basket)
        honest_variation(tb, b)
    if behaviour not in ("honest", "item_left_in_cart") and not scenario.losses:
        stage_loss(tb, behaviour, basket)
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
