"""Identity rules: is the item the camera saw at the scanner the item the POS charged?

Item mismatch (barcode switching) and wrong produce PLU. A recognition is linked to the
POS line it belongs to; the line is judged only once the track's views have settled
(``label_settle_ms``), on the track's accumulated labels, never on one frame; and a
raised alert is withdrawn when later views of the same track agree with the line.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from lanesight.fusion.alerts import AlertType
from lanesight.fusion.catalog import CatalogItem
from lanesight.fusion.events import BarcodeSeen, EntryMethod, ItemRecognized, LaneEvent, LaneZone
from lanesight.fusion.lane import (
    PLU_LINE_LAG_MS,
    SURE_SCORE,
    LabelScore,
    Lane,
    Line,
    Recognition,
    Track,
    latest_view,
    moved_together,
    supports,
)
from lanesight.fusion.rules import RuleHost, item_ref_of_line
from lanesight.fusion.signals import Signal, clamp

# A weaker signal about a line is superseded only by one this much stronger.
_REJUDGE_CHANGE = 0.1
# A track first seen at the scanner that left it for nowhere this soon passed through.
_PASSING_MS = 2_000
_MISMATCH_TYPES = frozenset({AlertType.ITEM_MISMATCH, AlertType.WRONG_PRODUCE_PLU})
_PRODUCE_ENTRY = (EntryMethod.PLU_LOOKUP, EntryMethod.KEYED, EntryMethod.VISION_SUGGESTION)


@cache
def _model_kinds() -> dict[str, str]:
    """The shipped model's kind (coarse class) of each label: Cantaloupe -> Melon."""
    try:
        text = resources.files("lanesight.vision.models").joinpath("labels.json").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        return {}
    return {entry["name"].lower(): entry["coarse_name"] for entry in json.loads(text)}


@cache
def known_confusions(path: str = "", min_score: float = 0.5) -> frozenset[tuple[str, str]]:
    """(true, seen) label pairs the model surely got wrong on held-out photos.

    Read from a held-out outputs file (``{"images": [{"label", "top": [{"label",
    "score"}]}]}``; the vision model's own ``heldout_outputs.json`` when ``path`` is
    empty): a photo of a Cantaloupe whose top label was Galia-Melon at ``min_score`` or
    more makes ("cantaloupe", "galia-melon") a known confusion.
    """
    try:
        if path:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        else:
            models = resources.files("lanesight.vision.models")
            data = json.loads(models.joinpath("heldout_outputs.json").read_text())
    except (ModuleNotFoundError, FileNotFoundError, OSError, ValueError):
        return frozenset()
    pairs = set()
    for image in data.get("images", ()):
        top = image.get("top") or ()
        if not top:
            continue
        first = max(top, key=lambda entry: entry["score"])
        truth = str(image.get("label", "")).lower()
        seen = str(first["label"]).lower()
        if truth and seen != truth and first["score"] >= min_score:
            pairs.add((truth, seen))
    return frozenset(pairs)


def confused_with(settings, item_labels, seen_label: str) -> bool:
    """True when the model is known to see the item (its vision labels) as seen_label."""
    pairs = known_confusions(settings.confusions_file, settings.confusion_min_score)
    seen = seen_label.lower()
    return any((label.lower(), seen) in pairs for label in item_labels)


def kind_of(label: LabelScore | str) -> str:
    """The kind of item a label names (vision's coarse label, else the model's table)."""
    if isinstance(label, LabelScore):
        if label.coarse_label:
            return label.coarse_label.lower()
        label = label.label
    return _model_kinds().get(label.lower(), "").lower()


def _passed_through(track: Track | None) -> bool:
    """True when the track was first seen at the scanner and left it for nowhere within
    moments, never going into the bag: a hand or a sleeve reaching in, not an item (an
    item comes from the cart and goes on into the bag, whatever ids the tracker gives)."""
    return (
        track is not None
        and track.first_zone in (LaneZone.SCAN, LaneZone.UNSPECIFIED)
        and track.zone is LaneZone.UNSPECIFIED
        and not track.entered_bagging_ms
        and 0 < track.scan_left_ms - track.first_seen_ms <= _PASSING_MS
    )


def _scanned_as(track: Track) -> Line | None:
    """The line of one unit whose scan covered the track (the camera saw it at the
    scanner as that line was scanned, or it went into the bag before its line came and
    the line's scan was the one it waited for): that line is the item's."""
    cover = track.cover
    line = cover.line if cover is not None else None
    return line if line is not None and line.quantity == 1 and not line.voided else None


def _lines_of_others(lane: Lane, track: Track) -> set[int]:
    """The lines (by id()) of one unit whose scans cover tracks other than ``track``."""
    return {
        id(line)
        for other in lane.tracks.values()
        if other is not track and (line := _scanned_as(other)) is not None
    }


def _second_id(lane: Lane, track: Track) -> bool:
    """True when the track moved with another one that a line's scan covered or that is
    linked to a line, into the scan zone or into the bag within moments of it: the tracker
    following that item twice (an item and the hand holding it), not a second item."""
    return any(
        other is not track and (other.covered or other.linked) and moved_together(track, other)
        for other in lane.tracks.values()
    )


def _weighs_like(line: Line, seen: CatalogItem) -> bool:
    """False when what the scales weighed cannot be the item the camera named (a lemon's
    120 g is not a watermelon): the camera is wrong, whatever its score."""
    if not seen.has_weight_range or seen.min_weight_mg <= 0:
        return True
    if line.sold_by_weight:
        weight, units = line.weight_mg, 0  # a weighed amount: one piece or many
    else:
        weight, units = line.bagged_weight_mg, max(line.bagged_units, 1)
    if weight <= 0:
        return True
    if weight < seen.min_weight_mg // 2 * max(units, 1):
        return False
    return units == 0 or weight <= seen.max_weight_mg * units * 3 // 2


class IdentityRules:
    """Links scan-zone recognitions to POS lines and judges them on settled evidence."""

    def __init__(self, host: RuleHost) -> None:
        self.host = host
        self.settings = host.config.vision
        self.jitter_ms = host.config.rules.jitter_ms

    # ---- linking --------------------------------------------------------------------

    def on_recognized(self, lane: Lane, event: LaneEvent, rec: ItemRecognized, track: Track):
        """Link a scan- or bagging-zone recognition to its line, or judge its line again."""
        if rec.zone not in (LaneZone.SCAN, LaneZone.BAGGING) or not rec.labels:
            return
        if track.linked:
            self._rejudge(lane, track, event)
            return
        recognition = Recognition(event.lane_time_ms, rec.track_id, rec.labels, event.event_id)
        if rec.zone is LaneZone.BAGGING:
            # Seen only on its way into the bag (the scan-zone view was missed): it
            # belongs to a line scanned while the item was in hand, if one is unlinked.
            self._link_waiting(lane, recognition, track, bagging=True)
            return
        if self._link_waiting(lane, recognition, track, bagging=False):
            return
        lane.scan_recognitions.append(recognition)
        while len(lane.scan_recognitions) > 32:
            lane.scan_recognitions.popleft()

    def _link_waiting(
        self, lane: Lane, recognition: Recognition, track: Track, bagging: bool
    ) -> bool:
        at = recognition.at_ms
        waiting = lane.lines_awaiting_vision
        while waiting and waiting[0].added_ms < at - 60_000:
            waiting.popleft()
        best_line = None
        own = _scanned_as(track)
        if own is None and _second_id(lane, track):
            return False  # a second id of an item that has its own line
        taken = _lines_of_others(lane, track) if own is None else set()
        for line in waiting:
            if line.seen.linked:
                continue
            if own is not None:
                if line is own:
                    best_line = line  # the scan that covered it says which line it is
                    break
                continue
            if id(line) in taken:
                continue  # another item took this line's scan: that item is the line's
            if bagging:
                # The track must have been in view when the line was scanned: a later
                # item's first view on its way to the bag is not the earlier line's item.
                # Nor one the camera saw reach the scanner only after it was scanned.
                fits = (
                    track.first_seen_ms <= line.added_ms + self.jitter_ms
                    and track.scan_entered_ms <= line.added_ms + self.jitter_ms
                    and line.added_ms - self.jitter_ms
                    <= at
                    <= line.added_ms + self.settings.missed_scan_before_ms
                )
            else:
                # A view that came after the scan is the scanned item's only if its track
                # was the first of those at the scanner as it was scanned (a hand that
                # reached in just then is not the item).
                fits = self._linkable(line, at) and (
                    at <= line.added_ms or self._first_at_scanner(lane, track, line)
                )
            if fits and (best_line is None or line.added_ms < best_line.added_ms):
                best_line = line
        if best_line is None:
            return False
        self._link(lane, best_line, recognition)
        return True

    def _linkable(self, line: Line, rec_ms: int) -> bool:
        """True when a recognition at rec_ms can be of the item on this line."""
        weighed = line.entry_method in (EntryMethod.PLU_LOOKUP, EntryMethod.KEYED)
        before = (
            self.settings.produce_link_window_ms if weighed else self.settings.scan_link_window_ms
        )
        return line.added_ms - before <= rec_ms <= line.added_ms + self.settings.scan_link_after_ms

    def on_barcode_seen(self, lane: Lane, event: LaneEvent, seen: BarcodeSeen, track: Track):
        """Remember a barcode the camera read on a track."""
        if seen.gtin:
            track.barcode_gtin = seen.gtin.zfill(14)

    def on_line_added(self, lane: Lane, line: Line) -> None:
        """Link a new line to a recognition at the scanner that can be its item: of the
        track still in the scan zone that entered it first, else the latest."""
        waiting = self._waiting_in_bag_as(lane, line)
        if waiting is not None:
            # It went into the bag before its line came (a slow lookup, bagged first):
            # the camera surely saw it as the line's item, so it is, not whatever reaches
            # the scanner next.
            self._link(lane, line, latest_view(waiting))
            return
        best = None
        best_key: tuple[bool, bool, int, int] | None = None
        tracks = lane.tracks
        txn = lane.txn
        before = [other for other in (txn.order if txn else ()) if other is not line]
        previous_ms = before[-1].added_ms if before else 0
        moment = self._scan_moment(lane, line)
        weighed_after = moment if moment != line.added_ms else None
        for rec in lane.scan_recognitions:
            if rec.linked or not self._linkable(line, rec.at_ms):
                continue
            track = tracks.get(rec.track_id)
            if track is not None and track.linked:
                continue  # an earlier view of a track already linked to another line
            if track is not None and _scanned_as(track) not in (None, line):
                continue  # the item of an earlier line, whose scan covered it
            if _passed_through(track):
                continue
            if weighed_after is not None and track is not None and track.entered_bagging_ms:
                if track.entered_bagging_ms + self.jitter_ms < weighed_after:
                    continue  # in the bag before the produce scale weighed this line's item
            # The item scanned is at the scanner as it is scanned, and was there first:
            # a hand or a second thing passing through the zone came after it (and may
            # be gone). Of one track, its latest view.
            here = track is not None and (
                track.zone is LaneZone.SCAN or self._in_scan_zone_at(track, moment)
            )
            entered = track.scan_entered_ms if here and track.scan_entered_ms else 1 << 62
            # A track the camera has reported nothing of since the previous line was
            # scanned is stale (its way out lost): the item scanned now was seen since.
            fresh = track is not None and track.last_seen_ms > previous_ms
            key = (here, fresh, -entered, rec.at_ms)
            if best_key is None or key > best_key:
                best, best_key = rec, key
        unseen_in_hand = self._unseen_in_hand(lane, previous_ms, moment)
        if best is not None and not (best_key and best_key[0] and best_key[1]) and unseen_in_hand:
            # What the camera named has gone, or has not been seen since the previous
            # line (a second id of that line's item, its way out lost): the item in hand
            # is not named yet.
            best = None
        if best is None and not unseen_in_hand:
            gone_on = self._gone_on_to_the_bag(lane, line)
            if gone_on is not None:
                best = latest_view(gone_on)
        if best is not None:
            self._link(lane, line, best)
        else:
            lane.lines_awaiting_vision.append(line)

    def _gone_on_to_the_bag(self, lane: Lane, line: Line) -> Track | None:
        """For a produce code registered just after its item left the scanner (a slow
        lookup; its views all came in the bag, before the line): the named track, not yet
        any line's, that was at the scanner and left it for the bag within moments before
        the line came. Of several (an item and a second id of it), the first there."""
        if line.entry_method not in (EntryMethod.PLU_LOOKUP, EntryMethod.KEYED):
            return None
        added, jitter = line.added_ms, self.jitter_ms
        found = None
        for track in lane.tracks.values():
            if track.linked or not track.labels or track.zone is not LaneZone.BAGGING:
                continue
            entered = track.scan_entered_ms
            if not entered or entered - jitter > added:
                continue
            left = track.scan_left_ms if track.scan_left_ms >= entered else track.entered_bagging_ms
            if not left or not added - PLU_LINE_LAG_MS - jitter <= left <= added + jitter:
                continue
            if _scanned_as(track) is not None or _second_id(lane, track):
                continue
            if found is None or entered < found.scan_entered_ms:
                found = track
        return found

    def _waiting_in_bag_as(self, lane: Lane, line: Line) -> Track | None:
        """The earliest track that went into the bag shortly before the line came, with no
        scan to cover it yet, whose views surely name the line's item."""
        item = line.item
        if item is None or not item.vision_labels or line.quantity != 1:
            return None
        own = {label.lower() for label in item.vision_labels}
        earliest = line.added_ms - self.settings.missed_scan_before_ms
        found = None
        for track in lane.tracks.values():
            entered = track.entered_bagging_ms
            if not earliest <= entered <= line.added_ms + self.jitter_ms:
                continue
            if track.zone is not LaneZone.BAGGING or track.covered or track.linked:
                continue
            best = track.best
            if best is None or best.score < SURE_SCORE or best.label.lower() not in own:
                continue
            if _second_id(lane, track):
                continue  # a second id of an item that had its own scan
            if found is None or entered < found.entered_bagging_ms:
                found = track
        return found

    def _scan_moment(self, lane: Lane, line: Line) -> int:
        """When the line's item was at the scanner: its read (the line's time), or for a
        produce code the moment the produce scale settled on its weight (the code is
        looked up afterwards, while the item may already be on its way to the bag)."""
        if line.entry_method not in (EntryMethod.PLU_LOOKUP, EntryMethod.KEYED):
            return line.added_ms
        earliest = line.added_ms - self.settings.produce_link_window_ms
        weighed = [
            at
            for at, mg in (
                (lane.produce_weight_ms, lane.produce_weight_mg),
                (lane.produce_last_ms, lane.produce_last_mg),
            )
            if mg > 0 and earliest <= at <= line.added_ms
        ]
        return max(weighed) if weighed else line.added_ms

    def _first_at_scanner(self, lane: Lane, track: Track, line: Line) -> bool:
        """True when no other track not yet taken for a line was at the scanner before
        ``track`` and still there at the line's scan moment."""
        moment = self._scan_moment(lane, line)
        if not self._in_scan_zone_at(track, moment):
            return not any(
                self._in_scan_zone_at(other, moment) and other.line is None
                for other in lane.tracks.values()
                if other is not track
            )
        return not any(
            other is not track
            and other.line is None
            and 0 < other.scan_entered_ms < track.scan_entered_ms
            and self._in_scan_zone_at(other, moment)
            for other in lane.tracks.values()
        )

    def _in_scan_zone_at(self, track: Track, at_ms: int) -> bool:
        """True when the track was in the scan zone at at_ms: entered by then (give or
        take the jitter between sources) and not yet left (what left just before is gone).
        A track that went into the bag since left the scan zone then, its way out
        reported or not."""
        entered, left = track.scan_entered_ms, track.scan_left_ms
        if left < entered < track.entered_bagging_ms:
            left = track.entered_bagging_ms
        return (
            entered > 0 and entered - self.jitter_ms <= at_ms and (left < entered or left >= at_ms)
        )

    def _unseen_in_hand(self, lane: Lane, previous_ms: int, moment_ms: int) -> bool:
        """True when a track the camera followed into the scan zone since the previous
        line was there at the scan moment (or is now), not yet taken for any line and not
        named there: the item being scanned, whatever left the zone before (a hand, a
        sleeve, an item moved on). A name it got elsewhere (in the cart, as the shopper
        unloaded) is no view at the scanner."""
        return any(
            (track.zone is LaneZone.SCAN or self._in_scan_zone_at(track, moment_ms))
            and track.line is None
            and not track.scan_held
            and track.last_seen_ms > previous_ms
            for track in lane.tracks.values()
        )

    def _link(self, lane: Lane, line: Line, rec: Recognition) -> None:
        line.seen.track_id = rec.track_id
        rec.linked = True
        track = lane.tracks.get(rec.track_id)
        if track is not None:
            track.linked = True
            track.line = line
        if line.item is None:
            return
        if track is not None and track.barcode_gtin and line.gtin:
            # The camera read the item's own barcode: that decides, no settling needed.
            if track.barcode_gtin != line.gtin.zfill(14):
                seen = self.host.catalog.by_gtin(lane.store_id, track.barcode_gtin)
                self._mismatch(lane, line, rec, seen, 0.9, seen.description if seen else "")
            return
        # Judge once the track's views have settled: one frame's confusion rarely repeats.
        line.seen.judge_pending = True
        deadline = max(rec.at_ms, line.added_ms) + self.settings.label_settle_ms
        lane.schedule(deadline, "identity", (line, rec))

    def on_judge_due(self, lane: Lane, data: tuple[Line, Recognition]) -> None:
        """The track's views have settled: judge its line on everything seen so far."""
        line, rec = data
        line.seen.judge_pending = False
        if line.item is None or line.voided:
            return
        if _passed_through(lane.tracks.get(rec.track_id)):
            return  # what the camera saw at the scanner then was a hand passing through
        self._judge(lane, line, rec)

    # ---- judging --------------------------------------------------------------------

    def _rejudge(self, lane: Lane, track: Track, event: LaneEvent) -> None:
        """A linked track was seen again: withdraw or (re)judge its line."""
        line, best = track.line, track.best
        if line is None or best is None or line.item is None or line.voided:
            return
        seen = line.seen
        if seen.judge_pending or (track.barcode_gtin and line.gtin):
            return  # still settling, or the camera's barcode read decided
        if seen.alert_id:
            if self._agrees(track.labels, line.item):
                self._withdraw(lane, line, track)
            return
        rec = Recognition(event.lane_time_ms, track.track_id, track.labels, event.event_id, True)
        self._judge(lane, line, rec)

    @staticmethod
    def _agrees(labels: tuple[LabelScore, ...], item: CatalogItem) -> bool:
        """The track's evidence now names the line's own item first, or close to it."""
        if not labels:
            return False
        own = {label.lower() for label in item.vision_labels}
        if labels[0].label.lower() in own:
            return True
        return supports(labels, item.vision_labels, floor=0.25, share=0.35)

    def _judge(self, lane: Lane, line: Line, rec: Recognition) -> None:
        item = line.item
        assert item is not None
        track = lane.tracks.get(rec.track_id)
        labels = track.labels if track is not None and track.labels else rec.labels
        views = track.recognitions if track is not None else 1
        top: LabelScore = labels[0]
        own = {label.lower() for label in item.vision_labels}
        if not own or top.label.lower() in own:
            return
        s = self.settings
        same_kind = kind_of(top) != "" and kind_of(top) in {kind_of(x) for x in own}
        # Varieties of one kind (two melons, two apples) are where the model errs most:
        # telling them apart takes a near-certain view.
        least = s.same_kind_min_score if same_kind else s.min_label_score
        if top.score < least:
            return
        if track is not None:
            votes = track.top_votes
            mine = votes.get(top.label, 0)
            if sum(votes.values()) - mine >= max(mine, 1) or (mine < 2 and len(votes) > 1):
                # Sure views disagree on what the item is. While one of them sees the
                # scanned item, or its kind, wait for one that agrees. When every one of
                # them sees something else (a peach, then a pomegranate, for carrots), they
                # agree on what matters: it is not what was scanned.
                own_kinds = {kind_of(label) for label in own} - {""}
                if same_kind or any(v.lower() in own or kind_of(v) in own_kinds for v in votes):
                    return
        if confused_with(s, own, top.label):
            return  # the model is known to see the scanned item as this one
        own_score = max((ls.score for ls in labels if ls.label.lower() in own), default=0.0)
        if own_score > s.max_own_label_score or top.score - own_score < s.label_margin:
            return  # the camera also sees the scanned item: no case to answer
        found = self.host.catalog.by_label(lane.store_id, top.label)
        if found is None or not _weighs_like(line, found):
            return
        margin = top.score - own_score
        confidence = 0.45 + 0.35 * min(1.0, margin / 0.6) + 0.05 * min(views - 1, 3)
        self._mismatch(lane, line, rec, found, clamp(confidence, 0.0, 0.95), top.label)

    def _mismatch(
        self,
        lane: Lane,
        line: Line,
        rec: Recognition,
        seen_item: CatalogItem | None,
        confidence: float,
        seen_name: str,
    ) -> None:
        seen = line.seen
        if seen.alert_id or seen.withdrawn:
            return  # one alert per line, however many views follow
        weight = line.weight_mg if line.sold_by_weight else 0
        seen_minor = (
            seen_item.price_minor(weight_mg=weight, quantity=line.quantity) if seen_item else 0
        )
        if seen_item is not None and seen_minor <= line.extended_minor:
            return  # what vision sees costs no more than what was charged
        produce = line.plu != "" and line.entry_method in _PRODUCE_ENTRY
        alert_type = AlertType.WRONG_PRODUCE_PLU if produce else AlertType.ITEM_MISMATCH
        if seen.confidence:
            # A weaker signal about the line was held: a later view signals again only
            # when clearly stronger, and strong enough alone (it supersedes the first).
            threshold = self.host.alerts.tuner.threshold(lane.store_id, alert_type.rule_name)
            if confidence < max(seen.confidence + _REJUDGE_CHANGE, threshold):
                return
        seen.confidence = confidence
        alert = self.host.emit(
            lane,
            Signal(
                type=alert_type,
                confidence=confidence,
                amount_minor=max(seen_minor - line.extended_minor, 0),
                currency=line.currency,
                event_ids=[line.event_id, rec.event_id],
                at_ms=max(line.added_ms, rec.at_ms),
                item=item_ref_of_line(line),
                item_keys={f"line:{line.line_id}", f"track:{rec.track_id}"},
                detail={"seen": seen_item.description if seen_item else seen_name},
            ),
        )
        if alert is not None:
            seen.alert_id = alert.alert_id

    def _withdraw(self, lane: Lane, line: Line, track: Track) -> None:
        """Later views of the track agree with the line: the mismatch was one bad view."""
        seen = line.seen
        alert = self.host.alerts.alerts.get(seen.alert_id)
        seen.alert_id = ""
        seen.withdrawn = True
        if alert is None or not set(alert.merged_types) <= _MISMATCH_TYPES:
            return  # other evidence was merged into the alert: it stands
        best = track.best
        self.host.alerts.withdraw(
            lane,
            alert.alert_id,
            "Later views of the item match the scanned product"
            + (f" ({best.label}, {best.score:.2f})" if best else ""),
        )
