"""Price-embedded (variable-measure) label rule: the label against catalog and scale."""

from __future__ import annotations

from lanesight.fusion.alerts import AlertType
from lanesight.fusion.events import BarcodeRead
from lanesight.fusion.lane import Lane, Line
from lanesight.fusion.rules import RuleHost, item_ref_of_line
from lanesight.fusion.signals import Signal, clamp

# A produce-scale reading this recent belongs to the item being scanned.
_SCALE_LINK_MS = 5_000
# Packaging (tray, film, label) a weighed pack may add on top of the net weight.
PACK_ALLOWANCE_MG = 30_000


class LabelRules:
    """Checks price- and weight-embedded labels as their lines are added."""

    def __init__(self, host: RuleHost) -> None:
        self.host = host

    def on_line_added(self, lane: Lane, line: Line, read: BarcodeRead | None) -> None:
        """Compare the label's price with the catalog price of the weight it stands for."""
        item = line.item
        if item is None or not line.label_price_minor:
            return
        label = line.label_price_minor
        if item.sold_by_weight and item.price_per_kg and item.price_per_kg.amount_minor > 0:
            per_kg = item.price_per_kg.amount_minor
            # The label's own weight, and what is on the produce scale right now.
            weights: list[int] = []
            if read is not None and read.label_weight_mg > 0:
                weights.append(read.label_weight_mg)
            since_ms = line.added_ms - lane.produce_weight_ms
            if lane.produce_weight_mg > 0 and 0 <= since_ms <= _SCALE_LINK_MS:
                weights.append(lane.produce_weight_mg)
            for weight_mg in weights:
                expected = per_kg * weight_mg // 1_000_000
                if expected - label > max(label * 0.05, 25):
                    self._emit(lane, line, expected, 0.85)
                    return
        elif item.unit_price is not None and item.unit_price.amount_minor > 0:
            expected = item.unit_price.amount_minor * max(line.quantity, 1)
            if expected - label > max(expected * 0.1, 25):
                self._emit(lane, line, expected, 0.8)

    def _emit(self, lane: Lane, line: Line, expected_minor: int, confidence: float) -> None:
        self.host.emit(
            lane,
            Signal(
                type=AlertType.PRICE_EMBEDDED_LABEL_MISMATCH,
                confidence=clamp(confidence),
                amount_minor=expected_minor - line.label_price_minor,
                currency=line.currency,
                event_ids=[line.event_id],
                at_ms=line.added_ms,
                item=item_ref_of_line(line),
                item_keys={f"line:{line.line_id}"},
                detail={"label_minor": line.label_price_minor, "expected_minor": expected_minor},
            ),
        )
