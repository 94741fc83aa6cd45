"""Vision rules: missed scan, item mismatch, wrong produce PLU, item left in cart, camera."""

from __future__ import annotations

from lanesight.fusion.alerts import AlertType
from lanesight.fusion.events import (
    BarcodeSeen,
    CameraHealth,
    CameraHealthChanged,
    EntryMethod,
    ItemRecognized,
    LaneEvent,
    LaneZone,
    ZoneCrossing,
    ZoneDirection,
    ZoneItemCount,
)
from lanesight.fusion.lane import (
    PLU_LINE_LAG_MS,
    SURE_SCORE,
    TWIN_MS,
    LabelScore,
    Lane,
    Line,
    ScanToken,
    Track,
    Transaction,
    moved_together,
    supports,
)
from lanesight.fusion.rules import RuleHost, item_ref_of
from lanesight.fusion.rules.identity import confused_with, kind_of
from lanesight.fusion.signals import Correction, Signal, clamp

_TAMPER_CONFIDENCE = {
    CameraHealth.BLOCKED: 0.92,
    CameraHealth.MOVED: 0.85,
    CameraHealth.DARK: 0.8,
    CameraHealth.FROZEN: 0.8,
    CameraHealth.NO_SIGNAL: 0.55,
}
# Health reports that a camera following tracks contradicts (a moved camera still tracks).
_BLIND = frozenset(
    {CameraHealth.BLOCKED, CameraHealth.DARK, CameraHealth.FROZEN, CameraHealth.NO_SIGNAL}
)
_HEALTH_WORDS = {
    CameraHealth.BLOCKED: "blocked",
    CameraHealth.MOVED: "moved",
    CameraHealth.DARK: "too dark",
    CameraHealth.FROZEN: "frozen",
    CameraHealth.NO_SIGNAL: "lost",
}
_MAX_TRACK_EVENTS = 8
# A recognition this sure rules out that a scan of a different item covers the track.
_SURE_SCORE = SURE_SCORE
# A top label this sure says the track is a product (not a hand, a bag, a coat), though
# maybe not which: enough to ask about a missed scan, not to name the item.
_ITEM_SCORE = 0.35
# A calibrated top label this sure is more likely than every other label together.
_LIKELY_SCORE = 0.5
# One view this sure of its top label saw a product, whichever it was.
_SEEN_PRODUCT_SCORE = 0.6
# A recognition this sure shows its camera can see.
_SEEN_WELL_SCORE = 0.3
# One view alone rules a scan out only when surer still (the model is confidently wrong
# on about one view in twenty).
_SURE_SINGLE_SCORE = 0.7
# Weight changes look this far back for the item tracks that caused them.
_BAG_LOOKBACK_MS = 8_000
# A track first seen this close to another one's end may be that item, picked up again.
_CONTINUE_MS = 1_500
# A track that left the scan zone with its crossing in lost was at the scanner since it
# left the zone before, when that was at most this long ago (a cashier weighing, keying).
_INFERRED_STAY_MS = 30_000
# An item at the scanner the camera reported nothing of for up to this long before a new
# track showed up in the bag may be that track (a lost id; a produce code keyed meanwhile).
_STALLED_MS = 12_000
# Goods first seen in the cart zone this close together arrived together; an item first
# seen there this soon after another was taken out was under it.
_ARRIVAL_MS = 1_000
_UNCOVERED_MS = 2_000
# A track first seen in the bag that left it again this soon was never seen carried in,
# nor put down: a hand, a sleeve, a bag moved (where no bagging scale can tell).
_PASSING_MS = 2_000
# A settled increase this long before or after a track's crossing into the bag can be
# its weight (a reading can be late, or lost and polled again).
_RISE_BEFORE_MS = 2_000
_RISE_AFTER_MS = 5_000
# A track whose produce code is visibly being looked up waits in steps, up to a cap.
_PLU_WAIT_STEP_MS = 2_000
_PLU_WAIT_CAP_MS = 20_000
# A read's line may reach fusion this long after it (a slow POS); waited for in steps.
_READ_TO_LINE_MS = 5_000
_READ_WAIT_STEP_MS = 1_000
# Lines whose item is weighed and looked up at the scanner (no barcode read times them).
_WEIGHED_ENTRY = (EntryMethod.PLU_LOOKUP, EntryMethod.KEYED)


def _arrivals(txn: Transaction, in_cart: list[Track]) -> list[Track]:
    """The tracks in the cart zone that came as the next shopper's goods: first seen there
    after this shopper began unloading, and either several within a moment of each other
    (a basket put down) or one that showed up with nothing taken out just before. An item
    first seen right after the goods above it were taken out is this shopper's, uncovered;
    an item put back is an old track."""
    # (With every crossing out of the cart lost, the first line says unloading began.)
    unloads = txn.unloads_ms or [line.added_ms for line in txn.order[:1]]
    if not unloads:
        return []
    late = sorted(
        (t for t in in_cart if t.first_zone is LaneZone.CART and t.first_seen_ms > unloads[0]),
        key=lambda t: t.first_seen_ms,
    )
    return [
        t
        for i, t in enumerate(late)
        if any(
            abs(other.first_seen_ms - t.first_seen_ms) <= _ARRIVAL_MS
            for other in late[max(0, i - 1) : i + 2]
            if other is not t
        )
        or not any(0 <= t.first_seen_ms - at <= _UNCOVERED_MS for at in unloads)
    ]


def _names_item(track: Track, line: Line | None) -> bool:
    """True when the track's views, more likely than not, name the line's item."""
    best = track.best
    return (
        best is not None
        and best.score >= _LIKELY_SCORE
        and line is not None
        and line.seen_as(best.label)
    )


def _sure_best(track: Track) -> LabelScore | None:
    """The track's first label if the camera is sure of it (a single view needs more)."""
    best = track.best
    least = _SURE_SCORE if track.recognitions > 1 else _SURE_SINGLE_SCORE
    return best if best is not None and best.score >= least else None


def _held_scans(lane: Lane, track: Track, tokens):
    """The unused scans of lines still to be bagged, each with the track the camera saw
    as that line's item (its holder at the scan, or the line's linked track), where that
    is another track not yet taken to carry on under a new id."""
    for token in tokens:
        line = token.line
        if token.used or line is None or line.voided or line.skip_bagging:
            continue
        owner_id = token.holder or line.seen.track_id
        owner = lane.tracks.get(owner_id) if owner_id else None
        if owner is None or owner is track or owner.continued_by:
            continue
        yield token, owner


def _left_unseen(lane: Lane, in_cart: list[Track]) -> list[Track]:
    """The cart's tracks less those that evidently left it unseen: an item first seen at
    the scanner came out of the cart, so unless a track the camera saw leave the cart
    (and never saw reach the bag) was that item, one of the cart's tracks last seen before it
    showed up was (the tracker lost it as it was lifted out and picked it up at the
    scanner under a new id). Only an item that went on is one (it was scanned or went
    into the bag): a hand that reached into the scan zone and left again is none, and a
    second id of an item that moved with it is that item. A track the camera names as
    the newcomer is it, first. All this only where the camera follows most of the
    shopper's goods out of the cart."""
    tracks = list(lane.tracks.values())
    born = sorted(
        (
            t
            for t in tracks
            if t.first_zone is LaneZone.SCAN
            and (t.entered_bagging_ms or t.line is not None)
            and not any(other is not t and moved_together(other, t) for other in tracks)
        ),
        key=lambda t: t.first_seen_ms,
    )
    # Only where the camera follows this shopper's goods out of the cart is a track first
    # seen at the scanner one that was lost on the way: where most items show up at the
    # scanner first (a basket it cannot see into, a cart zone it barely covers), that is
    # how items come, and says nothing of what is left in the cart.
    followed = sum(
        1
        for t in tracks
        if t.first_zone is LaneZone.CART and (t.scan_entered_ms or t.entered_bagging_ms)
    )
    if not born or 2 * len(born) > followed:
        return in_cart
    # Tracks that came out of the cart and never reached the bag: an id lost on the way
    # out, or at the scanner, whose item carries on under a newer one.
    gone = [
        t
        for t in tracks
        if t.first_zone is LaneZone.CART
        and t.zone is not LaneZone.CART
        and not t.entered_bagging_ms
    ]
    left = list(in_cart)
    for new in born:
        # (A tracker ends a lost id a few frames after starting the new one.)
        before = [t for t in gone if t.left_ms <= new.first_seen_ms + _CONTINUE_MS]
        if before:
            gone.remove(before[0])
            continue
        candidates = [t for t in left if t.last_seen_ms < new.first_seen_ms]
        if not candidates:
            continue
        best = new.best
        named = [
            t
            for t in candidates
            if best is not None and t.best is not None and t.best.label == best.label
        ]
        left.remove((named or candidates)[0])
    return left


class VisionRules:
    """Links what the camera saw to what the POS registered."""

    def __init__(self, host: RuleHost) -> None:
        self.host = host
        self.settings = host.config.vision
        self.jitter_ms = host.config.rules.jitter_ms

    # ---- tracks and missed scans ----------------------------------------------------

    def _track(
        self,
        lane: Lane,
        track_id: str,
        at_ms: int,
        event_id: str,
        zone: LaneZone = LaneZone.UNSPECIFIED,
    ) -> Track:
        track = lane.tracks.get(track_id)
        if track is None:
            track = lane.tracks[track_id] = Track(track_id, at_ms, at_ms, first_zone=zone)
        track.last_seen_ms = max(track.last_seen_ms, at_ms)
        if len(track.event_ids) < _MAX_TRACK_EVENTS:
            track.event_ids.append(event_id)
        return track

    @staticmethod
    def _left_cart_unseen(track: Track, at_ms: int) -> bool:
        """A track seen first, or still in the cart, as it shows up at the scanner or the
        bag left the cart without a crossing reported: the cart's last count is stale."""
        return track.zone is LaneZone.CART or (
            track.first_seen_ms == at_ms and track.zone is LaneZone.UNSPECIFIED
        )

    @staticmethod
    def _camera_sees(lane: Lane, camera_id: str, healed=None) -> None:
        """Items a camera follows or names show it works, whatever health it last reported
        (a recovery report can be lost; a covered or dark lens sees nothing)."""
        if lane.camera_health.get(camera_id, CameraHealth.OK) in (healed or _TAMPER_CONFIDENCE):
            lane.camera_health[camera_id] = CameraHealth.OK

    def on_crossing(self, lane: Lane, event: LaneEvent, crossing: ZoneCrossing) -> None:
        """Follow a track between zones; a crossing into the bag needs a scan."""
        lane.vision_seen = True
        # A covered, dark or frozen picture tracks nothing moving across its zones.
        self._camera_sees(lane, crossing.camera_id, _BLIND)
        at = event.lane_time_ms
        track = self._track(lane, crossing.track_id, at, event.event_id, crossing.zone)
        zone = crossing.zone
        if zone is LaneZone.CART:
            lane.cart_crossing_ms = max(lane.cart_crossing_ms, at)
        if crossing.direction is ZoneDirection.LEFT:
            if zone is LaneZone.CART and lane.txn is not None:
                lane.txn.unloads_ms.append(at)
            if zone is not LaneZone.CART and track.zone is LaneZone.CART:
                # Leaving another zone, it left the cart unseen: its last count is stale.
                track.zone = LaneZone.UNSPECIFIED
                lane.cart_crossing_ms = max(lane.cart_crossing_ms, at)
            if track.zone is zone:
                track.zone = LaneZone.UNSPECIFIED
            came_from_ms, track.left_ms = track.left_ms, at
            if zone is LaneZone.BAGGING:
                track.bag_left_ms = at
            if zone is LaneZone.SCAN:
                track.scan_left_ms = at
                track.visited_scan = True  # (its crossing into the zone may be lost)
                if not track.scan_entered_ms and 0 < at - came_from_ms <= _INFERRED_STAY_MS:
                    # Its crossing in was lost: it was at the scanner from when it left
                    # the zone it came from (what was scanned meanwhile was in its hand).
                    track.scan_entered_ms = came_from_ms
            return
        if crossing.direction is not ZoneDirection.ENTERED:
            return
        if zone is not LaneZone.CART and self._left_cart_unseen(track, at):
            lane.cart_crossing_ms = max(lane.cart_crossing_ms, at)
        track.zone = zone
        if zone is LaneZone.SCAN:
            track.visited_scan = True
            track.scan_entered_ms = track.scan_entered_ms or at
            track.scan_reentered_ms = at
        if zone is LaneZone.BAGGING:
            self._entered_bag(lane, track, at)

    def _entered_bag(self, lane: Lane, track: Track, at: int) -> None:
        """A track reached the bagging area (its crossing, or a view there when the
        crossing was lost): a scan must cover it."""
        txn = lane.txn
        if track.entered_bagging_ms or txn is None or not txn.selling:
            return
        track.entered_bagging_ms = at
        if not track.visited_scan and self._carries_on_from_scanner(lane, track, at):
            # The item came from the scanner under an id the tracker lost as it arrived:
            # its scan may come as late as that of an item followed all the way.
            track.visited_scan = True
        # The scan the camera saw being made of this very item covers it, named or not.
        if self._claim_own(txn, track) or self._reclaim_own(lane, track):
            return
        # A track not yet named waits for its recognition (vision reports the crossing
        # first) before a scan may cover it: a scan of another item must not.
        track.claim_deferred = track.best is None
        if track.claim_deferred or not self._claim_token(lane, txn, at, track):
            deadline = at + self._after_ms(track) + self.jitter_ms
            lane.schedule(deadline, "crossing", track)

    def _at_scanner_for_its_line(self, track: Track) -> bool:
        """True when the track was in the scan zone as its linked line was scanned (a
        produce code may be registered up to a few seconds after the item left)."""
        line = track.line
        entered = track.scan_entered_ms
        if line is None or not entered or entered - self.jitter_ms > line.added_ms:
            return False
        left = track.scan_left_ms if track.scan_left_ms >= entered else track.entered_bagging_ms
        if not left:
            return True  # still there
        lag = PLU_LINE_LAG_MS if line.entry_method in _WEIGHED_ENTRY else 0
        return line.added_ms <= left + lag + self.jitter_ms

    @staticmethod
    def _carries_on_from_scanner(lane: Lane, track: Track, at: int) -> bool:
        """True when a track first seen as it reached the bag showed up just as another
        left the scan zone for nowhere: one item, its id lost on the way."""
        if track.first_zone is not LaneZone.BAGGING:
            return False
        return any(
            other is not track
            and other.zone is LaneZone.UNSPECIFIED
            and not other.entered_bagging_ms
            and not other.continued_by
            and other.scan_left_ms
            and abs(at - other.scan_left_ms) <= _CONTINUE_MS
            for other in lane.tracks.values()
        )

    def _compatible(self, track: Track, line: Line | None, linked: bool = True) -> bool:
        """False when the camera is sure the item is not the scanned one (a scan of another
        item must not cover it); unsure recognitions are compatible with anything. With
        ``linked``, the line linked to this very track is compatible whatever vision sees:
        if the item differs from what was charged, that is the line's item mismatch, not a
        missed scan."""
        if linked and line is not None and line.seen.track_id == track.track_id:
            return True
        best = _sure_best(track)
        if line is None or line.item is None or not line.item.vision_labels or best is None:
            return True
        return self._resembles(track, best, line.item.vision_labels)

    def _resembles(self, track: Track, best: LabelScore, item_labels) -> bool:
        """True when the track's views support one of the item's labels, or its top label
        is of the item's kind (another brand of milk: which one is the line's question, an
        item mismatch), or one the model is known to see the item as."""
        if supports(track.labels, item_labels):
            return True
        kind = kind_of(best)
        if kind and kind in {kind_of(label) for label in item_labels}:
            return True
        return confused_with(self.settings, item_labels, best.label)

    def _unit_fits(self, lane: Lane, track: Track, token: ScanToken) -> bool:
        """False for a further unit of a line (a quantity keyed, units past the first) and
        a track that went into the bag before the line was scanned, named by the camera,
        more likely than not, as something that does not look like the line's item, where
        no bagging scale weighs what went down: the units are whichever items reach the
        bag with the line, and nothing else tells a passion fruit carried past the scanner
        earlier from a fourth yoghurt keyed later. A track bagged with the line or after
        it, one not named so, or one named as the item, its kind, or what the model is
        known to take it for, fits."""
        if not token.further or (lane.ledger.seen and not lane.ledger.fault):
            return True
        best = track.best
        line = token.line
        if best is None or best.score < _LIKELY_SCORE or line is None or line.item is None:
            return True  # not named, or not more likely this than anything else
        if track.entered_bagging_ms >= line.added_ms - self.jitter_ms:
            return True  # into the bag with the line or after it, as its units go
        own = line.item.vision_labels
        return not own or self._resembles(track, best, own)

    def labels_near(self, lane: Lane, at_ms: int, since_ms: int | None = None) -> tuple:
        """The labels of the named item that reached the bag around at_ms (or since
        since_ms, up to at_ms), if any."""
        window = self.host.config.rules.merge_window_ms
        earliest = at_ms - window if since_ms is None else max(since_ms, at_ms - window)
        latest = at_ms + (window if since_ms is None else self.jitter_ms)
        for track in lane.tracks.values():
            best = track.best
            if (
                best is not None
                and earliest <= track.entered_bagging_ms <= latest
                and best.score >= self.settings.min_label_score
            ):
                return track.labels
        return ()

    def allows(self, lane: Lane, line: Line, change, also: tuple[Line, ...] = ()) -> bool:
        """False when a track that surely is another item reached the bag just before a
        weight change (the weight is that item's, not another unit of ``line``); with
        ``also``, another item than ``line`` and those."""
        if not lane.vision_available:
            return True
        earliest = max(change.at_ms - _BAG_LOOKBACK_MS, change.previous_ms + 1)
        latest = change.at_ms + self.jitter_ms
        for track in lane.tracks.values():
            if earliest <= track.entered_bagging_ms <= latest and not any(
                self._compatible(track, candidate) for candidate in (line, *also)
            ):
                return False
        return True

    def names_other(self, lane: Lane, line: Line, change) -> bool:
        """True when a track the camera surely named as another catalog item, whose weight
        this change fits, reached the bag for it: an item swapped for the scanned one (a
        weight mismatch), not more units of ``line`` (a quantity mismatch). Vision and the
        scale agree on what went down, so the scanned item's own views do not matter."""
        if not lane.vision_available or line.item is None:
            return False
        own = line.item.vision_labels
        earliest = max(change.at_ms - _BAG_LOOKBACK_MS, change.previous_ms + 1)
        latest = change.at_ms + self.jitter_ms
        for track in lane.tracks.values():
            best = _sure_best(track)
            if best is None or not earliest <= track.entered_bagging_ms <= latest:
                continue
            if own and (
                supports(track.labels, own) or confused_with(self.settings, own, best.label)
            ):
                continue
            seen = self.host.catalog.by_label(lane.store_id, best.label)
            if seen is None or seen.sku == line.item.sku or not seen.has_weight_range:
                continue
            if seen.sold_by_weight:
                continue
            if lane.ledger.fits(change.delta_mg, seen.min_weight_mg, seen.max_weight_mg):
                return True
        return False

    def confirms_item(self, lane: Lane, line: Line, change) -> bool:
        """True when a track the camera surely named as the scanned item reached the bag
        for this change, and no other catalog item of that kind weighs what the change
        does: vision and the scale agree the item is the one scanned, so a weight off
        the catalog's is the catalog's (a heavier item of the same kind is a swap)."""
        if not lane.vision_available or line.item is None or not line.item.vision_labels:
            return False
        earliest = max(change.at_ms - _BAG_LOOKBACK_MS, change.previous_ms + 1)
        latest = change.at_ms + self.jitter_ms
        went_down = [t for t in lane.tracks.values() if earliest <= t.entered_bagging_ms <= latest]
        if len(went_down) != 1:
            return False  # nothing seen, or several things: the weight is not one item's
        track = went_down[0]
        best = _sure_best(track)
        if best is None:
            return False
        if best.label.lower() not in {label.lower() for label in line.item.vision_labels}:
            return False
        return not any(
            other.sku != line.item.sku
            and other.has_weight_range
            and lane.ledger.fits(change.delta_mg, other.min_weight_mg, other.max_weight_mg)
            for other in self.host.catalog.items_by_label(lane.store_id, best.label)
        )

    def _claim_token(
        self, lane: Lane, txn: Transaction, at_ms: int, track: Track, linked: bool = True
    ) -> bool:
        tokens = txn.scan_tokens
        earliest = at_ms - self.settings.missed_scan_before_ms
        latest = at_ms + self._after_ms(track) + self.jitter_ms  # as the window's deadline
        while tokens and tokens[0].used:  # (a transaction's scans: a few dozen at most)
            tokens.popleft()
        found = None
        for token in tokens:
            if token.used or token.at_ms > latest:
                continue
            line = token.line
            if linked and (
                token.holder == track.track_id
                or (line is not None and line.seen.track_id == track.track_id)
            ):
                found = token  # the track's own scan comes first, however slow the bagging
                break
            if token.holder not in ("", track.track_id) and not self._vanished(lane, token.holder):
                continue  # the camera saw which item this scan was: another one
            if self._weighed_in(lane, line):
                continue
            if not self._unit_fits(lane, track, token):
                continue
            if self._scanned_in_hand(track, token) and self._compatible(track, line, linked):
                found = token  # scanned while this item was at the scanner, however long ago
                break
            if earliest <= token.at_ms + token.slack_ms:
                if found is None and not self._reserved(lane, line, track):
                    if self._compatible(track, line, linked):
                        found = token
        if found is None:
            found = self._named_scan(lane, track, tokens)
        if found is None and not track.visited_scan:
            found = self._orphan_scan(lane, track, tokens, earliest, linked)
        if found is None:
            found = self._lost_track_scan(lane, track, tokens)
        if found is None:
            found = self._stalled_holder_scan(lane, track, tokens)
        if found is None:
            found = self._weighed_scan(lane, track, tokens)
        if found is None:
            found = self._look_alike_scan(lane, track, tokens, earliest, latest)
        if found is None and track.code_wait_ms:
            found = self._awaited_code(track, tokens)
        if found is None:
            return False
        found.used = True
        track.covered = True
        track.cover = found
        return True

    @staticmethod
    def _weighed_in(lane: Lane, line: Line | None) -> bool:
        """True when the bagging scale has already weighed every unit of a line of several
        (carried to the bag in one go, one track for all): its remaining scans are spent,
        and cover no other item that goes down later."""
        return (
            line is not None
            and line.quantity > 1
            and lane.ledger.seen
            and line.weight_known
            and not line.voided
            and not line.skip_bagging
            and line.unbagged_units == 0
        )

    def _named_scan(self, lane: Lane, track: Track, tokens) -> ScanToken | None:
        """The oldest unused scan of the very item the camera names first, however long
        ago it was made (the crossings that would have timed it can be lost): an item
        that looks most like the aubergine scanned a while ago, with that aubergine's scan
        still unclaimed, is that aubergine."""
        best = track.best
        if best is None or best.score < _ITEM_SCORE:
            return None
        name = best.label.lower()
        sure = _sure_best(track) is not None
        for token in tokens:
            line = token.line
            if token.used or line is None or line.item is None or line.voided:
                continue
            if token.holder not in ("", track.track_id) and not (
                self._vanished(lane, token.holder)
                or (sure and self._gone_quiet(lane, token.holder, track))
            ):
                continue  # the camera saw another item at the scanner as this was scanned
            if self._weighed_in(lane, line):
                continue
            if name in (label.lower() for label in line.item.vision_labels):
                return token
        return None

    @staticmethod
    def _gone_quiet(lane: Lane, holder_id: str, track: Track) -> bool:
        """True when the track that held a scan has not reached the bag and the camera has
        reported nothing of it since ``track`` first showed up at the scanner or in the
        bag: its way out lost with its id, so a new track that surely names the scanned
        item is that item carrying on. Were the old one still there and to go down later,
        its scan would be spent and it would be asked about then."""
        holder = lane.tracks.get(holder_id)
        return (
            holder is not None
            and track.first_zone in (LaneZone.SCAN, LaneZone.BAGGING)
            and not holder.entered_bagging_ms
            and holder.last_seen_ms < track.first_seen_ms
        )

    def _orphan_scan(
        self, lane: Lane, track: Track, tokens, earliest: int, linked: bool
    ) -> ScanToken | None:
        """An older scan no item the camera saw ever went with, for a track whose way
        through the scan zone was not seen: its crossings were lost, not its scan."""
        for token in tokens:
            line = token.line
            if token.used or token.at_ms >= earliest or line is None or line.skip_bagging:
                continue
            if line.voided:
                continue
            if token.holder not in ("", track.track_id) and not self._vanished(lane, token.holder):
                continue
            if self._weighed_in(lane, line):
                continue
            if line.seen.track_id not in ("", track.track_id) and not self._vanished(
                lane, line.seen.track_id
            ):
                continue
            if self._compatible(track, line, linked) and self._unit_fits(lane, track, token):
                return token
        return None

    def _lost_track_scan(self, lane: Lane, track: Track, tokens) -> ScanToken | None:
        """The scan of the item the camera lost just as this track showed up: a tracker
        that loses an item (a hand over it, a turn) picks it up again under a new id, so a
        track first seen at the scanner or in the bag right after another one vanished on
        its way there, before reaching the bag, is that item carrying on. Its scan, made
        while the camera still followed the old id, covers it."""
        if track.first_zone not in (LaneZone.SCAN, LaneZone.BAGGING):
            return None  # a track first seen in the cart is an item of its own
        first = track.first_seen_ms
        for token, owner in _held_scans(lane, track, tokens):
            if owner.entered_bagging_ms or owner.zone is not LaneZone.UNSPECIFIED:
                continue  # it reached the bag itself, or the camera still sees it
            if owner.first_seen_ms > first or not owner.left_ms:
                continue
            # The old id ends as the new one starts (a tracker ends a lost track a few
            # frames later, so its end may come just after the new one's start). An old
            # id whose way out was lost too is not taken for ended: an item waiting at
            # the scanner reports nothing either.
            if not -_CONTINUE_MS <= owner.left_ms - first <= _CONTINUE_MS:
                continue
            # What its new views make of it is the line's identity question (an item
            # mismatch), as it would have been under its old id.
            owner.continued_by = track.track_id
            return token
        return None

    def _stalled_holder_scan(self, lane: Lane, track: Track, tokens) -> ScanToken | None:
        """The scan of an item the camera followed into the scan zone and then reported
        nothing more of, for a track first seen in the bag after that, where no bagging
        scale says which item went down (a staffed lane): a tracker that loses an item at
        the scanner need not report it gone, so the old id stays "in the scan zone" while
        the item, scanned or keyed meanwhile, is picked up in the bag under a new id. The
        old id never reaching the bag by the time this one is judged, a track that stayed
        in the bag (not a hand passing through) and views that do not surely name another
        item tie the two; were the old item still at the scanner and to go down later, its
        scan would be spent and it would be asked about then."""
        if lane.ledger.seen and not lane.ledger.fault:
            return None  # the bagging scale says which item went down (_weighed_scan)
        if track.first_zone is not LaneZone.BAGGING or track.visited_scan:
            return None
        if lane.clock_ms - track.entered_bagging_ms < _PASSING_MS:
            return None  # judged when it has stayed (a hand is in and out within moments)
        if track.zone is not LaneZone.BAGGING and track.bag_left_ms - track.entered_bagging_ms <= (
            _PASSING_MS
        ):
            return None  # in and out of the bag: a hand, a sleeve
        first = track.first_seen_ms
        for token, owner in _held_scans(lane, track, tokens):
            if owner.zone is not LaneZone.SCAN or owner.entered_bagging_ms:
                continue
            if not owner.scan_entered_ms or owner.last_seen_ms >= first:
                continue  # the camera still followed it when this one showed up
            if first - owner.last_seen_ms > _STALLED_MS:
                continue
            if not self._compatible(track, token.line, linked=False):
                continue
            owner.continued_by = track.track_id
            return token
        return None

    def _weighed_scan(self, lane: Lane, track: Track, tokens) -> ScanToken | None:
        """The scan of the line the bagging scale weighed going down as this track
        reached the bag, while the track the camera saw that line's item as never got
        there: the tracker lost the item on its way (its way out of the scan zone lost
        too) and picked it up in the bag under a new id. The scale, not the camera, says
        which item it was; a track surely of another item is not taken for it."""
        entered = track.entered_bagging_ms
        if not entered or not lane.ledger.seen or lane.ledger.fault:
            return None
        for token in tokens:
            line = token.line
            if token.used or line is None or line.voided or line.skip_bagging:
                continue
            rise = line.weighed_in_ms
            if not rise or not entered - _RISE_BEFORE_MS <= rise <= entered + _RISE_AFTER_MS:
                continue
            owners = {token.holder, line.seen.track_id} - {"", track.track_id}
            if any(
                (owner := lane.tracks.get(owner_id)) is not None and owner.entered_bagging_ms
                for owner_id in owners
            ):
                continue  # the item the camera saw scanned reached the bag itself
            if self._compatible(track, line, linked=False):
                return token
        return None

    def _look_alike_scan(
        self, lane: Lane, track: Track, tokens, earliest: int, latest: int
    ) -> ScanToken | None:
        """The scan of an item the camera followed to the scanner and lost there, for a
        track first seen in the bag that the camera surely names as it named the lost
        one: the tracker dropped the item as it was handed on (its way out of the scan
        zone lost with it) and picked it up in the bag under a new id. Where no scale
        says which item went down (a staffed lane), what it looks like is what ties the
        two ids; a hand or a second item does not look like the scanned item's track."""
        best = _sure_best(track)
        if track.first_zone is not LaneZone.BAGGING or best is None:
            return None
        for token in tokens:
            line = token.line
            if token.used or line is None or line.voided or line.skip_bagging:
                continue
            if not (earliest <= token.at_ms + token.slack_ms and token.at_ms <= latest):
                continue
            owner_id = token.holder or line.seen.track_id
            owner = lane.tracks.get(owner_id) if owner_id else None
            if owner is None or owner is track or owner.continued_by:
                continue
            if not self._gone_quiet(lane, owner_id, track):
                continue
            seen = _sure_best(owner)
            if seen is None or seen.label.lower() != best.label.lower():
                continue
            owner.continued_by = track.track_id
            return token
        return None

    @staticmethod
    def _own_token(txn: Transaction, track: Track) -> ScanToken | None:
        """The unused scan made while the camera saw this track at the scanner, if any."""
        track_id = track.track_id
        for token in txn.scan_tokens:
            line = token.line
            if not token.used and (
                token.holder == track_id or (line is not None and line.seen.track_id == track_id)
            ):
                return token
        return None

    @classmethod
    def _claim_own(cls, txn: Transaction, track: Track) -> bool:
        """Use the unused scan made while the camera saw this track at the scanner."""
        token = cls._own_token(txn, track)
        if token is None:
            return False
        token.used = True
        track.covered = True
        track.cover = token
        return True

    def _reclaim_own(self, lane: Lane, track: Track) -> bool:
        """The item the camera saw being scanned reached the bag after all: its scan, which
        a track that showed up as it went quiet took (for that item under a new id), is
        its own again, and that other track is judged anew."""
        for other in lane.tracks.values():
            token = other.cover
            if other is track or token is None or token.holder != track.track_id:
                continue
            if not self._compatible(track, token.line, linked=False) or (
                _names_item(other, token.line) and not _names_item(track, token.line)
            ):
                # Not what was scanned, or less like it than the one that took the scan:
                # the line came late, as the next item waited at the scanner (a slow POS).
                return False
            other.covered, other.cover = False, None
            track.covered, track.cover = True, token
            if other.entered_bagging_ms:
                lane.schedule(lane.clock_ms + self.jitter_ms, "crossing", other)
            return True
        return False

    def holder(self, lane: Lane) -> str:
        """The one track at the scanner right now, if exactly one is (see _holder)."""
        return self._holder(lane)

    @staticmethod
    def _holder(lane: Lane, line: Line | None = None) -> str:
        """The one track at the scanner right now, if exactly one is: what is scanned now.

        A track already linked to an earlier line, or whose scan an earlier line already
        was, is not what a new line scanned (its crossing out of the scan zone may have
        been lost, or it waits there while the next item is scanned). Nor is one the
        camera has reported nothing of since the line before (``line``: the new line, if
        registered): an id whose way out was lost, or an item that waits there unseen."""
        txn = lane.txn
        since = 0
        for other in reversed(txn.order if txn is not None else ()):
            if other is not line:
                since = other.added_ms
                break
        held = [
            t.track_id
            for t in lane.tracks.values()
            if t.zone is LaneZone.SCAN
            and t.line is None
            and not t.scan_held
            and t.last_seen_ms > since
        ]
        return held[0] if len(held) == 1 else ""

    def _after_ms(self, track: Track) -> int:
        """How long after its crossing into the bag a track's scan may still come."""
        s = self.settings
        base = s.missed_scan_after_held_ms if track.visited_scan else s.missed_scan_after_ms
        return base + track.extra_wait_ms

    def plu_pending(self, lane: Lane, track: Track | None) -> bool:
        """True while a produce code is visibly being looked up for what this track
        brought to the scanner: the produce scale holds a weight put on it since the
        track reached the scanner, and no line has come since (a slow shopper, a long
        list of codes), or held one until a moment ago (the code chosen as the item was
        lifted off; the POS may take a moment to register it). Its scan may still come;
        waiting is capped."""
        txn = lane.txn
        if track is None or txn is None or not track.visited_scan:
            return False
        weight, weighed = lane.produce_weight_mg, lane.produce_weight_ms
        if weight <= 0 and 0 <= lane.clock_ms - lane.produce_cleared_ms <= PLU_LINE_LAG_MS:
            weight, weighed = lane.produce_last_mg, lane.produce_last_ms
        if weight <= 0:
            return False
        if track.extra_wait_ms >= _PLU_WAIT_CAP_MS:
            return False
        if weighed < (track.scan_entered_ms or track.first_seen_ms) - self.jitter_ms:
            return False
        if any(line.added_ms >= weighed for line in txn.order[-3:]):
            return False
        best = track.best
        if best is not None and best.score >= _SURE_SCORE:
            # What is on the produce scale must be what the camera surely saw go down.
            item = self.host.catalog.by_label(lane.store_id, best.label)
            if (
                item is not None
                and not item.sold_by_weight
                and item.has_weight_range
                and not lane.ledger.fits(weight, item.min_weight_mg, item.max_weight_mg)
            ):
                return False
        return True

    def _awaited_code(self, track: Track, tokens) -> ScanToken | None:
        """The code of the produce the camera named, keyed while the track waited for it
        after going into the bag (a later line of anything else is another item's)."""
        best = track.best
        if best is None:
            return None
        for token in tokens:
            line = token.line
            if (
                not token.used
                and line is not None
                and not line.voided
                and token.at_ms >= track.entered_bagging_ms - self.jitter_ms
                and line.seen_as(best.label)
            ):
                return token
        return None

    def _piece_code_pending(self, lane: Lane, txn: Transaction, track: Track) -> bool:
        """True while the code of produce sold by the piece may still be keyed for what
        went from the scanner into the bag: the camera names it, more likely than not, as
        produce that has a code and no barcode (nothing to weigh, so the lookup leaves no
        trace on a scale), nothing has been registered since it went down (the shopper is
        not on to the next item), and payment has not started."""
        best = track.best
        if track.code_wait_ms >= _PLU_WAIT_CAP_MS or txn.tendering:
            return False
        if best is None or best.score < _LIKELY_SCORE or not track.entered_bagging_ms:
            return False
        if not track.visited_scan:
            return False  # a code is looked up for what was brought to the scanner
        item = self.host.catalog.by_label(lane.store_id, best.label)
        if item is None or not item.plu or item.gtins or item.sold_by_weight:
            return False
        since = (track.entered_bagging_ms or track.first_seen_ms) - self.jitter_ms
        return not any(line.added_ms >= since for line in txn.order[-3:])

    def defer_for_plu(self, lane: Lane, track: Track | None, kind: str, data: object) -> bool:
        """While the track's produce code is being entered, look again in a moment (the
        ``kind`` window reopens); False when there is nothing to wait for."""
        if track is None or lane.txn is None:
            return False
        if self.plu_pending(lane, track):
            track.extra_wait_ms += _PLU_WAIT_STEP_MS
        elif self._piece_code_pending(lane, lane.txn, track):
            # (Only the code of what the camera names may come this late: see _claim_token.)
            track.code_wait_ms += _PLU_WAIT_STEP_MS
        else:
            return False
        lane.schedule(lane.clock_ms + _PLU_WAIT_STEP_MS, kind, data)
        return True

    def _defer_for_read(self, lane: Lane, txn: Transaction, track: Track) -> bool:
        """While a barcode read about the time the track went into the bag waits for its
        line (a slow POS; an item scanned in the bag), look again in a moment: that line's
        scan may cover it. A read no line followed within seconds went nowhere."""
        read_ms = lane.last_read_ms
        if lane.last_read is None or not read_ms or track.extra_wait_ms >= _PLU_WAIT_CAP_MS:
            return False
        if read_ms < track.entered_bagging_ms - self.settings.missed_scan_before_ms:
            return False
        if lane.clock_ms - read_ms > _READ_TO_LINE_MS:
            return False
        if any(line.added_ms >= read_ms - self.jitter_ms for line in txn.order[-3:]):
            return False  # its line came
        track.extra_wait_ms += _READ_WAIT_STEP_MS
        lane.schedule(lane.clock_ms + _READ_WAIT_STEP_MS, "crossing", track)
        return True

    def _scanned_in_hand(self, track: Track, token: ScanToken) -> bool:
        """True when the scan happened while the track was in the scan zone."""
        if not track.scan_entered_ms:
            return False
        left = track.scan_left_ms or track.entered_bagging_ms or track.last_seen_ms
        return track.scan_entered_ms - self.jitter_ms <= token.at_ms <= left + self.jitter_ms

    @staticmethod
    def _vanished(lane: Lane, track_id: str) -> bool:
        """True when the track the camera took for what was scanned is gone without ever
        reaching the bag: a hand or a reflection taken for an item, or an item it lost
        and picked up again under another id. The scan it held is free again. One that
        left the scan zone a moment ago is on its way to the bag (its arrival there is
        reported a few hundred milliseconds later, or later still from a slow camera)."""
        other = lane.tracks.get(track_id)
        return (
            other is not None
            and other.zone is LaneZone.UNSPECIFIED
            and other.left_ms > 0
            and not other.entered_bagging_ms
            and lane.clock_ms - other.left_ms > _CONTINUE_MS
        )

    @staticmethod
    def _reserved(lane: Lane, line: Line | None, track: Track) -> bool:
        """A scan the camera saw being made of another item, still on its way to the bag,
        is that item's: it does not cover one that went around the scanner (a line of
        several units has scans for items the camera did not see being scanned)."""
        if track.visited_scan or line is None or line.quantity > 1:
            return False
        if line.seen.track_id in ("", track.track_id):
            return False
        other = lane.tracks.get(line.seen.track_id)
        return (
            other is not None
            and not other.entered_bagging_ms
            and not VisionRules._vanished(lane, other.track_id)
        )

    def on_scan(
        self,
        lane: Lane,
        txn: Transaction,
        token: ScanToken,
        first_unit: bool = False,
        holder: str | None = None,
    ) -> None:
        """A new scanned unit covers the oldest crossing still waiting for one.

        The first unit of a new line is the item the camera saw at the scanner as it was
        scanned (one handful, whatever the quantity keyed); further units, and units
        added by a quantity change, are whichever items reach the bag with them."""
        line = token.line
        own = ""
        if line is not None and first_unit:
            # (``holder``: the one track at the scanner as its barcode was read.)
            own = line.seen.track_id or (self._holder(lane, line) if holder is None else holder)
        token.holder = own
        held = lane.tracks.get(own) if own else None
        if held is not None:
            held.scan_held = True
            spent = held.cover
            if held.covered and spent is not None and spent is not token and not spent.holder:
                # The item went into the bag before its own line came (a slow POS) and
                # took a scan nobody was seen holding: it has its own now, and that one
                # is free again for the item it was made of.
                token.used = True
                held.cover = token
                spent.used = False
                if not self._cover_waiting(lane, spent, "") and spent not in txn.scan_tokens:
                    txn.scan_tokens.append(spent)
                return
        if not self._cover_waiting(lane, token, own):
            txn.scan_tokens.append(token)

    def _cover_waiting(self, lane: Lane, token: ScanToken, own: str) -> bool:
        """Cover a crossing still waiting for a scan with this one; False if none fits."""
        latest = token.at_ms + token.slack_ms + self.settings.missed_scan_before_ms
        jitter = self.jitter_ms

        def at_scanner(track: Track) -> bool:
            # In the scan zone as the scan was made, and into the bag only after it.
            entered = track.scan_entered_ms
            return 0 < entered - jitter <= token.at_ms <= track.entered_bagging_ms + jitter

        # The oldest crossing still waiting, but first one of an item that was at the
        # scanner as this scan was made: what went into the bag seconds before it (a
        # second id of an earlier item, something moved) is not what was scanned.
        waiting = sorted(
            (p for p in lane.pending if p[2].kind == "crossing" and not p[2].done),
            key=lambda p: (not at_scanner(p[2].data), p[0], p[1]),
        )
        for _, _, pending in waiting:
            # A "crossing" timer's data is its Track (lane.pending holds every kind).
            track: Track = pending.data  # type: ignore[assignment]
            if own and track.track_id != own:
                continue  # the camera saw which item this scan was: not this one
            if not own and (
                (track.claim_deferred and self._earlier_scan_waits(lane, track))
                or self._twin(lane, track)
            ):
                # It waits to be named with a scan made before it went down still there,
                # or it is a second id of an item already covered: the scan is another's.
                continue
            earliest = token.at_ms - self._after_ms(track)
            # The scan the camera saw being made of this very item covers it, named or
            # not (as _claim_own does): what it looks like is its line's question.
            if earliest <= track.entered_bagging_ms <= latest and (
                own or (self._compatible(track, token.line) and self._unit_fits(lane, track, token))
            ):
                pending.done = True
                token.used = True
                track.covered = True
                track.cover = token
                return True
        return False

    def _earlier_scan_waits(self, lane: Lane, track: Track) -> bool:
        """True when an unused scan made in the seconds before the track went into the bag,
        of no other item the camera saw, is still there for it."""
        txn = lane.txn
        if txn is None:
            return False
        earliest = track.entered_bagging_ms - self.settings.missed_scan_before_ms
        return any(
            not t.used
            and t.line is not None
            and not t.line.voided
            and t.holder in ("", track.track_id)
            and earliest <= t.at_ms + t.slack_ms
            and t.at_ms <= track.entered_bagging_ms + self.jitter_ms
            for t in txn.scan_tokens
        )

    def on_crossing_due(self, lane: Lane, track: Track) -> None:
        """No scan covered a crossing into the bagging area."""
        txn = lane.txn
        if txn is None:
            return
        # A surer view since the crossing may show the item is what a scan was for after
        # all (its first view ruled that scan out). A link made only as the item reached
        # the bag is no such evidence: a passed-around item links to any unlinked line;
        # one made to a track the camera followed at the scanner as the line was scanned
        # is (an item seen only on its way into the bag).
        linked = track.claim_deferred or self._at_scanner_for_its_line(track)
        twin = self._twin(lane, track)
        if twin and self._own_token(txn, track) is None:
            return  # a second id of an item a scan covered: the scans left are others'
        if self._claim_token(lane, txn, track.entered_bagging_ms, track, linked=linked):
            return  # (still unnamed: it is claimed as at its crossing)
        if self.defer_for_plu(lane, track, "crossing", track):
            return
        if self._put_nothing_down(lane, txn, track) or twin:
            return
        if self._defer_for_read(lane, txn, track):
            return
        best = track.best
        # An object vision cannot name (a bag, a hand, a coat) is weak evidence alone; a
        # product whose views name different products (a juice carton seen as milk,
        # then as oat drink) is still a product.
        recognized = best is not None and (
            best.score >= _ITEM_SCORE or track.max_view_score >= _SEEN_PRODUCT_SCORE
        )
        confidence = 0.8 if recognized else 0.35
        if not recognized and self._carried_through(lane, track):
            confidence = 0.6
        if not track.visited_scan:
            confidence += 0.1  # went around the scanner
        item = self.host.catalog.by_label(lane.store_id, best.label) if best else None
        self.host.emit(
            lane,
            Signal(
                type=AlertType.MISSED_SCAN,
                confidence=clamp(confidence),
                amount_minor=item.price_minor() if item else 0,
                currency=item.currency_code if item else self.host.currency_of(lane),
                event_ids=list(track.event_ids),
                at_ms=track.entered_bagging_ms,
                item=item_ref_of(item),
                item_keys={f"track:{track.track_id}"},
                # Only a scan of what the camera saw corrects it (nothing, if unnamed).
                correction=Correction("scan_item", labels=track.labels) if recognized else None,
            ),
        )

    @staticmethod
    def _carried_through(lane: Lane, track: Track) -> bool:
        """True when an object the camera could not name came out of the cart, went
        through the scan zone and stays in the bag, where no bagging scale weighs it: the
        way an item goes, not a hand or a sleeve (which reach in and leave again)."""
        return (
            not (lane.ledger.seen and not lane.ledger.fault)
            and track.first_zone is LaneZone.CART
            and track.visited_scan
            and track.zone is LaneZone.BAGGING
        )

    @staticmethod
    def _put_nothing_down(lane: Lane, txn: Transaction, track: Track) -> bool:
        """True when what crossed into the bag evidently put nothing there.

        Where a bagging scale weighs the bag, an item put down weighs: a crossing the
        scale saw no settled increase for, from just before it until now (the judgement
        comes seconds later), was a hand or an object moved within the bag. Where none
        does (a staffed lane, a scale at fault), a track first seen in the bag that left
        it again within moments was never seen carried in nor staying: a hand, a sleeve.
        """
        ledger = lane.ledger
        if ledger.seen and not ledger.fault:
            # The settled increases around the crossing, less those of the other items
            # that went down with their scans about then: each takes the first increase
            # of its own window (two put down at once weigh as one).
            low = track.entered_bagging_ms - _RISE_BEFORE_MS
            high = track.entered_bagging_ms + _RISE_AFTER_MS
            span = _RISE_BEFORE_MS + _RISE_AFTER_MS
            rises = [at for at in txn.bagging.rises_ms if low - span <= at <= high + span]
            # (An item that went in before this one without a scan yet, its own crossing
            # still to be judged, takes its own weight too; a second id of a covered
            # item weighs nothing of its own.)
            covered = [t for t in lane.tracks.values() if t.covered]
            others = sorted(
                t.entered_bagging_ms
                for t in lane.tracks.values()
                if t is not track
                and low - span <= t.entered_bagging_ms <= high + span
                and (
                    t.covered
                    or (
                        t.entered_bagging_ms < track.entered_bagging_ms
                        and not any(moved_together(t, c) for c in covered if c is not t)
                    )
                )
            )
            for entered in others:
                for i, at in enumerate(rises):
                    if entered - _RISE_BEFORE_MS <= at <= entered + _RISE_AFTER_MS:
                        del rises[i]
                        break
            return not any(low <= at <= high for at in rises)
        return (
            track.first_zone is LaneZone.BAGGING
            and track.zone is not LaneZone.BAGGING
            and 0 < track.bag_left_ms - track.entered_bagging_ms <= _PASSING_MS
        )

    @staticmethod
    def _twin(lane: Lane, track: Track) -> bool:
        """True when the track moved with another one whose scan covered it — into the
        scan zone and into the bag within moments of it — and its views do not surely name
        another item: one item the tracker followed twice (the item and the hand holding
        it, a box split in two), not a second item carried along unscanned."""
        # (A track first seen in the bag as another went in there was never seen apart
        # from it: it entered the scan zone with it as far as anyone can tell.)
        new_in_bag = track.first_zone is LaneZone.BAGGING and not track.scan_entered_ms
        if not track.scan_entered_ms and not new_in_bag:
            return False
        best = track.best
        sure = best is not None and best.score >= _SURE_SCORE
        for other in lane.tracks.values():
            if other is track or not other.covered or not other.scan_entered_ms:
                continue
            if abs(other.entered_bagging_ms - track.entered_bagging_ms) > TWIN_MS:
                continue
            if not new_in_bag and not any(
                abs(entered - track.scan_entered_ms) <= TWIN_MS
                for entered in (other.scan_entered_ms, other.scan_reentered_ms)
            ):
                continue  # (into the scan zone with it, as it first went in or went back in)
            if sure and not VisionRules._names_the_same(other, best.label):
                continue  # surely something else: two items carried together
            return True
        return False

    @staticmethod
    def _names_the_same(other: Track, label: str) -> bool:
        """True when ``label`` is what the covered track ``other`` is: its own views, or,
        where they do not name it (no view, or a confused one), the item its scan was of."""
        if supports(other.labels, (label,)):
            return True
        line = other.cover.line if other.cover is not None else other.line
        return line is not None and line.seen_as(label)

    # ---- what vision reports of tracks ----------------------------------------------

    def on_recognized(self, lane: Lane, event: LaneEvent, rec: ItemRecognized) -> Track:
        """Fold a recognition into its track's labels; returns the track."""
        lane.vision_seen = True
        if rec.labels and max(ls.score for ls in rec.labels) >= _SEEN_WELL_SCORE:
            self._camera_sees(lane, rec.camera_id)
        track = self._track(lane, rec.track_id, event.lane_time_ms, event.event_id, rec.zone)
        at = event.lane_time_ms
        if rec.zone in (LaneZone.SCAN, LaneZone.BAGGING) and self._left_cart_unseen(track, at):
            track.zone = rec.zone
            lane.cart_crossing_ms = max(lane.cart_crossing_ms, at)
        if rec.zone is LaneZone.CART and track.first_seen_ms == at and not track.left_ms:
            # First seen by a view in the cart, its crossing in lost: it is in the cart.
            track.zone = LaneZone.CART
        if rec.zone is LaneZone.SCAN and not track.entered_bagging_ms:
            # Seen at the scanner though its crossing into the zone was lost: it was there.
            if track.zone in (LaneZone.UNSPECIFIED, LaneZone.CART):
                track.zone = LaneZone.SCAN
            track.visited_scan = True
            track.scan_entered_ms = track.scan_entered_ms or at
            track.scan_reentered_ms = at
        if rec.labels:
            track.add_recognition(rec.labels)
            if track.claim_deferred:
                self._claim_named(lane, track)
        if rec.zone is LaneZone.BAGGING and not track.entered_bagging_ms:
            # Seen in the bag though its crossing into it was lost: it went in.
            if track.zone in (LaneZone.UNSPECIFIED, LaneZone.SCAN, LaneZone.CART):
                track.zone = LaneZone.BAGGING
            self._entered_bag(lane, track, at)
        return track

    def _claim_named(self, lane: Lane, track: Track) -> None:
        """A track that reached the bag unnamed is named now: a compatible scan covers it."""
        track.claim_deferred = False
        txn = lane.txn
        if txn is None or not self._claim_token(lane, txn, track.entered_bagging_ms, track):
            return
        for _, _, pending in lane.pending:
            if pending.kind == "crossing" and pending.data is track:
                pending.done = True

    def on_barcode_seen(self, lane: Lane, event: LaneEvent, seen: BarcodeSeen) -> Track:
        """Note the track a barcode was seen on; returns the track."""
        lane.vision_seen = True
        return self._track(lane, seen.track_id, event.lane_time_ms, event.event_id)

    # ---- the cart at tender, and the camera -----------------------------------------

    def on_zone_count(self, lane: Lane, event: LaneEvent, count: ZoneItemCount) -> None:
        """Keep the cart zone's item count."""
        lane.vision_seen = True
        if count.zone is LaneZone.CART:
            lane.cart_count = count.count
            lane.cart_count_ms = event.lane_time_ms

    def on_tender_started(self, lane: Lane, event: LaneEvent) -> None:
        """Judge the cart once vision's count of it at payment has had time to arrive."""
        if lane.txn is None:
            return
        deadline = event.lane_time_ms + self.settings.cart_check_delay_ms
        lane.schedule(deadline, "cart", (event.event_id, event.lane_time_ms))

    @staticmethod
    def on_transaction_ended(lane: Lane, txn: Transaction) -> None:
        """Forget the transaction's tracks, except the next shopper's goods already in the
        cart zone (first seen there after this shopper began unloading): theirs now."""
        in_cart = [t for t in lane.tracks.values() if t.zone is LaneZone.CART and not t.linked]
        kept = {t.track_id: t for t in _arrivals(txn, in_cart)}
        lane.tracks.clear()
        lane.tracks.update(kept)

    def on_cart_due(self, lane: Lane, data: tuple[str, int]) -> None:
        """Items still in the cart when payment started."""
        event_id, at_ms = data
        if not lane.vision_seen or not lane.vision_available or lane.txn is None:
            return
        if lane.txn.is_return:
            return  # what stays in the cart during a return is the shopper's
        # Scanned items came out of the cart, whatever crossing reports were lost.
        in_cart = [t for t in lane.tracks.values() if t.zone is LaneZone.CART and not t.linked]
        newcomers = _arrivals(lane.txn, in_cart)
        in_cart = [t for t in in_cart if t not in newcomers]
        fresh_ms = lane.cart_crossing_ms - self.jitter_ms
        # With the next shopper's goods in the zone, vision's count of it is theirs too:
        # only this shopper's own tracks still there say what was left.
        if not newcomers and lane.cart_count >= 0 and lane.cart_count_ms >= fresh_ms:
            count = lane.cart_count
            confidence = 0.85 if in_cart else 0.7
            if lane.ledger.seen:
                # Heavy items scanned and left in the cart on purpose ("skip bagging")
                # are in vision's count of it (not among the unscanned tracks there).
                count -= sum(line.unbagged_units for line in lane.txn.order if line.skip_bagging)
        else:
            in_cart = _left_unseen(lane, in_cart)
            count = len(in_cart)
            confidence = 0.75
            if lane.ledger.seen:
                # A heavy item scanned where it stays in the cart (never seen at the
                # scanner, so linked to no track) is among the cart's unlinked tracks.
                count -= sum(
                    line.unbagged_units
                    for line in lane.txn.order
                    if line.skip_bagging and not line.seen.track_id
                )
        if count <= 0:
            return
        amount = 0
        item = None
        for track in in_cart:
            if track.best is not None and track.best.score >= self.settings.min_label_score:
                found = self.host.catalog.by_label(lane.store_id, track.best.label)
                if found is not None:
                    amount += found.price_minor()
                    item = item or found
        event_ids = [event_id] + [e for t in in_cart for e in t.event_ids[:2]]
        self.host.emit(
            lane,
            Signal(
                type=AlertType.ITEM_LEFT_IN_CART,
                confidence=confidence,
                amount_minor=amount,
                currency=item.currency_code if item else self.host.currency_of(lane),
                event_ids=event_ids,
                at_ms=at_ms,
                item=item_ref_of(item),
                item_keys={f"track:{t.track_id}" for t in in_cart} | {"cart"},
                detail={"count": count},
                correction=Correction("any_scan"),
            ),
        )

    def on_camera_health(self, lane: Lane, event: LaneEvent, change: CameraHealthChanged) -> None:
        """A camera that stays unhealthy during a transaction is reported."""
        lane.vision_seen = True
        lane.camera_health[change.camera_id] = change.health
        if change.health not in _TAMPER_CONFIDENCE:
            return
        self.watch_camera(lane, change.camera_id, event.event_id, event.lane_time_ms)

    def watch_camera(self, lane: Lane, camera_id: str, event_id: str, at_ms: int) -> None:
        """Open the tamper window for an unhealthy camera while a transaction is open."""
        txn = lane.txn
        if txn is None or txn.camera_alerted:
            return
        deadline = at_ms + self.settings.camera_tamper_min_ms
        lane.schedule(deadline, "camera", (camera_id, event_id))

    def on_camera_due(self, lane: Lane, data: tuple[str, str]) -> None:
        """The camera is still unhealthy at the end of its window."""
        camera_id, event_id = data
        health = lane.camera_health.get(camera_id, CameraHealth.OK)
        txn = lane.txn
        if health not in _TAMPER_CONFIDENCE or txn is None or txn.camera_alerted:
            return
        txn.camera_alerted = True
        self.host.emit(
            lane,
            Signal(
                type=AlertType.CAMERA_TAMPER,
                confidence=_TAMPER_CONFIDENCE[health],
                amount_minor=0,
                currency=self.host.currency_of(lane),
                event_ids=[event_id],
                at_ms=lane.clock_ms,
                item_keys={f"camera:{camera_id}"},
                detail={"health": _HEALTH_WORDS[health]},
            ),
        )
