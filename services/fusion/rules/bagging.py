"""Bagging-scale rules: unscanned item, item removed, weight mismatch, quantity mismatch."""

from __future__ import annotations

from lanesight.fusion.alerts import AlertType, ItemRef
from lanesight.fusion.events import LaneEvent, ScaleReading
from lanesight.fusion.lane import Lane, Line, Transaction
from lanesight.fusion.ledger import Candidate, Match, WeightChange
from lanesight.fusion.rules import RuleHost, item_ref_of_line, unit_price_minor
from lanesight.fusion.signals import Correction, Signal, clamp

# Scanned items are usually bagged within this long; older unbagged lines are not blamed.
_RECENT_LINE_MS = 20_000
# Identical units bagged together right after one scan are bagged within this long.
_MULTIPLE_WINDOW_MS = 8_000
# The most a POS takes to add a line after its scan.
_POS_LATENCY_MS = 1_500


class BaggingRules:
    """Reads the bagging-scale ledger against the transaction's lines."""

    def __init__(self, host: RuleHost) -> None:
        self.host = host
        self.settings = host.config.bagging
        self.jitter_ms = host.config.rules.jitter_ms

    # ---- candidates -----------------------------------------------------------------

    @staticmethod
    def _candidate(line: Line, units: int) -> Candidate:
        return Candidate(line, line.unit_low_mg, line.unit_high_mg, units, line.item_tolerance_mg)

    def unbagged(self, txn: Transaction) -> list[Candidate]:
        """Lines with units still expected on the scale, most recent first."""
        return [
            self._candidate(line, line.unbagged_units)
            for line in reversed(txn.order)
            if line.unbagged_units > 0 and line.weight_known
        ]

    def _bag(self, txn: Transaction, match: Match, delta_mg: int) -> None:
        for line, units in match.picks:
            line.bagged_units += units
            line.bagged_weight_mg += delta_mg if len(match.picks) == 1 else 0
        if len(match.picks) == 1:
            line, units = match.picks[0]
            if not line.sold_by_weight and not line.label_price_minor:
                txn.weight_samples.append((line.sku, delta_mg // units))

    # ---- readings -------------------------------------------------------------------

    def on_reading(self, lane: Lane, event: LaneEvent, reading: ScaleReading) -> None:
        """Feed a bagging-scale reading to the ledger and judge a settled change."""
        change = lane.ledger.on_reading(
            reading.status, reading.weight_mg, event.lane_time_ms, event.event_id
        )
        txn = lane.txn
        if change is None:
            return
        previous_ms, lane.last_bag_change_ms = lane.last_bag_change_ms, change.at_ms
        if txn is None or txn.tender_completed:
            return
        change.previous_ms = previous_ms
        if change.delta_mg > 0:
            self._increase(lane, txn, change)
        else:
            self._decrease(lane, txn, change)

    def _increase(self, lane: Lane, txn: Transaction, change: WeightChange) -> None:
        ledger = lane.ledger
        delta = change.delta_mg
        self.host.alerts.on_weight_change(lane, delta, self._fits_back)
        for drop in lane.pending_decreases:
            if not drop.matched and ledger.fits(delta, -drop.delta_mg, -drop.delta_mg):
                drop.matched = True  # lifted and put back
                return
        if not txn.order and delta <= self.settings.own_bag_max_mg:
            txn.own_bag_mg += delta
            return
        candidates = self.unbagged(txn)
        match = ledger.best_match(delta, candidates) if candidates else None
        if match is not None:
            self._bag(txn, match, delta)
            return
        for line in reversed(txn.order):
            if line.unbagged_units > 0 and not line.weight_known:
                if change.at_ms - line.added_ms <= _RECENT_LINE_MS:
                    # No weight known yet for the item: accept it, and learn from it.
                    self._absorb_unknown(txn, line, delta)
                    return
        last = self._latest_line(txn, change.at_ms, _MULTIPLE_WINDOW_MS)
        if last is not None and not last.sold_by_weight and self._crossed_lately(lane, change):
            units = ledger.multiple_of(delta, self._candidate(last, 1))
            if units > last.unbagged_units:
                self._quantity_mismatch(lane, txn, last, units, change)
                return
        lane.pending_increases.append(change)
        deadline = change.at_ms + self.settings.unmatched_increase_window_ms + self.jitter_ms
        lane.schedule(deadline, "increase", change)

    @staticmethod
    def _absorb_unknown(txn: Transaction, line: Line, delta_mg: int) -> None:
        units = line.unbagged_units
        line.bagged_units = line.quantity
        line.bagged_weight_mg = delta_mg
        if not line.sold_by_weight and not line.label_price_minor:
            txn.weight_samples.append((line.sku, delta_mg // max(units, 1)))

    def _crossed_lately(self, lane: Lane, change: WeightChange) -> bool:
        """With vision up, units of a scanned item reach the bag through the camera's view;
        a weight that arrived unseen is not that item's units."""
        if not lane.vision_available:
            return True
        earliest = max(change.at_ms - _MULTIPLE_WINDOW_MS, change.previous_ms + 1)
        latest = change.at_ms + self.jitter_ms
        return any(earliest <= track.entered_bagging_ms <= latest for track in lane.tracks.values())

    @staticmethod
    def _latest_line(txn: Transaction, at_ms: int, window_ms: int) -> Line | None:
        for line in reversed(txn.order):
            if not line.voided and line.weight_known:
                return line if at_ms - line.added_ms <= window_ms else None
        return None

    def _quantity_mismatch(
        self, lane: Lane, txn: Transaction, line: Line, units: int, change: WeightChange
    ) -> None:
        scanned = line.quantity
        extra = max(units - line.unbagged_units, 1)
        bagged_total = line.bagged_units + units
        line.bagged_units = line.quantity
        change.matched = True
        fit = abs(change.delta_mg - units * (line.unit_low_mg + line.unit_high_mg) / 2)
        spread = max(units * (line.unit_high_mg - line.unit_low_mg), 1)
        confidence = clamp(0.9 - 0.3 * fit / spread, 0.5, 0.92)
        self.host.emit(
            lane,
            Signal(
                type=AlertType.QUANTITY_MISMATCH,
                confidence=confidence,
                amount_minor=unit_price_minor(line) * extra,
                currency=line.currency,
                event_ids=[change.event_id, line.event_id],
                at_ms=change.at_ms,
                item=item_ref_of_line(line),
                item_keys={f"line:{line.line_id}", f"change:{change.event_id}"},
                detail={"scanned": scanned, "bagged": bagged_total},
                correction=Correction("quantity", line_id=line.line_id, units=units),
            ),
        )

    def on_increase_due(self, lane: Lane, change: WeightChange) -> None:
        """An increase found no scan in its window: a mismatch or an unscanned item."""
        txn = lane.txn
        if change.matched or txn is None:
            return
        change.matched = True
        blamed = self._recent_unbagged(txn, change)
        if blamed is not None:
            self._weight_mismatch(lane, txn, blamed, change)
            return
        delta = change.delta_mg
        threshold = lane.ledger.tolerance_floor_mg
        confidence = clamp(0.6 + 0.3 * (delta - threshold) / (4 * threshold + 1), 0.45, 0.9)
        tol = lane.ledger.tolerance(delta)
        self.host.emit(
            lane,
            Signal(
                type=AlertType.UNSCANNED_ITEM_IN_BAGGING,
                confidence=confidence,
                amount_minor=self.host.amount_for_weight(lane, delta),
                currency="USD",
                event_ids=[change.event_id],
                at_ms=change.at_ms,
                item_keys={f"change:{change.event_id}"},
                detail={"delta_mg": delta},
                correction=Correction("scan_weight", low_mg=delta - tol, high_mg=delta + tol),
            ),
        )

    def _recent_unbagged(self, txn: Transaction, change: WeightChange) -> Line | None:
        """The line the shopper most likely just bagged: scanned shortly before the change
        (or just after it, as slow as a POS can be), and not bagged yet."""
        before = self.host.config.vision.missed_scan_before_ms
        after = _POS_LATENCY_MS + self.jitter_ms
        for line in reversed(txn.order):
            if line.added_ms > change.at_ms + after:
                continue
            if line.unbagged_units > 0 and line.weight_known and not line.skip_bagging:
                return line if change.at_ms - line.added_ms <= before else None
        return None

    def _weight_mismatch(
        self, lane: Lane, txn: Transaction, line: Line, change: WeightChange
    ) -> None:
        units = line.unbagged_units
        line.bagged_units = line.quantity
        line.bagged_weight_mg = change.delta_mg
        low, high = units * line.unit_low_mg, units * line.unit_high_mg
        expected = (low + high) // 2
        tol = lane.ledger.tolerance(expected, line.item_tolerance_mg)
        off = max(low - change.delta_mg, change.delta_mg - high, 0)
        confidence = clamp(0.5 + 0.4 * off / (3 * tol + 1), 0.5, 0.9)
        item = item_ref_of_line(line)
        keys = {f"line:{line.line_id}", f"change:{change.event_id}"}
        if line.label_price_minor and change.delta_mg > high:
            price_per_kg = line.item.price_per_kg.amount_minor if line.item else 0
            expected_minor = price_per_kg * change.delta_mg // 1_000_000
            self.host.emit(
                lane,
                Signal(
                    type=AlertType.PRICE_EMBEDDED_LABEL_MISMATCH,
                    confidence=clamp(confidence + 0.1),
                    amount_minor=max(expected_minor - line.label_price_minor, 0),
                    currency=line.currency,
                    event_ids=[change.event_id, line.event_id],
                    at_ms=change.at_ms,
                    item=item,
                    item_keys=keys,
                    detail={
                        "label_minor": line.label_price_minor,
                        "expected_minor": expected_minor,
                    },
                ),
            )
            return
        seen_minor = self.host.amount_for_weight(lane, change.delta_mg)
        self.host.emit(
            lane,
            Signal(
                type=AlertType.WEIGHT_MISMATCH,
                confidence=confidence,
                amount_minor=max(seen_minor - line.extended_minor, 0),
                currency=line.currency,
                event_ids=[change.event_id, line.event_id],
                at_ms=change.at_ms,
                item=item,
                item_keys=keys,
                detail={"expected_mg": expected, "delta_mg": change.delta_mg},
            ),
        )

    def _decrease(self, lane: Lane, txn: Transaction, change: WeightChange) -> None:
        ledger = lane.ledger
        drop = -change.delta_mg
        self.host.alerts.on_weight_change(lane, change.delta_mg, self._fits_back)
        for inc in reversed(lane.pending_increases):
            if not inc.matched and ledger.fits(drop, inc.delta_mg, inc.delta_mg):
                inc.matched = True  # an unscanned item taken back out
                return
        voided = [
            self._candidate(line, line.bagged_units)
            for line in reversed(txn.order)
            if line.voided and line.bagged_units > 0 and line.weight_known
        ]
        match = ledger.best_match(drop, voided) if voided else None
        if match is not None:
            for line, units in match.picks:
                line.bagged_units -= units
            return
        bagged = [
            self._candidate(line, line.bagged_units)
            for line in reversed(txn.order)
            if not line.voided and line.bagged_units > 0 and line.weight_known
        ]
        match = ledger.best_match(drop, bagged) if bagged else None
        if match is not None:
            change.removed = list(match.picks)
        lane.pending_decreases.append(change)
        deadline = change.at_ms + self.settings.unmatched_decrease_window_ms + self.jitter_ms
        lane.schedule(deadline, "decrease", change)

    def on_decrease_due(self, lane: Lane, change: WeightChange) -> None:
        """A drop was neither put back nor voided in its window."""
        if change.matched or lane.txn is None:
            return
        change.matched = True
        drop = -change.delta_mg
        amount = 0
        item = None
        keys = {f"change:{change.event_id}"}
        event_ids = [change.event_id]
        for line, units in change.removed:
            line.bagged_units -= units
            amount += unit_price_minor(line) * units
            item = item or item_ref_of_line(line)
            event_ids.append(line.event_id)
        if not change.removed:
            amount = self.host.amount_for_weight(lane, drop)
        threshold = lane.ledger.tolerance_floor_mg
        confidence = clamp(0.6 + 0.3 * (drop - threshold) / (4 * threshold + 1), 0.45, 0.9)
        if change.removed:
            confidence = clamp(confidence + 0.05)
        tol = lane.ledger.tolerance(drop)
        self.host.emit(
            lane,
            Signal(
                type=AlertType.ITEM_REMOVED_FROM_BAGGING,
                confidence=confidence,
                amount_minor=amount,
                currency="USD",
                event_ids=event_ids,
                at_ms=change.at_ms,
                item=item or ItemRef(),
                item_keys=keys,
                detail={"delta_mg": drop},
                correction=Correction("weight_back", low_mg=drop - tol, high_mg=drop + tol),
            ),
        )

    # ---- POS lines ------------------------------------------------------------------

    def on_line_added(self, lane: Lane, txn: Transaction, line: Line) -> None:
        """A scan that comes just after its item was bagged settles the waiting increase."""
        ledger = lane.ledger
        if not line.weight_known:
            for inc in lane.pending_increases:
                if not inc.matched:
                    inc.matched = True
                    self._absorb_unknown(txn, line, inc.delta_mg)
                    return
            return
        for inc in lane.pending_increases:
            if inc.matched:
                continue
            for units in range(1, line.unbagged_units + 1):
                if ledger.fits(
                    inc.delta_mg,
                    units * line.unit_low_mg,
                    units * line.unit_high_mg,
                    line.item_tolerance_mg,
                ):
                    inc.matched = True
                    line.bagged_units += units
                    if not line.sold_by_weight and not line.label_price_minor:
                        txn.weight_samples.append((line.sku, inc.delta_mg // units))
                    return

    def on_void(self, lane: Lane, line: Line) -> None:
        """A void explains a drop that is waiting for one."""
        if not line.weight_known:
            return
        ledger = lane.ledger
        for drop in lane.pending_decreases:
            if drop.matched:
                continue
            units = line.bagged_units or line.quantity
            if ledger.fits(
                -drop.delta_mg,
                units * line.unit_low_mg,
                units * line.unit_high_mg,
                line.item_tolerance_mg,
            ):
                drop.matched = True
                line.bagged_units = 0
                return

    def _fits_back(self, low_mg: int, high_mg: int, delta_mg: int) -> bool:
        return low_mg <= delta_mg <= high_mg
