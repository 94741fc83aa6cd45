"""Bagging-scale rules: unscanned item, item removed, weight mismatch, quantity mismatch."""

from __future__ import annotations

import dataclasses

from lanesight.fusion.alerts import AlertType, ItemRef
from lanesight.fusion.catalog import CATALOG_ERROR_FACTOR, label_weight_range
from lanesight.fusion.events import LaneEvent, ScaleReading
from lanesight.fusion.lane import Lane, Line, Track, Transaction
from lanesight.fusion.ledger import Candidate, Match, WeightChange
from lanesight.fusion.rules import RuleHost, item_ref_of_line, unit_price_minor
from lanesight.fusion.signals import Correction, Signal, clamp

# Scanned items are usually bagged within this long; older unbagged lines are not blamed.
_RECENT_LINE_MS = 20_000
# Identical units bagged together right after one scan are bagged within this long.
_MULTIPLE_WINDOW_MS = 8_000
# The most a POS takes to add a line after its scan.
_POS_LATENCY_MS = 1_500
# A drop due while the scale is in motion waits this long for it to settle, this often.
_SETTLE_WAIT_MS = 1_000
_SETTLE_WAITS = 3
# An item lifted out of the packing area leaves the camera's view of it this long before
# the scale settles on its absence (or, with the camera's clock, a moment after).
_LEAVE_BEFORE_MS = 5_000
_LEAVE_AFTER_MS = 1_000


def _another_items(change: WeightChange, line: Line) -> bool:
    """True when the camera saw the item that made this change scanned as another line,
    or the item waits for a code of its own (see _awaited_other)."""
    track = change.track
    if track is not None and track.line is not None and track.line is not line:
        return True
    return _awaited_other(change, line)


def _awaited_other(change: WeightChange, line: Line) -> bool:
    """True when the item that made this change waited for the code of the produce the
    camera names, and the line is of something else (the shopper moved on without it)."""
    track = change.track
    best = track.best if track is not None else None
    return bool(
        track is not None
        and track.code_wait_ms
        and best is not None
        and line.item is not None
        and not line.seen_as(best.label)
    )


def _plausible_catalog_error(line: Line, unit_mg: int) -> bool:
    """True when one unit weighing unit_mg could be the catalog's weight gone wrong: a new
    size or supplier moves a pack's weight by a fraction, not a pack of gum to a litre of
    milk (a weight many times the catalog's is a swap unless the camera confirms it)."""
    item = line.item
    if item is None or not item.has_weight_range:
        return False
    middle = (item.min_weight_mg + item.max_weight_mg) // 2
    return middle // CATALOG_ERROR_FACTOR <= unit_mg <= middle * CATALOG_ERROR_FACTOR


def _weighs_its_label(line: Line, unit_mg: int) -> bool:
    """True when one unit weighing unit_mg weighs what its description says it holds, in
    light packaging (catalog.label_weight_range). Such a pack is what was scanned; where
    the catalog's weight disagrees, the catalog is what is wrong. Glass and other heavy
    packaging fall outside and prove nothing."""
    item = line.item
    labelled = label_weight_range(item.description) if item is not None else None
    return labelled is not None and labelled[0] <= unit_mg <= labelled[1]


def _by_label(candidates: list[Candidate]) -> list[Candidate]:
    """The candidates with the label's weight (catalog.label_weight_range) for each line
    whose catalog weight it disagrees with; none when it agrees for all of them."""
    changed = False
    out = []
    for candidate in candidates:
        line = candidate.key
        item = line.item if isinstance(line, Line) else None
        labelled = label_weight_range(item.description) if item is not None else None
        if labelled is not None and (
            labelled[1] < candidate.low_mg or candidate.high_mg < labelled[0]
        ):
            candidate = dataclasses.replace(candidate, low_mg=labelled[0], high_mg=labelled[1])
            changed = True
        out.append(candidate)
    return out if changed else []


def _seen_leaving_bag(lane: Lane, change: WeightChange) -> bool:
    """True when the camera saw something leave the packing area as the weight dropped,
    or cannot tell (no camera on the lane, or one not working now)."""
    if not lane.vision_seen or not lane.vision_available:
        return True
    return any(
        change.at_ms - _LEAVE_BEFORE_MS <= track.bag_left_ms <= change.at_ms + _LEAVE_AFTER_MS
        for track in lane.tracks.values()
    )


def _weight_confidence(weight_mg: int, floor_mg: int) -> float:
    """How sure an unexplained weight change is an item: surer as it grows past twice
    the scale's tolerance floor. Under the floor it is within what a lean, a draft or
    drift moves; up to twice the floor (a hand resting on the bag) it is not enough alone
    either, and from there (a pack of gum) it is."""
    floor = max(floor_mg, 1)
    if weight_mg < floor:
        return clamp(0.45 * weight_mg / floor, 0.0, 0.45)
    if weight_mg < 2 * floor:
        return 0.45 + 0.15 * (weight_mg - floor) / floor
    return clamp(0.6 + 0.3 * (weight_mg - floor) / (4 * floor + 1), 0.45, 0.9)


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

    def unbagged(self, txn: Transaction, skipped: bool = False) -> list[Candidate]:
        """Lines with units still expected on the scale, most recent first (with
        ``skipped``, instead the lines the shopper said stay out of the bagging area)."""
        return [
            self._candidate(line, line.unbagged_units)
            for line in reversed(txn.order)
            if line.unbagged_units > 0 and line.weight_known and line.skip_bagging == skipped
        ]

    @classmethod
    def _bagged_candidate(cls, line: Line) -> Candidate:
        """The line's bagged units as a removal may take them off: at the weight they were
        measured at, when it is known for every one of them."""
        units = line.bagged_units
        if (
            units > 0
            and line.weighed_units == units
            and line.weighed_mg > 0
            and not line.sold_by_weight
        ):
            each = line.weighed_mg // units
            return Candidate(line, each, each, units, line.item_tolerance_mg)
        return cls._candidate(line, units)

    @staticmethod
    def _weighed(line: Line, units_before: int, units: int, delta_mg: int | None) -> None:
        """Note the measured weight of units just bagged (None: not known alone)."""
        if delta_mg is not None and line.weighed_units == units_before:
            line.weighed_units += units
            line.weighed_mg += delta_mg
        else:
            line.weighed_units = line.weighed_mg = 0

    def _bag(self, txn: Transaction, match: Match, delta_mg: int, at_ms: int = 0) -> None:
        for line, units in match.picks:
            if len(match.picks) == 1 and at_ms:
                line.weighed_in_ms = at_ms
            self._weighed(
                line, line.bagged_units, units, delta_mg if len(match.picks) == 1 else None
            )
            line.bagged_units += units
            line.bagged_weight_mg += delta_mg if len(match.picks) == 1 else 0
        if len(match.picks) == 1:
            line, units = match.picks[0]
            if not line.sold_by_weight and not line.label_price_minor:
                txn.weight_samples.append((line.sku, delta_mg // units))

    # ---- readings -------------------------------------------------------------------

    def on_reading(self, lane: Lane, event: LaneEvent, reading: ScaleReading) -> None:
        """Feed a bagging-scale reading to the ledger and judge a settled change."""
        txn = lane.txn
        first = lane.ledger.baseline_mg is None and txn is not None
        if first:
            lane.ledger.baseline_mg = 0  # the scale's first word, mid-transaction: from empty
        change = lane.ledger.on_reading(
            reading.status, reading.weight_mg, event.lane_time_ms, event.event_id
        )
        if change is None:
            return
        if (
            first
            and txn is not None
            and change.delta_mg > 0
            and not self._bags_scanned(lane, txn, change)
        ):
            # Weight fusion never saw arrive and no scan explains: it was there before.
            txn.bagging.carry_mg += change.delta_mg
            return
        previous_ms, lane.last_bag_change_ms = lane.last_bag_change_ms, change.at_ms
        if txn is None or not txn.selling:
            return
        change.previous_ms = previous_ms
        if change.delta_mg > 0:
            txn.bagging.items_mg += change.delta_mg
            txn.bagging.rises_ms.append(change.at_ms)
            self._increase(lane, txn, change)
        else:
            self._decrease(lane, txn, change)

    def _put_back_with(
        self, lane: Lane, txn: Transaction, change: WeightChange, candidates: list
    ) -> bool:
        """True when an increase is an item lifted out (a drop still waiting) put back
        together with scanned items still waiting for their weight."""
        ledger = lane.ledger
        for drop in lane.pending_decreases:
            rest = change.delta_mg + drop.delta_mg  # (a drop's delta is negative)
            if drop.matched or drop.carry_judged or rest <= ledger.change_threshold_mg:
                continue  # (the last shopper's bags are not put back with new items)
            match = ledger.best_match(rest, candidates)
            if match is not None:
                drop.matched = True
                self._bag(txn, match, rest, change.at_ms)
                return True
        return False

    def _bags_scanned(self, lane: Lane, txn: Transaction, change: WeightChange) -> bool:
        """True when the change is scanned items still waiting for their weight."""
        candidates = self.unbagged(txn)
        return bool(candidates) and lane.ledger.best_match(change.delta_mg, candidates) is not None

    def _increase(self, lane: Lane, txn: Transaction, change: WeightChange) -> None:
        ledger = lane.ledger
        bag = txn.bagging
        delta = change.delta_mg
        self.host.alerts.on_weight_change(lane, delta, self._fits_back)
        candidates = self.unbagged(txn)
        for drop in lane.pending_decreases:
            if not drop.matched and ledger.fits(delta, -drop.delta_mg, -drop.delta_mg):
                scanned_since = [c for c in candidates if c.key.added_ms > drop.at_ms]
                if scanned_since and ledger.best_match(delta, scanned_since) is not None:
                    break  # an item scanned since the drop, going down: not the lifted one
                drop.matched = True  # lifted and put back: no new item went down
                txn.bagging.not_an_item(change.at_ms)
                return
        match = ledger.best_match(delta, candidates) if candidates else None
        if match is None and candidates:
            # Not by the catalog's weights; by what the packs' labels say they hold, where
            # the catalog's weight disagrees (a wrong catalog weight, bagged together with
            # another item, is no unscanned item and no mismatch).
            labelled = _by_label(candidates)
            match = ledger.best_match(delta, labelled) if labelled else None
            if match is not None:
                # The label was right about these packs: their weight from now on (a
                # later void or removal is judged against it).
                ranges = {id(c.key): (c.low_mg, c.high_mg) for c in labelled}
                for picked, _ in match.picks:
                    if isinstance(picked, Line):
                        picked.unit_low_mg, picked.unit_high_mg = ranges[id(picked)]
        if match is not None:
            self._bag(txn, match, delta, change.at_ms)
            return
        if candidates and self._put_back_with(lane, txn, change, candidates):
            return
        voided = [
            self._candidate(line, line.quantity - line.bagged_units)
            for line in reversed(txn.order)
            if line.voided and line.weight_known and line.bagged_units < line.quantity
        ]
        match = ledger.best_match(delta, voided) if voided else None
        if match is not None:
            # A voided item's weight reported late: it is on the scale until taken back.
            for line, units in match.picks:
                line.bagged_units += units
            return
        if delta <= self.settings.own_bag_max_mg and (
            bag.own_bag_declared
            or (
                not any(line.bagged_units or line.unbagged_units for line in txn.order)
                and not self._named_item_went_down(lane, change)
            )
        ):
            # The shopper's own bag: declared at the POS, or put down before anything
            # scanned was bagged while no scan waits for its weight, and with no item the
            # camera could name going down with it.
            bag.own_bag_declared = False
            bag.own_bag_mg += delta
            bag.items_mg -= delta
            bag.not_an_item(change.at_ms)
            return
        if not txn.order and lane.vision_available and not self._anything_went_down(lane, change):
            # Nothing scanned yet and the camera saw nothing reach the bag: weight that was
            # there before (a reading lost before the transaction started), not an item.
            bag.carry_mg += delta
            bag.items_mg -= delta
            bag.not_an_item(change.at_ms)
            return
        for line in reversed(txn.order):
            if line.unbagged_units > 0 and not line.weight_known:
                if change.at_ms - line.added_ms <= _RECENT_LINE_MS and self.host.vision_allows(
                    lane, line, change
                ):
                    # No weight known yet for the item: accept it, and learn from it.
                    self._absorb_unknown(txn, line, delta)
                    return
        if self._known_with_unknown(lane, txn, change):
            return
        last = self._latest_line(txn, change.at_ms, _MULTIPLE_WINDOW_MS)
        if last is not None and not last.sold_by_weight and self._crossed_lately(lane, change):
            units = ledger.multiple_of(delta, self._candidate(last, 1))
            if (
                units > last.unbagged_units
                and self.host.vision_allows(lane, last, change)
                and not self.host.vision_names_other(lane, last, change)
            ):
                # Decided when the window closes: the scan of an item bagged before it
                # was scanned may still come and explain the weight.
                change.multiple = (last, units)
        lane.pending_increases.append(change)
        window = self.settings.unmatched_increase_window_ms
        held = self._held_item_went_down(lane, change)
        if held is not None:
            # Bagged while its PLU is still being looked up: its line may come later.
            window = max(window, self.host.config.vision.missed_scan_after_held_ms)
            change.track = held
        else:
            # The item the camera saw go down: if it was scanned as another line, a later
            # line's scan does not explain this weight.
            change.track = self._last_to_go_down(lane, change)
        deadline = change.at_ms + window + self.jitter_ms
        lane.schedule(deadline, "increase", change)

    def _known_with_unknown(self, lane: Lane, txn: Transaction, change: WeightChange) -> bool:
        """An increase that a waiting unit of known weight and a waiting item of unknown
        weight explain together (both put down at once): the known unit is bagged and the
        rest is the unknown item's, provided it weighs something and the camera saw nothing
        else go down with them. Without this the pair reads as an unscanned item."""
        recent = change.at_ms - _RECENT_LINE_MS
        unknowns = [
            line
            for line in reversed(txn.order)
            if line.unbagged_units > 0
            and not line.weight_known
            and not line.skip_bagging
            and line.added_ms >= recent
        ]
        if not unknowns:
            return False
        ledger = lane.ledger
        for cand in self.unbagged(txn):
            known: Line = cand.key  # type: ignore[assignment]
            if known.added_ms < recent:
                continue
            middle = (known.unit_low_mg + known.unit_high_mg) // 2
            rest = change.delta_mg - middle
            if rest < 2 * ledger.tolerance(middle, known.item_tolerance_mg):
                continue  # nothing left over beyond what the known unit may weigh
            for unknown in unknowns:
                if not self.host.vision_allows(lane, known, change, (unknown,)):
                    continue
                known.bagged_units += 1
                known.weighed_in_ms = change.at_ms
                self._absorb_unknown(txn, unknown, rest)
                return True
        return False

    def _anything_went_down(self, lane: Lane, change: WeightChange) -> bool:
        """True when the camera saw any track reach the bag just before this change."""
        earliest = max(change.at_ms - _MULTIPLE_WINDOW_MS, change.previous_ms + 1)
        latest = change.at_ms + self.jitter_ms
        return any(earliest <= t.entered_bagging_ms <= latest for t in lane.tracks.values())

    def _named_item_went_down(self, lane: Lane, change: WeightChange) -> bool:
        """True when the camera named an item reaching the bag just before this change,
        of a weight that fits it (so the change is that item, not a bag)."""
        labels = self.host.labels_near(lane, change.at_ms, since_ms=change.previous_ms)
        if not labels:
            return False
        item = self.host.catalog.by_label(lane.store_id, labels[0].label)
        if item is None or not item.has_weight_range or item.sold_by_weight:
            return True
        return lane.ledger.fits(change.delta_mg, item.min_weight_mg, item.max_weight_mg)

    @staticmethod
    def _absorb_unknown(txn: Transaction, line: Line, delta_mg: int) -> None:
        """An item of no known weight was bagged: what it weighed is its weight from now
        on (a void or a removal of it is matched against that, not against a look-alike
        of known weight), and a sample for its profile."""
        units = line.unbagged_units
        BaggingRules._weighed(line, line.bagged_units, units, delta_mg)
        line.bagged_units = line.quantity
        line.bagged_weight_mg = delta_mg
        per_unit = delta_mg // max(units, 1)
        line.unit_low_mg = line.unit_high_mg = per_unit
        line.weight_known = True
        if not line.sold_by_weight and not line.label_price_minor:
            txn.weight_samples.append((line.sku, per_unit))

    def _crossed_lately(self, lane: Lane, change: WeightChange) -> bool:
        """With vision up, units of a scanned item reach the bag through the camera's view;
        a weight that arrived unseen is not that item's units."""
        if not lane.vision_available:
            return True
        earliest = max(change.at_ms - _MULTIPLE_WINDOW_MS, change.previous_ms + 1)
        latest = change.at_ms + self.jitter_ms
        return any(earliest <= track.entered_bagging_ms <= latest for track in lane.tracks.values())

    def _held_item_went_down(self, lane: Lane, change: WeightChange) -> Track | None:
        """The item the camera saw at the scanner, with no POS line yet, that reached the
        bag for this change (its line may still come: a PLU being looked up)."""
        earliest = max(change.at_ms - _MULTIPLE_WINDOW_MS, change.previous_ms + 1)
        latest = change.at_ms + self.jitter_ms
        for track in lane.tracks.values():
            if (
                track.visited_scan
                and track.line is None
                and earliest <= track.entered_bagging_ms <= latest
            ):
                return track
        return None

    def _last_to_go_down(self, lane: Lane, change: WeightChange) -> Track | None:
        earliest = max(change.at_ms - _MULTIPLE_WINDOW_MS, change.previous_ms + 1)
        latest = change.at_ms + self.jitter_ms
        last = None
        for track in lane.tracks.values():
            if earliest <= track.entered_bagging_ms <= latest and (
                last is None or track.entered_bagging_ms > last.entered_bagging_ms
            ):
                last = track
        return last

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
        if change.track is not None and change.track.line is None:
            # The item the camera saw go down has no line yet: its code may still be
            # being entered at the produce scale.
            if self.host.defer_for_plu(lane, change.track, "increase", change):
                return
        if change.multiple is not None:
            line, units = change.multiple
            if not line.voided and units > line.unbagged_units:
                self._quantity_mismatch(lane, txn, line, units, change)
                return
        change.matched = True
        blamed = self._recent_unbagged(txn, change) or self._line_seen_going_down(change)
        if blamed is not None and _awaited_other(change, blamed):
            blamed = None  # what went down waited for a code of its own: not this line's
        if blamed is not None and change.delta_mg < min(
            2 * lane.ledger.tolerance_floor_mg, blamed.unit_low_mg // 4
        ):
            # A few grams against an item many times heavier: a hand on the bag, not the
            # item (which may still go down); no mismatch either way.
            blamed = None
        if blamed is not None:
            if self._bag_line_units(lane, txn, blamed, change):
                return  # it fits after all: the weight is no mismatch, whatever was linked
            self._weight_mismatch(lane, txn, blamed, change)
            return
        skipped = self.unbagged(txn, skipped=True)
        match = lane.ledger.best_match(change.delta_mg, skipped) if skipped else None
        if match is not None:
            self._bag(txn, match, change.delta_mg, change.at_ms)  # a skipped item bagged after all
            return
        delta = change.delta_mg
        threshold = lane.ledger.tolerance_floor_mg
        confidence = _weight_confidence(delta, threshold)
        tol = lane.ledger.tolerance(delta)
        self.host.emit(
            lane,
            Signal(
                type=AlertType.UNSCANNED_ITEM_IN_BAGGING,
                confidence=confidence,
                amount_minor=self.host.amount_for_weight(lane, delta),
                currency=self.host.currency_of(lane),
                event_ids=[change.event_id],
                at_ms=change.at_ms,
                item_keys={f"change:{change.event_id}"},
                detail={"delta_mg": delta},
                correction=Correction(
                    "scan_item",
                    low_mg=delta - tol,
                    high_mg=delta + tol,
                    labels=self.host.labels_near(lane, change.at_ms),
                ),
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

    @staticmethod
    def _line_seen_going_down(change: WeightChange) -> Line | None:
        """The unbagged line whose item the camera saw reach the bag for this change,
        however long ago it was scanned (the shopper took their time)."""
        track = change.track
        line = getattr(track, "line", None)
        if (
            line is None
            or line.voided
            or line.skip_bagging
            or not line.weight_known
            or line.unbagged_units <= 0
        ):
            return None
        return line

    def _weight_mismatch(
        self, lane: Lane, txn: Transaction, line: Line, change: WeightChange
    ) -> None:
        units = line.unbagged_units
        self._weighed(line, line.bagged_units, units, change.delta_mg)
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
        other_count = any(
            lane.ledger.fits(change.delta_mg, k * line.unit_low_mg, k * line.unit_high_mg)
            for k in range(1, units + 4)
            if k != units
        )
        if units >= 1 and not other_count and self.host.vision_allows(lane, line, change):
            # What a unit weighed off the catalog (not another count of units, nor what
            # the camera surely saw as another item): a wrong catalog weight shows as the
            # same weight again and again, one transaction after another (see
            # WeightProfiles.measured_range).
            per_unit = change.delta_mg // units
            confirmed = (
                units == 1 and self.host.vision_confirms_item(lane, line, change)
            ) or _weighs_its_label(line, per_unit)
            settled = (confirmed or _plausible_catalog_error(line, per_unit)) and (
                self.host.measured_weight(
                    line.sku,
                    per_unit,
                    confirmed,
                    f"{lane.store_id}/{lane.lane_id}/{txn.transaction_id}",
                )
            )
            if confirmed or settled:
                # The camera surely saw the scanned item go down, and nothing else of its
                # kind weighs this; or each unit weighs what its label says it holds; or
                # this weight completes the evidence that units of it weigh this here:
                # the catalog's weight is what disagrees.
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
        self.host.alerts.on_weight_change(lane, change.delta_mg, self._fits_back)
        self._judge_drop(lane, txn, change)

    def _judge_drop(self, lane: Lane, txn: Transaction, change: WeightChange) -> None:
        ledger = lane.ledger
        bag = txn.bagging
        drop = -change.delta_mg
        if bag.carry_mg and self._carry_lifted(lane, txn, change, drop):
            if not change.carry_judged and self._fits_bagged(lane, txn, drop):
                # The carried bags leaving, or one of this transaction's items lifted:
                # alike for now. An item lifted comes back within the window; judge then.
                change.carry_judged = True
                bag.items_mg -= drop
                lane.pending_decreases.append(change)
                deadline = change.at_ms + self.settings.unmatched_decrease_window_ms
                lane.schedule(deadline + self.jitter_ms, "carry", change)
                return
            drop = bag.take_carry(drop)
            self._first_item_under_carry(lane, txn)
            if drop <= ledger.change_threshold_mg:
                return
        # Only what this transaction put on the scale can be taken off it: more than that
        # is the scale re-zeroing, or weight fusion never saw arrive.
        owned = bag.items_mg
        drop = min(drop, max(owned, 0))
        bag.items_mg -= drop
        if drop <= ledger.change_threshold_mg or txn.tendering:
            # Nothing of this transaction left the scale, or the shopper is lifting their
            # bags while paying.
            return
        if drop != -change.delta_mg:
            change = WeightChange(
                -drop,
                change.before_mg,
                change.before_mg - drop,
                change.at_ms,
                change.event_id,
                previous_ms=change.previous_ms,
            )
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
                line.weighed_units = line.weighed_mg = 0
            return
        bagged = [
            self._bagged_candidate(line)
            for line in reversed(txn.order)
            if not line.voided and line.bagged_units > 0 and line.weight_known
        ]
        match = ledger.best_match(drop, bagged) if bagged else None
        if match is not None:
            change.removed = list(match.picks)
        elif bag.own_bag_mg and ledger.fits(drop, bag.own_bag_mg, bag.own_bag_mg):
            bag.own_bag_mg = 0  # the shopper's own (empty) bag taken back
            bag.items_mg += drop
            return
        lane.pending_decreases.append(change)
        deadline = change.at_ms + self.settings.unmatched_decrease_window_ms + self.jitter_ms
        lane.schedule(deadline, "decrease", change)

    def _fits_bagged(self, lane: Lane, txn: Transaction, drop_mg: int) -> bool:
        """True when a drop could be some of this transaction's bagged items (by their
        ranges: what one was measured at may have included another item put down with it)."""
        bagged = [
            self._candidate(line, line.bagged_units)
            for line in reversed(txn.order)
            if not line.voided and line.bagged_units > 0 and line.weight_known
        ]
        return bool(bagged) and lane.ledger.best_match(drop_mg, bagged) is not None

    def on_carry_due(self, lane: Lane, change: WeightChange) -> None:
        """A drop that was the carried bags or an item lifted: nothing came back (nor was
        voided), so it is judged as drops are (the carried bags first)."""
        txn = lane.txn
        if change.matched or txn is None:
            return
        if change in lane.pending_decreases:
            lane.pending_decreases.remove(change)
        txn.bagging.items_mg += -change.delta_mg
        self._judge_drop(lane, txn, change)

    def _carry_lifted(
        self, lane: Lane, txn: Transaction, change: WeightChange, drop_mg: int
    ) -> bool:
        """True when a drop is (at least partly) the previous shopper's bags leaving.

        Honest first: it is, unless the drop is exactly one of this transaction's bagged
        items, late in the transaction, with more than the carried weight never in doubt.
        """
        bag = txn.bagging
        if bag.items_mg <= lane.ledger.change_threshold_mg:
            return True  # nothing of this transaction is on the scale to take off
        ledger = lane.ledger
        bagged = [
            self._bagged_candidate(line)
            for line in reversed(txn.order)
            if not line.voided and line.bagged_units > 0 and line.weight_known
        ]
        if drop_mg > bag.carry_mg + ledger.tolerance(bag.carry_mg):
            # More than the carried bags: they went too, with some of this transaction's
            # items, unless the drop is exactly this transaction's items and the rest
            # after the carried weight is nothing it bagged (an item lifted, not bags).
            rest = drop_mg - bag.carry_mg
            return (
                not bagged
                or ledger.best_match(rest, bagged) is not None
                or ledger.best_match(drop_mg, bagged) is None
            )
        if change.at_ms - txn.started_ms <= self.settings.carry_lift_window_ms:
            return True
        if ledger.fits(drop_mg, bag.carry_mg, bag.carry_mg) and not _seen_leaving_bag(lane, change):
            # Exactly the carried weight, and the camera, watching, saw nothing of this
            # transaction's come out of the packing area: the previous shopper's bags.
            return True
        return not bagged or ledger.best_match(drop_mg, bagged) is None

    def _first_item_under_carry(self, lane: Lane, txn: Transaction) -> None:
        """Bags lifted while the first item went down read as one smaller drop: what is
        left of the carried weight may be a scanned item waiting for its weight."""
        bag = txn.bagging
        rest = bag.carry_mg
        if rest <= lane.ledger.change_threshold_mg:
            bag.carry_mg = 0 if rest < 0 else rest
            return
        candidates = self.unbagged(txn)
        match = lane.ledger.best_match(rest, candidates) if candidates else None
        if match is not None:
            bag.carry_mg = 0
            bag.items_mg += rest
            self._bag(txn, match, rest)

    def on_decrease_due(self, lane: Lane, change: WeightChange) -> None:
        """A drop was neither put back nor voided in its window."""
        if change.matched or lane.txn is None:
            return
        if lane.ledger.in_motion and change.waited < _SETTLE_WAITS:
            # Something is being put down right now (the lifted item back, often): judge
            # the drop once the scale has settled and that weight is known.
            change.waited += 1
            lane.schedule(lane.clock_ms + _SETTLE_WAIT_MS, "decrease", change)
            return
        txn = lane.txn
        if not change.held_over_bag and not txn.tendering and not _seen_leaving_bag(lane, change):
            # Nothing left the packing area in the camera's view: the item is most likely
            # held over the bag while the shopper rearranges it. It has longer to come back,
            # until payment starts.
            change.held_over_bag = True
            window = max(self.settings.unseen_decrease_window_ms, lane.clock_ms - change.at_ms)
            lane.schedule(change.at_ms + window + self.jitter_ms, "decrease", change)
            return
        change.matched = True
        drop = -change.delta_mg
        amount = 0
        item = None
        keys = {f"change:{change.event_id}"}
        event_ids = [change.event_id]
        for line, units in change.removed:
            line.bagged_units -= units
            line.weighed_units = line.weighed_mg = 0
            amount += unit_price_minor(line) * units
            item = item or item_ref_of_line(line)
            event_ids.append(line.event_id)
        if not change.removed:
            amount = self.host.amount_for_weight(lane, drop)
        threshold = lane.ledger.tolerance_floor_mg
        confidence = _weight_confidence(drop, threshold)
        if change.removed:
            confidence = clamp(confidence + 0.05)
        tol = lane.ledger.tolerance(drop)
        self.host.emit(
            lane,
            Signal(
                type=AlertType.ITEM_REMOVED_FROM_BAGGING,
                confidence=confidence,
                amount_minor=amount,
                currency=self.host.currency_of(lane),
                event_ids=event_ids,
                at_ms=change.at_ms,
                item=item or ItemRef(),
                item_keys=keys,
                detail={"delta_mg": drop},
                correction=Correction("weight_back", low_mg=drop - tol, high_mg=drop + tol),
            ),
        )

    def on_tender_started(self, lane: Lane) -> None:
        """Payment started: a drop given longer to come back is judged now (once the usual
        window for a put-back has passed)."""
        for change in lane.pending_decreases:
            if change.held_over_bag and not change.matched:
                usual = change.at_ms + self.settings.unmatched_decrease_window_ms
                lane.schedule(max(lane.clock_ms, usual + self.jitter_ms), "decrease", change)

    # ---- POS lines ------------------------------------------------------------------

    def on_line_added(self, lane: Lane, txn: Transaction, line: Line) -> None:
        """A scan that comes just after its item was bagged settles the waiting increase."""
        if not line.weight_known:
            for inc in lane.pending_increases:
                if not inc.matched and self.host.vision_allows(lane, line, inc):
                    inc.matched = True
                    self._absorb_unknown(txn, line, inc.delta_mg)
                    return
            return
        for inc in lane.pending_increases:
            if inc.matched or _another_items(inc, line):
                continue
            if self._bag_line_units(lane, txn, line, inc):
                return
        # Items bagged together before the last of them was registered (a slow POS, a
        # scan of the second as both go down): the increase is this line with others
        # still waiting for their weight.
        candidates = self.unbagged(txn)
        for inc in lane.pending_increases:
            if inc.matched or _another_items(inc, line) or len(candidates) < 2:
                continue
            match = lane.ledger.best_match(inc.delta_mg, candidates)
            if match is not None and any(picked is line for picked, _ in match.picks):
                inc.matched = True
                self._bag(txn, match, inc.delta_mg, inc.at_ms)
                return

    def on_quantity_changed(self, lane: Lane, txn: Transaction, line: Line) -> None:
        """More units keyed after the weight settled (a quantity key pressed after the
        first scan): a waiting increase that fits the units now has its scan."""
        if not line.weight_known or line.voided:
            return
        for inc in lane.pending_increases:
            if not inc.matched and self._bag_line_units(lane, txn, line, inc):
                return

    @staticmethod
    def _bag_line_units(lane: Lane, txn: Transaction, line: Line, inc: WeightChange) -> bool:
        """Bag the units of ``line`` that the increase fits, if any."""
        for units in range(1, line.unbagged_units + 1):
            if lane.ledger.fits(
                inc.delta_mg,
                units * line.unit_low_mg,
                units * line.unit_high_mg,
                line.item_tolerance_mg,
            ):
                inc.matched = True
                line.bagged_units += units
                line.weighed_in_ms = inc.at_ms
                if not line.sold_by_weight and not line.label_price_minor:
                    txn.weight_samples.append((line.sku, inc.delta_mg // units))
                return True
        return False

    def on_bagging_skipped(self, lane: Lane, txn: Transaction, line: Line) -> None:
        """The shopper pressed "skip bagging": the line is not expected on the scale."""
        line.skip_bagging = True

    def on_own_bag_declared(self, lane: Lane, txn: Transaction, bag_weight_mg: int) -> None:
        """The shopper declared their own bag: the weight already waiting for a scan is
        the bag if it fits; otherwise the next small increase will be."""
        bag = txn.bagging
        for inc in lane.pending_increases:
            if inc.matched or inc.delta_mg > self.settings.own_bag_max_mg:
                continue
            if bag_weight_mg <= 0 or lane.ledger.fits(inc.delta_mg, bag_weight_mg, bag_weight_mg):
                inc.matched = True
                bag.own_bag_mg += inc.delta_mg
                bag.items_mg -= inc.delta_mg
                bag.not_an_item(inc.at_ms)
                return
        if bag.own_bag_mg and (
            bag_weight_mg <= 0 or lane.ledger.fits(bag.own_bag_mg, bag_weight_mg, bag_weight_mg)
        ):
            return  # the bag already put down (and taken for one): declared after the fact
        bag.own_bag_declared = True

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
