"""Per-lane state: the open transaction, its lines, vision tracks and pending windows."""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from itertools import count
from operator import attrgetter, itemgetter

from lanesight.fusion.catalog import CatalogItem
from lanesight.fusion.events import (
    BarcodeRead,
    CameraHealth,
    EntryMethod,
    LabelScore,
    LaneEvent,
    LaneZone,
)
from lanesight.fusion.ledger import BaggingScaleLedger, TransactionBagging, WeightChange

# How many recent event ids each lane keeps for duplicate detection.
RECENT_IDS = 4096

_SCORE = itemgetter(1)
_SCORE_OF = attrgetter("score")
# A view this sure of its top label votes for it (a confused view votes for nothing).
_VOTE_SCORE = 0.5


@dataclass(slots=True, eq=False)
class Line:
    """One POS line of the open transaction, with what the bagging scale made of it."""

    line_id: str
    event_id: str
    added_ms: int
    item: CatalogItem | None
    gtin: str
    plu: str
    description: str
    quantity: int
    unit_price_minor: int
    extended_minor: int
    currency: str
    weight_mg: int
    entry_method: EntryMethod
    sold_by_weight: bool
    # The range one unit should weigh on the bagging scale, when known.
    unit_low_mg: int = 0
    unit_high_mg: int = 0
    weight_known: bool = False
    item_tolerance_mg: int = 0
    skip_bagging: bool = False
    voided: bool = False
    bagged_units: int = 0
    bagged_weight_mg: int = 0
    # What the bagged units were measured to weigh, while every bagged unit's weight is
    # known (weighed_units == bagged_units): a removal must fit that, not just the range.
    weighed_mg: int = 0
    weighed_units: int = 0
    label_price_minor: int = 0
    # When the bagging scale last settled on a rise that this line's units alone explain.
    weighed_in_ms: int = 0
    # What the camera made of the line's item (the identity rules' state).
    seen: LineIdentity = field(default_factory=lambda: LineIdentity())

    @property
    def unbagged_units(self) -> int:
        """Units still expected on the bagging scale."""
        return 0 if self.voided else max(self.quantity - self.bagged_units, 0)

    @property
    def sku(self) -> str:
        """The catalog SKU, or the code the POS used when the item is unknown."""
        return self.item.sku if self.item else (self.gtin or self.plu or self.line_id)

    def seen_as(self, label: str) -> bool:
        """True when the vision label ``label`` names this line's catalog item."""
        name = label.lower()
        return self.item is not None and any(name == v.lower() for v in self.item.vision_labels)


@dataclass(slots=True)
class LineIdentity:
    """Whether the item the camera saw at the scanner is the item the POS line charged.

    Owned by the identity rules: the vision track linked to the line, the judgement
    waiting for the track's views to settle, and the alert raised about it (withdrawn
    again when later views agree with the line).
    """

    track_id: str = ""
    judge_pending: bool = False
    # The strongest mismatch signal emitted for the line (0 when none), and its alert.
    confidence: float = 0.0
    alert_id: str = ""
    withdrawn: bool = False

    @property
    def linked(self) -> bool:
        """True once a vision track is linked to the line."""
        return bool(self.track_id)


# Two tracks entering the scan zone and the bag this close together moved as one.
TWIN_MS = 400
# A recognition this sure of its top label is the camera being sure of what it sees.
SURE_SCORE = 0.6
# A produce code may reach fusion this long after its item left the scanner or the scale.
PLU_LINE_LAG_MS = 3_000


def supports(
    labels: tuple[LabelScore, ...], item_labels, floor: float = 0.1, share: float = 0.15
) -> bool:
    """True when one of the item's labels is among ``labels`` with a real score.

    A label counts only at ``floor`` or more and at ``share`` of the top label's score: a
    third guess at 0.07 says nothing about what the item is; a runner-up at 0.13 behind a
    confident wrong 0.72 does (the model's errors keep the truth close behind).
    """
    if not labels:
        return False
    own = {label.lower() for label in item_labels}
    least = max(floor, share * labels[0].score)
    return any(ls.label.lower() in own and ls.score >= least for ls in labels)


@dataclass(slots=True)
class Transaction:
    """The open POS transaction of a lane."""

    transaction_id: str
    started_ms: int
    self_checkout: bool
    operator_id: str
    lines: dict[str, Line] = field(default_factory=dict)
    order: list[Line] = field(default_factory=list)
    tender_started_ms: int = 0
    tender_completed: bool = False
    # When the camera saw items leave the cart in this transaction (the shopper unloading
    # it): what is first seen in the cart after that came later (the next shopper's).
    unloads_ms: list[int] = field(default_factory=list)
    alert_ids: list[str] = field(default_factory=list)
    # Scans (POS lines and quantity increases) that vision crossings can be matched to.
    scan_tokens: deque[ScanToken] = field(default_factory=deque)
    # Clean samples for the weight profiles: (sku, weight of one unit).
    weight_samples: list[tuple[str, int]] = field(default_factory=list)
    # What this transaction owns on the bagging scale (the bagging rules' state).
    bagging: TransactionBagging = field(default_factory=TransactionBagging)
    camera_alerted: bool = False
    # The transaction's currency: its first priced line's, else the store catalog's.
    currency: str = ""
    # A return: goods come back to the store, so what is put down, carried past the
    # scanner or left in the cart is no loss (only the POS exception rules apply).
    is_return: bool = False

    @property
    def selling(self) -> bool:
        """True while goods leaving with the shopper must be paid for: a sale, before its
        payment has completed."""
        return not self.tender_completed and not self.is_return

    @property
    def tendering(self) -> bool:
        """True once payment has started."""
        return self.tender_started_ms > 0


@dataclass(slots=True)
class ScanToken:
    """One scanned unit that may cover one item crossing into the bagging area."""

    at_ms: int
    event_id: str
    line: Line | None
    used: bool = False
    # A further unit of a multi-unit line may be bagged this much later than its scan.
    slack_ms: int = 0
    # The track the camera saw at the scanner when the scan was made, if one.
    holder: str = ""
    # A further unit of its line (past the first, or added by a quantity change): not
    # the item the camera saw at the scanner as the line was scanned.
    further: bool = False


@dataclass(slots=True)
class Track:
    """A tracked object as vision reports it."""

    track_id: str
    first_seen_ms: int
    last_seen_ms: int
    zone: LaneZone = LaneZone.UNSPECIFIED
    visited_scan: bool = False
    # When it entered and left the scan zone (0 until it did).
    scan_entered_ms: int = 0
    scan_left_ms: int = 0
    # When it last entered the scan zone (a flickering zone edge reports it again).
    scan_reentered_ms: int = 0
    entered_bagging_ms: int = 0
    labels: tuple[LabelScore, ...] = ()
    event_ids: list[str] = field(default_factory=list)
    barcode_gtin: str = ""
    recognitions: int = 0
    linked: bool = False
    score_sums: dict[str, float] = field(default_factory=dict)
    weight_sum: float = 0.0
    # How many sure recognitions put each label first (views that agree or disagree).
    top_votes: dict[str, int] = field(default_factory=dict)
    # The surest single view's top score (some view saw a product clearly).
    max_view_score: float = 0.0
    # The POS line this track was linked to.
    line: Line | None = None
    # A scan was made while the camera saw this track alone at the scanner (its scan).
    scan_held: bool = False
    # How much longer than usual its scan may come (a produce code still being looked up).
    extra_wait_ms: int = 0
    # How long it waited, in the bag, for the code of the produce the camera names.
    code_wait_ms: int = 0
    # It reached the bag before vision named it: a scan covers it once it is named.
    claim_deferred: bool = False
    # The zone it was first seen in (UNSPECIFIED: its first events said none), when it
    # last left a zone and the bagging zone, and the track that carried on where the
    # camera lost this one (a tracker that lost an item picks it up under a new id).
    first_zone: LaneZone = LaneZone.UNSPECIFIED
    left_ms: int = 0
    bag_left_ms: int = 0
    continued_by: str = ""
    # A scan covered its way into the bag (``cover``: that scan, when one token did).
    covered: bool = False
    cover: ScanToken | None = None

    @property
    def best(self) -> LabelScore | None:
        """The top label over every recognition of the track, if it was recognised."""
        return self.labels[0] if self.labels else None

    def add_recognition(self, labels: tuple[LabelScore, ...]) -> None:
        """Fold one recognition into the track's labels: a mean weighted by confidence.

        Each recognition weighs its top score squared, so a confident view outweighs a
        confused one. One frame's confusion rarely repeats on the next frames of the same
        item, and vision's later reports of a track (its running aggregate, with better
        views such as the settled item) are usually the surer ones: a carried item read
        first at 0.16 (its top label another at 0.30) and then at 0.75 holds 0.67, where
        a plain mean held 0.46.
        """
        if not labels:
            return
        self.recognitions += 1
        first = max(labels, key=_SCORE_OF)
        self.max_view_score = max(self.max_view_score, first.score)
        if first.score >= _VOTE_SCORE:
            self.top_votes[first.label] = self.top_votes.get(first.label, 0) + 1
        top = max(first.score, 1e-3)
        weight = top * top
        self.weight_sum += weight
        sums = self.score_sums
        for label in labels:
            sums[label.label] = sums.get(label.label, 0.0) + label.score * weight
        ranked = sorted(sums.items(), key=_SCORE, reverse=True)[:5]
        total_weight = self.weight_sum
        make = tuple.__new__  # what LabelScore(name, score) does, without its Python call
        self.labels = tuple(
            [make(LabelScore, (name, total / total_weight, "")) for name, total in ranked]
        )


@dataclass(slots=True)
class Recognition:
    """An item recognised in the scan zone, waiting to be linked to its POS line."""

    at_ms: int
    track_id: str
    labels: tuple[LabelScore, ...]
    event_id: str
    linked: bool = False


@dataclass(slots=True, eq=False)
class Pending:
    """A window that closes at ``deadline_ms`` of lane time unless resolved first."""

    deadline_ms: int
    kind: str
    data: object
    transaction_id: str
    done: bool = False


@dataclass(slots=True)
class Lane:
    """Everything fusion knows about one lane."""

    store_id: str
    lane_id: str
    ledger: BaggingScaleLedger
    last_sequence: int = 0
    last_event_ms: int = 0
    clock_ms: int = 0
    txn: Transaction | None = None
    recent_ids: set[str] = field(default_factory=set)
    recent_id_order: deque[str] = field(default_factory=deque)
    pending: list[tuple[int, int, Pending]] = field(default_factory=list)
    last_bag_change_ms: int = 0
    pending_increases: list[WeightChange] = field(default_factory=list)
    pending_decreases: list[WeightChange] = field(default_factory=list)
    tracks: dict[str, Track] = field(default_factory=dict)
    scan_recognitions: deque[Recognition] = field(default_factory=deque)
    lines_awaiting_vision: deque[Line] = field(default_factory=deque)
    cart_count: int = -1
    cart_count_ms: int = 0
    cart_crossing_ms: int = 0
    produce_weight_mg: int = 0
    produce_weight_ms: int = 0
    # The last weight the produce scale held before it was cleared, when it was put on,
    # and when it was cleared (its code may still be on its way from the POS).
    produce_last_mg: int = 0
    produce_last_ms: int = 0
    produce_cleared_ms: int = 0
    last_read: BarcodeRead | None = None
    last_read_ms: int = 0
    # The one track at the scanner as that barcode was read ("" if none or several).
    last_read_holder: str = ""
    camera_health: dict[str, CameraHealth] = field(default_factory=dict)
    vision_link_up: bool = True
    vision_seen: bool = False
    paused: bool = False
    pausing_alerts: set[str] = field(default_factory=set)
    data_quality_issues: int = 0
    late_events: int = 0
    gap_events: int = 0
    interventions_ms: deque[int] = field(default_factory=deque)
    # The newest lane time that arrived, how long events are held back now (how late
    # they have been arriving), and those held, as (lane time, sequence, event).
    newest_ms: int = 0
    hold_ms: int = 0
    held: list[tuple[int, int, LaneEvent]] = field(default_factory=list)
    # Live mode: the lane time of the last event and the monotonic ms it arrived at.
    anchor_lane_ms: int = 0
    anchor_mono_ms: float = -1.0
    _counter: count = field(default_factory=count)

    @property
    def key(self) -> tuple[str, str]:
        """(store_id, lane_id)."""
        return (self.store_id, self.lane_id)

    @property
    def vision_available(self) -> bool:
        """True when vision results arrive and no camera or vision link is reported down."""
        if not self.vision_seen or not self.vision_link_up:
            return False
        return all(
            h in (CameraHealth.OK, CameraHealth.UNSPECIFIED) for h in self.camera_health.values()
        )

    def schedule(self, deadline_ms: int, kind: str, data: object) -> Pending:
        """Open a window closing at deadline_ms."""
        pending = Pending(deadline_ms, kind, data, self.txn.transaction_id if self.txn else "")
        heapq.heappush(self.pending, (deadline_ms, next(self._counter), pending))
        return pending

    def next_deadline(self) -> int | None:
        """The earliest open deadline, if any."""
        while self.pending and self.pending[0][2].done:
            heapq.heappop(self.pending)
        return self.pending[0][0] if self.pending else None

    def pop_due(self, now_ms: int) -> Pending | None:
        """The next window whose deadline is before now_ms, marked done."""
        while self.pending:
            deadline, _, pending = self.pending[0]
            if pending.done:
                heapq.heappop(self.pending)
                continue
            if deadline > now_ms:
                return None
            heapq.heappop(self.pending)
            pending.done = True
            return pending
        return None

    def remember_id(self, event_id: str, limit: int = RECENT_IDS) -> None:
        """Keep the most recent event ids for duplicate detection."""
        self.recent_ids.add(event_id)
        self.recent_id_order.append(event_id)
        if len(self.recent_id_order) > limit:
            self.recent_ids.discard(self.recent_id_order.popleft())


def moved_together(one: Track, other: Track) -> bool:
    """True when two tracks went into the scan zone, or into the bag, within moments of
    each other: one item followed twice, as far as the cart is concerned."""
    entered = other.scan_entered_ms or other.first_seen_ms
    return any(
        at and abs(at - entered) <= TWIN_MS for at in (one.scan_entered_ms, one.scan_reentered_ms)
    ) or bool(
        one.entered_bagging_ms
        and other.entered_bagging_ms
        and abs(one.entered_bagging_ms - other.entered_bagging_ms) <= TWIN_MS
    )


def latest_view(track: Track) -> Recognition:
    """The track's views so far as one recognition, dated when it was last seen."""
    event_id = track.event_ids[-1] if track.event_ids else ""
    return Recognition(track.last_seen_ms, track.track_id, track.labels, event_id)
