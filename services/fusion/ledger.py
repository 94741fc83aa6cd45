"""The bagging-area scale ledger: stable-weight changes, tolerances and subset matching."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from lanesight.fusion.events import ScaleStatus


@dataclass(slots=True)
class WeightChange:
    """A settled change of the bagging weight: positive when something was put down."""

    delta_mg: int
    before_mg: int
    after_mg: int
    at_ms: int
    event_id: str
    # Set while the change waits for its scan (increase) or void (decrease).
    matched: bool = False
    # When the change before this one settled (crossings after it are this change's).
    previous_ms: int = 0
    # For a drop: the bagged units it most likely was, as (key, units).
    removed: list[tuple[object, int]] = field(default_factory=list)
    # For an increase: the vision track seen going down with it, when one was.
    track: Any = None
    # For an increase: (line, units) when it is a multiple of the last scanned item's
    # weight; a quantity mismatch unless a scan explains it within the window.
    multiple: Any = None
    # For a drop: how often its judgement waited for the scale to settle.
    waited: int = 0
    # For a drop that may be the carried bags or an item lifted: decided once its window
    # showed which (an item lifted comes back).
    carry_judged: bool = False
    # For a drop the camera saw nothing leave the packing area with: given until payment
    # starts (or the longer window) to come back.
    held_over_bag: bool = False


@dataclass(slots=True)
class Candidate:
    """Something the ledger may match a change against: ``units`` units of one range."""

    key: object
    low_mg: int
    high_mg: int
    units: int
    tolerance_mg: int = 0


@dataclass(slots=True)
class Match:
    """The units a change was matched to, and how far from the middle of the range it was."""

    picks: list[tuple[object, int]]
    low_mg: int
    high_mg: int
    error: float


@dataclass(slots=True)
class TransactionBagging:
    """What one transaction owns on the bagging scale, and what was there before it.

    ``carry_mg`` is weight that was on the scale when the transaction started (the
    previous shopper's bags, not yet lifted off): a drop in it is never a removal.
    ``own_bag_mg`` is the shopper's own bag; ``own_bag_declared`` is set by the POS's
    OwnBagDeclared until the bag's weight arrives.
    """

    carry_mg: int = 0
    own_bag_mg: int = 0
    own_bag_declared: bool = False
    # Weight of this transaction's items now on the scale (settled changes it accepted).
    items_mg: int = 0
    # When each settled increase of this transaction came (lane ms, in arrival order).
    rises_ms: list[int] = field(default_factory=list)

    def not_an_item(self, at_ms: int) -> None:
        """The increase settled at at_ms was a bag (the shopper's own, or one carried over)
        or an item lifted out and put back, not a new item put down."""
        if at_ms in self.rises_ms:
            self.rises_ms.remove(at_ms)

    @property
    def owned_mg(self) -> int:
        """Everything on the scale that belongs to this transaction."""
        return self.own_bag_mg + self.items_mg

    def take_carry(self, drop_mg: int) -> int:
        """Lift up to drop_mg off the carried-over weight; returns what it could not take."""
        taken = min(drop_mg, self.carry_mg)
        self.carry_mg -= taken
        return drop_mg - taken


class BaggingScaleLedger:
    """Turns bagging-scale readings into settled weight changes and matches them to items.

    A change counts once a stable weight differs from the previous stable weight by more
    than ``change_threshold_mg``; readings in motion are waited out. Tolerance for a match
    is max(floor, pct x expected), or the items' own tolerance when larger.
    """

    def __init__(
        self,
        change_threshold_mg: int = 6_000,
        tolerance_floor_mg: int = 15_000,
        tolerance_pct: float = 0.06,
        max_subset_items: int = 4,
    ) -> None:
        self.change_threshold_mg = change_threshold_mg
        self.tolerance_floor_mg = tolerance_floor_mg
        self.tolerance_pct = tolerance_pct
        self.max_subset_items = max_subset_items
        self.baseline_mg: int | None = None
        self.in_motion = False
        self.fault = False
        self.seen = False

    def on_reading(
        self, status: ScaleStatus, weight_mg: int, at_ms: int, event_id: str
    ) -> WeightChange | None:
        """Feed one reading; returns the settled change it completes, if any."""
        self.seen = True
        if status is ScaleStatus.IN_MOTION:
            self.in_motion = True
            return None
        if status is ScaleStatus.ZERO:
            weight_mg = 0
        elif status is ScaleStatus.UNDER_ZERO and weight_mg >= -self.change_threshold_mg:
            # A few grams under zero once a bag is emptied (or a little tare drift) is an
            # empty scale; further under zero is a fault.
            weight_mg = 0
        elif status is not ScaleStatus.STABLE:
            # Over capacity, under zero, not zeroed: no judgement until it is stable again.
            self.fault = True
            return None
        self.in_motion = False
        self.fault = False
        if self.baseline_mg is None:
            self.baseline_mg = weight_mg
            return None
        delta = weight_mg - self.baseline_mg
        if -self.change_threshold_mg <= delta <= self.change_threshold_mg:
            # Noise or drift: follow it so it never adds up to a change.
            self.baseline_mg = weight_mg
            return None
        change = WeightChange(delta, self.baseline_mg, weight_mg, at_ms, event_id)
        self.baseline_mg = weight_mg
        return change

    def tolerance(self, expected_mg: float, item_tolerance_mg: int = 0) -> int:
        """max(floor, pct x expected), or the item's own tolerance when larger."""
        return max(
            self.tolerance_floor_mg, int(self.tolerance_pct * expected_mg), item_tolerance_mg
        )

    def fits(self, delta_mg: int, low_mg: int, high_mg: int, item_tolerance_mg: int = 0) -> bool:
        """True when delta lies within [low, high] widened by the tolerance."""
        tol = self.tolerance((low_mg + high_mg) / 2, item_tolerance_mg)
        return low_mg - tol <= delta_mg <= high_mg + tol

    def best_match(self, delta_mg: int, candidates: list[Candidate]) -> Match | None:
        """The best set of candidate units whose weights explain delta, most recent first.

        Tries single units first (the common case), then sums and subsets of up to
        ``max_subset_items`` units across the six most recent candidates.
        """
        delta_mg = abs(delta_mg)
        best: Match | None = None
        for rank, cand in enumerate(candidates):
            match = self._score([(cand.key, 1)], cand.low_mg, cand.high_mg, cand, delta_mg, rank)
            if match is not None and (best is None or match.error < best.error):
                best = match
        if best is not None and best.error < 0.5:
            return best
        # Whole lines bagged together (every unit of the last few lines, however many).
        low = high = units = 0
        tol_extra = 0
        for rank, cand in enumerate(islice(candidates, 4)):
            low, high = low + cand.units * cand.low_mg, high + cand.units * cand.high_mg
            units += cand.units
            tol_extra = max(tol_extra, cand.tolerance_mg)
            if rank == 0 and cand.units == 1:
                continue  # a single unit was tried above
            tol = self.tolerance((low + high) / 2, tol_extra)
            if low - tol <= delta_mg <= high + tol:
                error = abs(delta_mg - (low + high) / 2) / max(high - low + 2 * tol, 1)
                error += 0.05 * min(units, self.max_subset_items)
                if best is None or error < best.error:
                    picks = [(c.key, c.units) for c in islice(candidates, rank + 1)]
                    best = Match(picks, low, high, error)
        holder = [best]
        self._search(list(islice(candidates, 6)), 0, [], 0, 0, 0, delta_mg, holder)
        return holder[0]

    def _search(
        self,
        cands: list[Candidate],
        index: int,
        picks: list[tuple[Candidate, int]],
        items: int,
        low: int,
        high: int,
        delta_mg: int,
        holder: list[Match | None],
    ) -> None:
        if items > 1:
            tol_extra = max((c.tolerance_mg for c, _ in picks), default=0)
            tol = self.tolerance((low + high) / 2, tol_extra)
            if low - tol <= delta_mg <= high + tol:
                error = abs(delta_mg - (low + high) / 2) / max(high - low + 2 * tol, 1)
                error += 0.05 * items
                current = holder[0]
                if current is None or error < current.error:
                    holder[0] = Match([(c.key, n) for c, n in picks], low, high, error)
        if index >= len(cands) or items >= self.max_subset_items:
            return
        if low - self.tolerance(low) > delta_mg:
            return
        cand = cands[index]
        for n in range(min(cand.units, self.max_subset_items - items), 0, -1):
            picks.append((cand, n))
            self._search(
                cands,
                index + 1,
                picks,
                items + n,
                low + n * cand.low_mg,
                high + n * cand.high_mg,
                delta_mg,
                holder,
            )
            picks.pop()
        self._search(cands, index + 1, picks, items, low, high, delta_mg, holder)

    def _score(
        self,
        picks: list[tuple[object, int]],
        low: int,
        high: int,
        cand: Candidate,
        delta_mg: int,
        rank: int,
    ) -> Match | None:
        tol = self.tolerance((low + high) / 2, cand.tolerance_mg)
        if not low - tol <= delta_mg <= high + tol:
            return None
        error = abs(delta_mg - (low + high) / 2) / max(high - low + 2 * tol, 1) + 0.01 * rank
        return Match(picks, low, high, error)

    def multiple_of(self, delta_mg: int, cand: Candidate) -> int:
        """How many units of cand delta weighs, when it is a clean multiple (else 0)."""
        mean = (cand.low_mg + cand.high_mg) / 2
        # Only items of a steady weight (packaged goods) tell a multiple apart from
        # something else; a loose item's range soon covers any weight when multiplied.
        if mean <= 0 or (cand.high_mg - cand.low_mg) > 0.2 * mean:
            return 0
        units = round(abs(delta_mg) / mean)
        # Beyond a few units the ranges are too wide to tell a multiple from anything else.
        if units < 2 or units > 4:
            return 0
        if self.fits(abs(delta_mg), units * cand.low_mg, units * cand.high_mg, cand.tolerance_mg):
            return units
        return 0
