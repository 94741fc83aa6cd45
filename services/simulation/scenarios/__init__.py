"""Shoppers at a checkout lane as timed physical actions, with ground truth.

A *scenario* is one transaction (or one POS act such as a no-sale) at one lane: a list of
``TimedAction(at_ms, action)`` (``at_ms`` from the scenario's ``start_ms``) plus the
``StagedLoss`` records saying which loss behaviour was staged, of which exception type,
for which item, and when. ``generate_lanes(seed, lanes, transactions, catalog_items)``
writes honest baskets, checkout faults and every loss behaviour from a seed;
``lane_events(scenarios)`` turns them into the ordered LaneEvent stream a lane agent
would send (``convert.event_to_pb`` makes protobuf of them, ``replay.write_jsonl`` the
JSONL `lanesight replay` reads).

Each action is physical: what a shopper, the POS or one device does. A demo can drive
the real device simulators from the same list (send ``ScanBarcode.data`` down the
scanner's serial line, make the bagging scale settle at ``total_weight_mg``, show the
camera an image of ``label``) instead of calling ``payloads()``. Every action's
``payloads()`` gives the LaneEvent payloads (with offsets in ms and the reporting
device id) the lane would emit for it.

POS (the lane agent receives these from the POS as LaneEvents):
  StartTransaction(transaction_id, self_checkout=True, operator_id="", kind=SALE)
  AddItem(line_id, description, unit_price_minor, extended_price_minor, quantity=1,
          gtin="", plu="", weight_mg=0, entry_method=SCANNED, unit_of_measure=EACH,
          barcode_data="")
  VoidItem(line_id, amount_minor, operator_id="")
  ChangeQuantity(line_id, old_quantity, new_quantity, new_extended_price_minor)
  OverridePrice(line_id, original_unit_price_minor, new_unit_price_minor, operator_id="",
                reason_code="PRICE_MATCH")
  StartTender(total_minor); CompleteTender(amount_minor, tender_type=CARD, change_minor=0)
  EndTransaction(total_minor, item_count, outcome=COMPLETED)
  OpenDrawerNoSale(operator_id, open_ms=4000)   (also the drawer opening and closing)
  IssueRefund(line_id, amount_minor, with_receipt, gtin="", operator_id="",
              original_transaction_id="")

Scanner and scales:
  ScanBarcode(data="]E07310865010217", scanner_id="scanner-1")  exactly what the scanner
      sends: AIM symbology identifier + data (UPC-A as 13 digits; price-embedded US codes
      from ``barcodes.us_price_embedded(item_ref, price_minor)``)
  ScannerNoRead(scanner_id="scanner-1")
  PlaceOnProduceScale(weight_mg, settle_ms=500)   motion, then a stable weight
  ClearProduceScale()                              the produce scale reads zero
  ProduceScaleFault(status=NOT_ZEROED)
  PlaceOnBaggingScale(total_weight_mg, settle_ms=400)    motion, then the new stable TOTAL
  RemoveFromBaggingScale(total_weight_mg, settle_ms=400) the same, after lifting something

Camera (what the vision service reports):
  ItemCrossesZones(track_id, label, from_zone, to_zone, recognized=((label, score), ...))
      ``label`` is the item's true identity (a grocery class name, "" for an object the
      model does not know); ``recognized`` is the top-k the vision service reports in
      ``to_zone`` (noise already applied). Zones: CART, SCAN, BAGGING; from_zone
      UNSPECIFIED = appears in view, to_zone UNSPECIFIED = leaves the view.
  CartItemCount(count)                 items vision counts in the cart zone
  BarcodeInView(track_id, data, gtin)  a barcode decoded from the camera frame
  CameraHealthChange(health=BLOCKED|DARK|FROZEN|MOVED|NO_SIGNAL|OK, reason="")

Printer, drawer, device health:
  PrintReceipt(document_kind="receipt"); PrinterStatus(paper=NEAR_END, cover_open=False)
  DrawerChange(state=OPEN|CLOSED)
  PeripheralHealth(device_id, kind, state, detail="")  e.g. the vision link going down

Ground truth: ``Scenario.losses`` lists ``StagedLoss(type, behaviour, at_ms, sku,
description, amount_minor, pos_kind, also)``; ``also`` names other alert types that fairly
describe the same act (a pass-around at a self-checkout is a missed scan and also an
unscanned item in the bagging area). ``Scenario.faults`` lists the honest quirks staged
(own bag, rescan after a no-read, lift and replace, vision down, camera flicker, ...).
"""

from lanesight.simulation.scenarios.actions import BAGGING, CART, SCAN
from lanesight.simulation.scenarios.scenario import (
    Noise,
    Scenario,
    StagedLoss,
    TimedAction,
    lane_events,
)
from lanesight.simulation.scenarios.shoppers import (
    SELF_CHECKOUT_LOSSES,
    STAFFED_LOSSES,
    generate_lanes,
)

__all__ = [
    "BAGGING",
    "CART",
    "SCAN",
    "SELF_CHECKOUT_LOSSES",
    "STAFFED_LOSSES",
    "Noise",
    "Scenario",
    "StagedLoss",
    "TimedAction",
    "generate_lanes",
    "lane_events",
]
