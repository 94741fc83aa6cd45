"""Vision rules: missed scan, item mismatch, wrong produce PLU, item left in cart, camera."""

from __future__ import annotations

from lanesight.fusion.alerts import AlertType
from lanesight.fusion.catalog import CatalogItem
from lanesight.fusion.events import (
    BarcodeSeen,
    CameraHealth,
    CameraHealthChanged,
    EntryMethod,
    ItemRecognized,
    LabelScore,
    LaneEvent,
    LaneZone,
    ZoneCrossing,
    ZoneDirection,
    ZoneItemCount,
)
from lanesight.fusion.lane import Lane, Line, Recognition, ScanToken, Track, Transaction
from lanesight.fusion.rules import RuleHost, item_ref_of, item_ref_of_line
from lanesight.fusion.signals import Correction, Signal, clamp

_TAMPER_CONFIDENCE = {
    CameraHealth.BLOCKED: 0.92,
    CameraHealth.MOVED: 0.85,
    CameraHealth.DARK: 0.8,
    CameraHealth.FROZEN: 0.8,
    CameraHealth.NO_SIGNAL: 0.55,
}
_HEALTH_WORDS = {
    CameraHealth.BLOCKED: "blocked",
    CameraHealth.MOVED: "moved",
    CameraHealth.DARK: "too dark",
    CameraHealth.FROZEN: "frozen",
    CameraHealth.NO_SIGNAL: "lost",
}
_MAX_TRACK_EVENTS = 8
# A recognition this sure rules out that a scan of a different item covers the track.
_SURE_SCORE = 0.6
# A linked track's labels are judged again when its top label changes or its top score
# moves this much (vision reports better views of a track later).
_REJUDGE_CHANGE = 0.1


class VisionRules:
    """Links what the camera saw to what the POS registered."""

    def __init__(self, host: RuleHost) -> None:
        self.host = host
        self.settings = host.config.vision
        self.jitter_ms = host.config.rules.jitter_ms

    # ---- tracks and missed scans ----------------------------------------------------

    def _track(self, lane: Lane, track_id: str, at_ms: int, event_id: str) -> Track:
        track = lane.tracks.get(track_id)
        if track is None:
            track = lane.tracks[track_id] = Track(track_id, at_ms, at_ms)
        track.last_seen_ms = max(track.last_seen_ms, at_ms)
        if len(track.event_ids) < _MAX_TRACK_EVENTS:
            track.event_ids.append(event_id)
        return track

    def on_crossing(self, lane: Lane, event: LaneEvent, crossing: ZoneCrossing) -> None:
        """Follow a track between zones; a crossing into the bag needs a scan."""
        lane.vision_seen = True
        at = event.lane_time_ms
        track = self._track(lane, crossing.track_id, at, event.event_id)
        zone = crossing.zone
        if zone is LaneZone.CART:
            lane.cart_crossing_ms = max(lane.cart_crossing_ms, at)
        if crossing.direction is ZoneDirection.LEFT:
            if track.zone is zone:
                track.zone = LaneZone.UNSPECIFIED
            return
        if crossing.direction is not ZoneDirection.ENTERED:
            return
        if track.zone is LaneZone.CART and zone is not LaneZone.CART:
            lane.cart_crossing_ms = max(lane.cart_crossing_ms, at)  # its leaving went unseen
        track.zone = zone
        if zone is LaneZone.SCAN:
            track.visited_scan = True
        txn = lane.txn
        if zone is not LaneZone.BAGGING or track.entered_bagging_ms or txn is None:
            return
        if txn.tender_completed:
            return
        track.entered_bagging_ms = at
        if not self._claim_token(txn, at, track):
            deadline = at + self.settings.missed_scan_after_ms + self.jitter_ms
            lane.schedule(deadline, "crossing", track)

    def _compatible(self, track: Track, line: Line | None, linked: bool = True) -> bool:
        """False when the camera is sure the item is not the scanned one (a scan of another
        item must not cover it); unsure recognitions are compatible with anything. With
        ``linked``, the line linked to this very track is compatible whatever vision sees:
        if the item differs from what was charged, that is the line's item mismatch, not a
        missed scan."""
        if linked and line is not None and line.vision_track == track.track_id:
            return True
        best = track.best
        if line is None or line.item is None or not line.item.vision_labels or best is None:
            return True
        if best.score < _SURE_SCORE:
            return True
        own = {label.lower() for label in line.item.vision_labels}
        return any(ls.label.lower() in own for ls in track.labels[:3])

    def _claim_token(self, txn: Transaction, at_ms: int, track: Track, linked: bool = True) -> bool:
        tokens = txn.scan_tokens
        earliest = at_ms - self.settings.missed_scan_before_ms
        latest = at_ms + self.settings.missed_scan_after_ms
        while tokens and (tokens[0].used or tokens[0].at_ms < earliest - 60_000):
            tokens.popleft()
        found = None
        for token in tokens:
            if not token.used and earliest <= token.at_ms <= latest:
                line = token.line
                if linked and line is not None and line.vision_track == track.track_id:
                    found = token  # the track's own line comes first
                    break
                if found is None and self._compatible(track, line, linked):
                    found = token
        if found is None:
            return False
        found.used = True
        return True

    def on_scan(self, lane: Lane, txn: Transaction, token: ScanToken) -> None:
        """A new scanned unit covers the oldest crossing still waiting for one."""
        earliest = token.at_ms - self.settings.missed_scan_after_ms
        latest = token.at_ms + self.settings.missed_scan_before_ms
        for _, _, pending in sorted(lane.pending, key=lambda p: (p[0], p[1])):
            if pending.kind != "crossing" or pending.done:
                continue
            track: Track = pending.data  # type: ignore[assignment]
            if earliest <= track.entered_bagging_ms <= latest and self._compatible(
                track, token.line
            ):
                pending.done = True
                return
        txn.scan_tokens.append(token)

    def on_crossing_due(self, lane: Lane, track: Track) -> None:
        """No scan covered a crossing into the bagging area."""
        txn = lane.txn
        if txn is None:
            return
        # A surer view since the crossing may show the item is what a scan was for after
        # all (its first view ruled that scan out). A link made only as the item reached
        # the bag is no such evidence: a passed-around item links to any unlinked line.
        if self._claim_token(txn, track.entered_bagging_ms, track, linked=False):
            return
        best = track.best
        # An object vision cannot name (a bag, a hand, a coat) is weak evidence alone.
        recognized = best is not None and best.score >= self.settings.min_label_score
        confidence = 0.8 if recognized else 0.35
        if not track.visited_scan:
            confidence += 0.1  # went around the scanner
        item = self.host.catalog.by_label(lane.store_id, best.label) if best else None
        self.host.emit(
            lane,
            Signal(
                type=AlertType.MISSED_SCAN,
                confidence=clamp(confidence),
                amount_minor=item.price_minor() if item else 0,
                currency=item.currency_code if item else "USD",
                event_ids=list(track.event_ids),
                at_ms=track.entered_bagging_ms,
                item=item_ref_of(item),
                item_keys={f"track:{track.track_id}"},
                correction=Correction("any_scan"),
            ),
        )

    # ---- recognition at the scanner -------------------------------------------------

    def on_recognized(self, lane: Lane, event: LaneEvent, rec: ItemRecognized) -> None:
        """Keep the track's labels; link scan-zone recognitions to POS lines."""
        lane.vision_seen = True
        at = event.lane_time_ms
        track = self._track(lane, rec.track_id, at, event.event_id)
        if rec.labels:
            track.add_recognition(rec.labels)
        if rec.zone not in (LaneZone.SCAN, LaneZone.BAGGING) or not rec.labels:
            return
        if track.linked:
            self._rejudge(lane, track, event)
            return
        recognition = Recognition(at, rec.track_id, rec.labels, event.event_id)
        if rec.zone is LaneZone.BAGGING:
            # Seen only on its way into the bag (the scan-zone view was missed): it
            # belongs to a line scanned just before, if one is still unlinked.
            self._link_waiting(lane, recognition, bagging=True)
            return
        if self._link_waiting(lane, recognition, bagging=False):
            return
        lane.scan_recognitions.append(recognition)
        while len(lane.scan_recognitions) > 32:
            lane.scan_recognitions.popleft()

    def _link_waiting(self, lane: Lane, recognition: Recognition, bagging: bool) -> bool:
        at = recognition.at_ms
        waiting = lane.lines_awaiting_vision
        while waiting and waiting[0].added_ms < at - 60_000:
            waiting.popleft()
        best_line = None
        for line in waiting:
            if line.vision_linked:
                continue
            if bagging:
                fits = (
                    line.added_ms - self.jitter_ms
                    <= at
                    <= line.added_ms + self.settings.missed_scan_before_ms
                )
            else:
                fits = self._linkable(line, at)
            if fits and (best_line is None or line.added_ms < best_line.added_ms):
                best_line = line
        if best_line is None:
            return False
        self._link(lane, best_line, recognition)
        return True

    def _rejudge(self, lane: Lane, track: Track, event: LaneEvent) -> None:
        """Judge a linked line again when vision's view of its track changed enough (a
        better view after the line was linked, such as the settled item)."""
        line, best, judged = track.line, track.best, track.judged
        if line is None or best is None or line.item is None or line.voided:
            return
        if line.vision_alerted or (track.barcode_gtin and line.gtin):
            return  # already raised, or the camera's barcode read decided
        if (
            judged is not None
            and best.label == judged.label
            and abs(best.score - judged.score) < _REJUDGE_CHANGE
        ):
            return
        rec = Recognition(event.lane_time_ms, track.track_id, track.labels, event.event_id, True)
        self._judge_labels(lane, line, rec)

    def _linkable(self, line: Line, rec_ms: int) -> bool:
        """True when a recognition at rec_ms can be of the item on this line."""
        weighed = line.entry_method in (EntryMethod.PLU_LOOKUP, EntryMethod.KEYED)
        before = (
            self.settings.produce_link_window_ms if weighed else self.settings.scan_link_window_ms
        )
        return line.added_ms - before <= rec_ms <= line.added_ms + self.settings.scan_link_after_ms

    def on_barcode_seen(self, lane: Lane, event: LaneEvent, seen: BarcodeSeen) -> None:
        """Remember a barcode the camera read on a track."""
        lane.vision_seen = True
        if seen.track_id and seen.gtin:
            track = self._track(lane, seen.track_id, event.lane_time_ms, event.event_id)
            track.barcode_gtin = seen.gtin.zfill(14)

    def on_line_added(self, lane: Lane, line: Line) -> None:
        """Link a new line to the latest recognition at the scanner that can be its item."""
        best = None
        tracks = lane.tracks
        for rec in lane.scan_recognitions:
            if rec.linked or not self._linkable(line, rec.at_ms):
                continue
            track = tracks.get(rec.track_id)
            if track is not None and track.linked:
                continue  # an earlier view of a track already linked to another line
            if best is None or rec.at_ms > best.at_ms:
                best = rec
        if best is not None:
            self._link(lane, line, best)
        else:
            lane.lines_awaiting_vision.append(line)

    def _link(self, lane: Lane, line: Line, rec: Recognition) -> None:
        line.vision_linked = True
        line.vision_track = rec.track_id
        rec.linked = True
        track = lane.tracks.get(rec.track_id)
        if track is not None:
            track.linked = True
            track.line = line
        if line.item is None:
            return
        if track is not None and track.barcode_gtin and line.gtin:
            if track.barcode_gtin != line.gtin.zfill(14):
                seen = self.host.catalog.by_gtin(lane.store_id, track.barcode_gtin)
                self._mismatch(lane, line, rec, seen, 0.9, seen.description if seen else "")
            return
        self._judge_labels(lane, line, rec)

    def _judge_labels(self, lane: Lane, line: Line, rec: Recognition) -> None:
        item = line.item
        assert item is not None
        track = lane.tracks.get(rec.track_id)
        labels = track.labels if track is not None and track.labels else rec.labels
        own = {label.lower() for label in item.vision_labels}
        top: LabelScore = labels[0]
        if track is not None:
            track.judged = top
        if top.label.lower() in own or top.score < self.settings.min_label_score:
            return
        own_score = max((ls.score for ls in labels if ls.label.lower() in own), default=0.0)
        margin = top.score - own_score
        if margin < self.settings.label_margin:
            return
        seen = self.host.catalog.by_label(lane.store_id, top.label)
        if seen is None:
            return
        confidence = top.score * (0.55 + 0.45 * min(1.0, margin / 0.7))
        if item.vision_labels and own_score == 0.0 and top.coarse_label:
            confidence += 0.03
        self._mismatch(lane, line, rec, seen, clamp(confidence), top.label)

    def _mismatch(
        self,
        lane: Lane,
        line: Line,
        rec: Recognition,
        seen: CatalogItem | None,
        confidence: float,
        seen_name: str,
    ) -> None:
        weight = line.weight_mg if line.sold_by_weight else 0
        seen_minor = seen.price_minor(weight_mg=weight, quantity=line.quantity) if seen else 0
        if seen is not None and seen_minor <= line.extended_minor:
            return  # what vision sees costs no more than what was charged
        produce = line.plu != "" and line.entry_method in (
            EntryMethod.PLU_LOOKUP,
            EntryMethod.KEYED,
            EntryMethod.VISION_SUGGESTION,
        )
        alert_type = AlertType.WRONG_PRODUCE_PLU if produce else AlertType.ITEM_MISMATCH
        if line.vision_alerted:
            return  # one alert per line, however many better views follow
        if line.vision_confidence:
            # A weaker signal about the line was held: a later view signals again only
            # when clearly stronger, and strong enough alone (it supersedes the first).
            threshold = self.host.alerts.tuner.threshold(lane.store_id, alert_type.rule_name)
            if confidence < max(line.vision_confidence + _REJUDGE_CHANGE, threshold):
                return
        line.vision_confidence = confidence
        self.host.emit(
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
                detail={"seen": seen.description if seen else seen_name},
            ),
        )
        # Raised, or merged into an alert about the line: later views do not signal again.
        key = f"line:{line.line_id}"
        txn_id = lane.txn.transaction_id if lane.txn else None
        line.vision_alerted = any(
            key in alert.item_keys and alert_type in alert.merged_types
            for alert in self.host.alerts.open_alerts(lane, txn_id)
        )

    # ---- the cart at tender, and the camera -----------------------------------------

    def on_zone_count(self, lane: Lane, event: LaneEvent, count: ZoneItemCount) -> None:
        """Keep the cart zone's item count."""
        lane.vision_seen = True
        if count.zone is LaneZone.CART:
            lane.cart_count = count.count
            lane.cart_count_ms = event.lane_time_ms

    def on_tender_started(self, lane: Lane, event: LaneEvent) -> None:
        """Items still in the cart when payment starts."""
        if not lane.vision_seen or not lane.vision_available or lane.txn is None:
            return
        in_cart = [t for t in lane.tracks.values() if t.zone is LaneZone.CART]
        fresh_ms = lane.cart_crossing_ms - self.jitter_ms
        if lane.cart_count >= 0 and lane.cart_count_ms >= fresh_ms:
            count = lane.cart_count
            confidence = 0.85 if in_cart else 0.7
        else:
            count = len(in_cart)
            confidence = 0.75
        if lane.ledger.seen:
            # Heavy items scanned in the cart may stay there at a lane with a bagging scale.
            count -= sum(line.unbagged_units for line in lane.txn.order if line.skip_bagging)
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
        event_ids = [event.event_id] + [e for t in in_cart for e in t.event_ids[:2]]
        self.host.emit(
            lane,
            Signal(
                type=AlertType.ITEM_LEFT_IN_CART,
                confidence=confidence,
                amount_minor=amount,
                currency=item.currency_code if item else "USD",
                event_ids=event_ids,
                at_ms=event.lane_time_ms,
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
                currency="USD",
                event_ids=[event_id],
                at_ms=lane.clock_ms,
                item_keys={f"camera:{camera_id}"},
                detail={"health": _HEALTH_WORDS[health]},
            ),
        )
