"""The fusion engine: per-lane state machines fed by lane events, emitting alerts and commands.

Plain Python with no gRPC or protobuf. Time is the lane's own clock (event timestamps),
so replaying the same events yields the same alerts; in live mode ``tick`` advances each
lane's clock by the wall time elapsed since its last event.
"""

from __future__ import annotations

import heapq
import logging
import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lanesight.fusion import events as ev
from lanesight.fusion.alertbook import AlertBook, AlertUpdate
from lanesight.fusion.alerts import Alert, Disposition, LaneCommand
from lanesight.fusion.catalog import CatalogBook
from lanesight.fusion.config import FusionConfig
from lanesight.fusion.escalation import Escalator, ThresholdTuner
from lanesight.fusion.lane import RECENT_IDS, Lane, Line, Pending, ScanToken, Transaction
from lanesight.fusion.ledger import BaggingScaleLedger
from lanesight.fusion.lines import new_line, set_expected_weight
from lanesight.fusion.profiles import WeightProfiles
from lanesight.fusion.rules.bagging import BaggingRules
from lanesight.fusion.rules.identity import IdentityRules
from lanesight.fusion.rules.labels import LabelRules
from lanesight.fusion.rules.pos import PosRules
from lanesight.fusion.rules.vision import VisionRules
from lanesight.fusion.signals import Signal
from lanesight.fusion.validation import Rejection, validate_event

log = logging.getLogger(__name__)

_WEIGHED = (ev.UnitOfMeasure.KILOGRAM,)
_PER_UNIT_MS = 2_000
# A POS adds the line for a barcode read within this long of the read.
_READ_TO_LINE_MS = 5_000


@dataclass(slots=True)
class IngestResult:
    """What became of one batch of a lane's events."""

    acked_sequence: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    duplicates: int = 0
    gap_events: int = 0
    applied: list[int] = field(default_factory=list)


class FusionEngine:
    """Every lane's state, the rules, and the alert book."""

    def __init__(
        self,
        config: FusionConfig | None = None,
        catalog: CatalogBook | None = None,
        profiles: WeightProfiles | None = None,
    ) -> None:
        self.config = config or FusionConfig()
        self.catalog = catalog if catalog is not None else CatalogBook()
        p = self.config.profiles
        self.profiles = profiles or WeightProfiles(
            p.min_samples, p.outlier_sigma, p.outlier_floor_mg, p.range_sigma
        )
        self.tuner = ThresholdTuner(self.config.rules, self.config.feedback)
        self.escalator = Escalator(self.config)
        self.alerts = AlertBook(self.config, self.tuner, self.escalator)
        self.lanes: dict[tuple[str, str], Lane] = {}
        self.bagging = BaggingRules(self)
        self.vision = VisionRules(self)
        self.identity = IdentityRules(self)
        self.labels = LabelRules(self)
        self.pos = PosRules(self)
        self.events_applied = 0
        self.events_by_type: dict[type, int] = {}
        self.duplicates = 0
        self.rejected = 0
        self._price_per_g: float | None = None
        # Each handler takes its own payload type: Any, as a dict cannot tie key to value.
        self._handlers: dict[type, Callable[[Lane, ev.LaneEvent, Any], None]] = {
            ev.TransactionStarted: self._on_transaction_started,
            ev.ItemAdded: self._on_item_added,
            ev.ItemVoided: self._on_item_voided,
            ev.QuantityChanged: self._on_quantity_changed,
            ev.PriceOverride: self._on_price_override,
            ev.TransactionSuspended: self._on_transaction_suspended,
            ev.TransactionResumed: self._on_transaction_resumed,
            ev.TenderStarted: self._on_tender_started,
            ev.TenderCompleted: self._on_tender_completed,
            ev.TransactionEnded: self._on_transaction_ended,
            ev.NoSaleDrawerOpen: self.pos.on_no_sale,
            ev.RefundIssued: self.pos.on_refund,
            ev.AttendantOverride: self._on_attendant_override,
            ev.BarcodeRead: self._on_barcode_read,
            ev.ScaleReading: self._on_scale_reading,
            ev.ZoneCrossing: self.vision.on_crossing,
            ev.ItemRecognized: self._on_item_recognized,
            ev.BarcodeSeen: self._on_barcode_seen,
            ev.BaggingSkipped: self._on_bagging_skipped,
            ev.OwnBagDeclared: self._on_own_bag_declared,
            ev.ZoneItemCount: self.vision.on_zone_count,
            ev.CameraHealthChanged: self.vision.on_camera_health,
            ev.PeripheralHealthChanged: self._on_peripheral_health,
        }
        self._due: dict[str, Callable[[Lane, Any], None]] = {
            "increase": self.bagging.on_increase_due,
            "decrease": self.bagging.on_decrease_due,
            "carry": self.bagging.on_carry_due,
            "crossing": self.vision.on_crossing_due,
            "camera": self.vision.on_camera_due,
            "cart": self.vision.on_cart_due,
            "identity": self.identity.on_judge_due,
            "prompt": self.alerts.escalate_prompt,
        }

    # ---- lanes and ingest -----------------------------------------------------------

    def lane(self, store_id: str, lane_id: str) -> Lane:
        """The lane's state, created on first use."""
        key = (store_id, lane_id)
        lane = self.lanes.get(key)
        if lane is None:
            b = self.config.bagging
            ledger = BaggingScaleLedger(
                b.change_threshold_mg, b.tolerance_floor_mg, b.tolerance_pct, b.max_subset_items
            )
            lane = self.lanes[key] = Lane(store_id, lane_id, ledger)
        return lane

    def ingest(
        self, events: Sequence[ev.LaneEvent], received_mono_ms: float | None = None
    ) -> IngestResult:
        """Apply one lane's batch (already checked by validation.check_batch).

        Duplicates (a sequence at or below the last one, or a known event id) are skipped;
        invalid events become rejections; both still count as acknowledged.
        """
        # The hot path of Ingest: what every event costs is kept in this one loop, with
        # the lane's state and the engine's tables in locals.
        result = IngestResult()
        rejections = result.rejections
        applied = result.applied
        duplicates = 0
        lane: Lane | None = None
        recent_ids: set[str] = set()
        recent_order: deque[str] = deque()
        jitter_ms = self.config.rules.jitter_ms
        reorder_max_ms = self.config.rules.reorder_max_ms
        for index, event in enumerate(events):
            if lane is None:
                lane = self.lane(event.store_id, event.lane_id)
                recent_ids, recent_order = lane.recent_ids, lane.recent_id_order
            sequence = event.sequence
            event_id = event.event_id
            last = lane.last_sequence
            if sequence <= last or event_id in recent_ids:
                duplicates += 1
                continue
            if last and sequence > last + 1:
                missing = sequence - last - 1
                result.gap_events += missing
                lane.gap_events += missing
                lane.data_quality_issues += 1
                log.warning(
                    "lane %s/%s: %d events missing before sequence %d",
                    lane.store_id,
                    lane.lane_id,
                    missing,
                    sequence,
                )
            lane.last_sequence = sequence
            if event_id:  # Lane.remember_id, inline
                recent_ids.add(event_id)
                recent_order.append(event_id)
                if len(recent_order) > RECENT_IDS:
                    recent_ids.discard(recent_order.popleft())
            problem = validate_event(event)
            if problem is not None:
                rejections.append(Rejection(event_id, sequence, problem[0], problem[1]))
                lane.data_quality_issues += 1
                continue
            at = event.lane_time_ms
            newest = lane.newest_ms
            if at >= newest:
                lane.newest_ms = at
                if lane.hold_ms:
                    # No lateness now: the hold wears off over a few hundred events.
                    lane.hold_ms -= max(1, lane.hold_ms >> 8)
                elif not lane.held:
                    # In order, nothing waiting (the common case): apply it now.
                    if not self._apply(lane, event):
                        rejections.append(
                            Rejection(event_id, sequence, "payload", "internal error")
                        )
                        continue
                    applied.append(index)
                    continue
            else:
                late = newest - at
                if late > jitter_ms:
                    lane.late_events += 1
                # Events arrive this late on this lane now: hold every event as long,
                # so that each is applied in lane-time order (up to reorder_max_ms).
                lane.hold_ms = min(max(lane.hold_ms, late), reorder_max_ms)
            heapq.heappush(lane.held, (at, sequence, event))
            self._release(lane, lane.newest_ms - lane.hold_ms)
            applied.append(index)
        result.duplicates = duplicates
        if lane is not None:
            result.acked_sequence = lane.last_sequence
            if received_mono_ms is not None:
                lane.anchor_lane_ms = max(lane.clock_ms, lane.newest_ms)
                lane.anchor_mono_ms = received_mono_ms
        self.duplicates += duplicates
        self.rejected += len(rejections)
        return result

    def _apply(self, lane: Lane, event: ev.LaneEvent) -> bool:
        """Apply one event to its lane; False when it failed inside the engine."""
        try:
            # Advance the lane clock, closing the windows that expired before it.
            at = event.lane_time_ms
            if at > lane.clock_ms:
                due = lane.pending
                if due and (due[0][0] < at or due[0][2].done):
                    self._fire_due(lane, at - 1)
                lane.clock_ms = at
            lane.last_event_ms = at
            self.events_applied += 1
            payload = event.payload
            kind = type(payload)
            by_type = self.events_by_type
            by_type[kind] = by_type.get(kind, 0) + 1
            handler = self._handlers.get(kind)
            if handler is not None:
                handler(lane, event, payload)
        except Exception:
            # A bug must not block the lane: the agent would resend the same event
            # forever. Record it as a data-quality problem and move on.
            log.exception(
                "lane %s/%s: event %s could not be applied",
                lane.store_id,
                lane.lane_id,
                event.event_id,
            )
            lane.data_quality_issues += 1
            return False
        return True

    def _release(self, lane: Lane, up_to_ms: int) -> None:
        """Apply the held events of lane time up to up_to_ms, in lane-time order (an
        event that failed inside the engine is logged and counted; it was accepted)."""
        held = lane.held
        while held and held[0][0] <= up_to_ms:
            self._apply(lane, heapq.heappop(held)[2])

    def process(self, event: ev.LaneEvent) -> IngestResult:
        """Apply a single event (a batch of one)."""
        return self.ingest((event,))

    # ---- time -----------------------------------------------------------------------

    def _fire_due(self, lane: Lane, now_ms: int) -> None:
        while (pending := lane.pop_due(now_ms)) is not None:
            lane.clock_ms = max(lane.clock_ms, pending.deadline_ms)
            self._fire(lane, pending)

    def _fire(self, lane: Lane, pending: Pending) -> None:
        if pending.kind != "prompt" and (
            lane.txn is None or lane.txn.transaction_id != pending.transaction_id
        ):
            return
        self._due[pending.kind](lane, pending.data)

    def advance_to(self, store_id: str, lane_id: str, lane_time_ms: int) -> None:
        """Move a lane's clock forward (live mode), closing the windows that expired."""
        lane = self.lanes.get((store_id, lane_id))
        if lane is None:
            return
        lane_time_ms -= lane.hold_ms  # what is held back is not applied yet
        self._release(lane, lane_time_ms)
        if lane_time_ms > lane.clock_ms:
            self._fire_due(lane, lane_time_ms)
            lane.clock_ms = lane_time_ms

    def lane_now(self, lane: Lane, now_mono_ms: float | None) -> int:
        """The lane's time now: its last event time plus the wall time since it arrived."""
        if now_mono_ms is None or lane.anchor_mono_ms < 0:
            return lane.clock_ms
        return max(lane.clock_ms, lane.anchor_lane_ms + int(now_mono_ms - lane.anchor_mono_ms))

    def tick(self, now_mono_ms: float) -> None:
        """Advance every live lane with open windows to its current lane time."""
        for lane in self.lanes.values():
            if lane.anchor_mono_ms < 0:
                continue
            now = self.lane_now(lane, now_mono_ms) - lane.hold_ms
            if lane.held:
                self._release(lane, now)
            deadline = lane.next_deadline()
            if deadline is None:
                continue
            if now >= deadline:
                self._fire_due(lane, now)
                lane.clock_ms = max(lane.clock_ms, now)

    def flush(self) -> None:
        """Close every open window now (end of a replay or a simulation)."""
        for lane in self.lanes.values():
            self._release(lane, 1 << 62)
            while (pending := lane.pop_due(1 << 62)) is not None:
                self._fire(lane, pending)

    # ---- alerts ---------------------------------------------------------------------

    def emit(self, lane: Lane, signal: Signal) -> Alert | None:
        """Hand a rule's signal to the alert book; the alert it raised or joined, if any."""
        self_checkout = lane.txn.self_checkout if lane.txn else False
        return self.alerts.submit(lane, signal, self_checkout)

    def take_outputs(self) -> list[AlertUpdate | LaneCommand]:
        """Alert revisions and lane commands produced since the last call."""
        return self.alerts.take_outputs()

    def take_processed_counts(self) -> dict[type, int]:
        """Events applied per payload type since the last call (for metrics)."""
        counts, self.events_by_type = self.events_by_type, {}
        return counts

    def _lane_of(self, alert_id: str) -> tuple[Alert, Lane]:
        alert = self.alerts.alerts[alert_id]
        return alert, self.lane(alert.store_id, alert.lane_id)

    def acknowledge(self, alert_id: str, attendant_id: str, now_mono_ms: float | None = None):
        """An attendant saw the alert; raises KeyError for an unknown id."""
        alert, lane = self._lane_of(alert_id)
        return self.alerts.acknowledge(alert_id, attendant_id, self.lane_now(lane, now_mono_ms))

    def resolve(
        self,
        alert_id: str,
        disposition: Disposition,
        attendant_id: str,
        note: str = "",
        amount_recovered: ev.Money | None = None,
        now_mono_ms: float | None = None,
    ) -> Alert:
        """Close an alert; raises KeyError (unknown) or ValueError (no disposition)."""
        if disposition is Disposition.UNSPECIFIED:
            raise ValueError("disposition must not be UNSPECIFIED")
        alert, lane = self._lane_of(alert_id)
        return self.alerts.resolve(
            lane,
            alert_id,
            disposition,
            attendant_id,
            self.lane_now(lane, now_mono_ms),
            note,
            amount_recovered,
        )

    def catalog_changed(self) -> None:
        """Forget what was derived from the catalog (call after an upsert)."""
        self._price_per_g = None

    def vision_allows(self, lane: Lane, line: Line, change, also: tuple[Line, ...] = ()) -> bool:
        """False when the camera surely saw another item (than line, and those in
        ``also``) reach the bag for this change."""
        return self.vision.allows(lane, line, change, also)

    def defer_for_plu(self, lane: Lane, track, kind: str, data: object) -> bool:
        """Reopen a window while the track's produce code is visibly being entered."""
        return self.vision.defer_for_plu(lane, track, kind, data)

    def vision_names_other(self, lane: Lane, line: Line, change) -> bool:
        """True when the camera surely named another item of this change's weight."""
        return self.vision.names_other(lane, line, change)

    def vision_confirms_item(self, lane: Lane, line: Line, change) -> bool:
        """True when the camera surely saw the scanned item itself go down for this
        change and no other catalog item of its kind weighs it."""
        return self.vision.confirms_item(lane, line, change)

    def measured_weight(self, sku: str, weight_mg: int, confirmed: bool, source: str = "") -> bool:
        """One unit of sku weighed weight_mg, off the catalog (``confirmed``: the camera
        surely saw it was that item; ``source``: the transaction it was weighed in). True
        when the weights measured so far show the catalog is wrong and this one fits."""
        return self.profiles.observe_measured(sku, weight_mg, confirmed, source)

    def labels_near(self, lane: Lane, at_ms: int, since_ms: int | None = None) -> tuple:
        """The labels of the named item that reached the bag around at_ms, if any."""
        return self.vision.labels_near(lane, at_ms, since_ms)

    def currency_of(self, lane: Lane) -> str:
        """The currency of the lane's transaction, else of its store's catalog."""
        if lane.txn is not None and lane.txn.currency:
            return lane.txn.currency
        return self.catalog.currency(lane.store_id) or "USD"

    def amount_for_weight(self, lane: Lane, weight_mg: int) -> int:
        """What an unidentified item of this weight likely costs: vision's label, else the
        catalog's median price per gram."""
        window = self.config.rules.merge_window_ms
        for track in lane.tracks.values():
            best = track.best
            if (
                best is not None
                and track.entered_bagging_ms
                and abs(lane.clock_ms - track.entered_bagging_ms) <= window
            ):
                item = self.catalog.by_label(lane.store_id, best.label)
                if item is not None:
                    return item.price_minor()
        if self._price_per_g is None:
            ratios = [
                item.unit_price.amount_minor / ((item.min_weight_mg + item.max_weight_mg) / 2000)
                for scope in [self.catalog.chain, *self.catalog.stores.values()]
                for item in scope.items.values()
                if item.unit_price and item.has_weight_range and item.max_weight_mg > 0
            ]
            self._price_per_g = statistics.median(ratios) if ratios else 0.5
        return int(self._price_per_g * abs(weight_mg) / 1000)

    # ---- POS transaction lifecycle --------------------------------------------------

    def _start(
        self,
        lane: Lane,
        event: ev.LaneEvent,
        self_checkout: bool,
        operator: str,
        kind: ev.TransactionKind = ev.TransactionKind.SALE,
    ):
        txn = Transaction(
            transaction_id=event.transaction_id or event.event_id,
            started_ms=event.lane_time_ms,
            self_checkout=self_checkout,
            operator_id=operator,
            currency=self.catalog.currency(lane.store_id),
            is_return=kind is ev.TransactionKind.RETURN,
        )
        # Whatever is on the bagging scale now was put there before this transaction (the
        # previous shopper's bags): lifting it off later is never a removal.
        txn.bagging.carry_mg = max(lane.ledger.baseline_mg or 0, 0)
        lane.txn = txn
        for camera_id, health in lane.camera_health.items():
            if health not in (ev.CameraHealth.OK, ev.CameraHealth.UNSPECIFIED):
                self.vision.watch_camera(lane, camera_id, event.event_id, event.lane_time_ms)
        return txn

    def _txn(self, lane: Lane, event: ev.LaneEvent) -> Transaction:
        if lane.txn is None:
            # Fusion joined mid-transaction (a restart, or a lane moved to this replica).
            return self._start(lane, event, False, "")
        return lane.txn

    def _on_transaction_started(self, lane: Lane, event: ev.LaneEvent, p) -> None:
        if lane.txn is not None:
            self._end(lane, completed=False)
        self._start(lane, event, p.self_checkout, p.operator_id, p.kind)

    def _on_transaction_ended(self, lane: Lane, event: ev.LaneEvent, p) -> None:
        if lane.txn is not None:
            self._end(lane, completed=p.outcome is ev.TransactionOutcome.COMPLETED)

    def _on_transaction_suspended(self, lane: Lane, event: ev.LaneEvent, p) -> None:
        if lane.txn is not None:
            self._end(lane, completed=False)

    def _on_transaction_resumed(self, lane: Lane, event: ev.LaneEvent, p) -> None:
        if lane.txn is None:
            self._start(lane, event, False, p.operator_id)

    def _end(self, lane: Lane, completed: bool) -> None:
        txn = lane.txn
        assert txn is not None
        # Windows still open close with the transaction, in deadline order.
        while (pending := lane.pop_due(1 << 62)) is not None:
            self._fire(lane, pending)
        self.alerts.on_transaction_ended(lane, txn.transaction_id)
        if completed and not txn.alert_ids:
            for sku, weight_mg in txn.weight_samples:
                self.profiles.observe(sku, weight_mg)
        lane.txn = None
        lane.pending_increases.clear()
        lane.pending_decreases.clear()
        self.vision.on_transaction_ended(lane, txn)
        lane.scan_recognitions.clear()
        lane.lines_awaiting_vision.clear()
        lane.cart_count = -1
        lane.cart_count_ms = lane.cart_crossing_ms = 0
        self.alerts.drop_lane_state(lane)

    def _on_tender_started(self, lane: Lane, event: ev.LaneEvent, p) -> None:
        txn = self._txn(lane, event)
        txn.tender_started_ms = event.lane_time_ms
        self.vision.on_tender_started(lane, event)
        self.bagging.on_tender_started(lane)
        self.alerts.on_tender_started(lane, txn.self_checkout)

    def _on_tender_completed(self, lane: Lane, event: ev.LaneEvent, p) -> None:
        self._txn(lane, event).tender_completed = True

    def _on_attendant_override(self, lane: Lane, event: ev.LaneEvent, p) -> None:
        if p.alert_id in self.alerts.alerts:
            self.alerts.acknowledge(p.alert_id, p.attendant_id, event.lane_time_ms)
        lane.paused = False
        lane.pausing_alerts.clear()

    # ---- items ----------------------------------------------------------------------

    def _on_item_added(self, lane: Lane, event: ev.LaneEvent, p: ev.ItemAdded) -> None:
        txn = self._txn(lane, event)
        read = lane.last_read
        if read is not None and (
            (p.barcode_data and read.raw_data != p.barcode_data)
            or p.entry_method in (ev.EntryMethod.PLU_LOOKUP, ev.EntryMethod.KEYED)
            or not 0 <= event.lane_time_ms - lane.last_read_ms <= _READ_TO_LINE_MS
        ):
            read = None  # another item's read: an earlier line's, or before a PLU lookup
        line = new_line(event, p, read, self.catalog, lane.store_id, txn.currency)
        if read is not None:
            # The item was scanned when the scanner read it; a POS can take a moment or two
            # to register the line (a slow lookup, a busy server), while the camera and the
            # scales go on. What was at the scanner, and the time windows, are the read's.
            line.added_ms = min(line.added_ms, lane.last_read_ms)
        money = p.extended_price or p.unit_price
        if money and not txn.currency:
            txn.currency = money.currency_code
        set_expected_weight(line, self.config.bagging, self.profiles)
        txn.lines[line.line_id] = line
        txn.order.append(line)
        # Link the line to the item the camera saw at the scanner first: its scans are
        # that item's, not any other waiting for one.
        self.identity.on_line_added(lane, line)
        for unit in range(line.quantity):
            # Each further unit of a line may take the shopper a moment longer to bag.
            token = ScanToken(
                line.added_ms, event.event_id, line, slack_ms=unit * _PER_UNIT_MS, further=unit > 0
            )
            self.vision.on_scan(
                lane,
                txn,
                token,
                first_unit=unit == 0,
                holder=lane.last_read_holder if read is not None else None,
            )
        self.labels.on_line_added(lane, line, read)
        self.bagging.on_line_added(lane, txn, line)
        self.alerts.on_line_added(lane, line, self._line_fits(lane, line))

    def _line_fits(self, lane: Lane, line: Line):
        def fits(low_mg: int, high_mg: int) -> bool:
            if not line.weight_known:
                return False  # nothing shows this is the alerted item
            middle = (low_mg + high_mg) // 2
            return any(
                lane.ledger.fits(
                    middle, k * line.unit_low_mg, k * line.unit_high_mg, line.item_tolerance_mg
                )
                for k in range(1, line.quantity + 1)
            )

        return fits

    def _on_item_voided(self, lane: Lane, event: ev.LaneEvent, p: ev.ItemVoided) -> None:
        txn = self._txn(lane, event)
        line = txn.lines.get(p.line_id)
        if line is None or line.voided:
            lane.data_quality_issues += 1
            return
        line.voided = True
        self.pos.on_void(lane, event, line, p.operator_id)
        self.bagging.on_void(lane, line)

    def _on_quantity_changed(self, lane: Lane, event: ev.LaneEvent, p) -> None:
        txn = self._txn(lane, event)
        line = txn.lines.get(p.line_id)
        if line is None:
            lane.data_quality_issues += 1
            return
        old = line.quantity
        line.quantity = p.new_quantity
        if p.new_extended_price is not None:
            line.extended_minor = p.new_extended_price.amount_minor
        for unit in range(max(p.new_quantity - old, 0)):
            token = ScanToken(
                event.lane_time_ms, event.event_id, line, slack_ms=unit * _PER_UNIT_MS, further=True
            )
            self.vision.on_scan(lane, txn, token)
        self.bagging.on_quantity_changed(lane, txn, line)
        self.alerts.on_quantity(lane, line)

    def _on_price_override(self, lane: Lane, event: ev.LaneEvent, p) -> None:
        txn = self._txn(lane, event)
        line = txn.lines.get(p.line_id)
        if line is not None and p.new_unit_price is not None:
            line.unit_price_minor = p.new_unit_price.amount_minor
            if not line.sold_by_weight:
                line.extended_minor = line.unit_price_minor * line.quantity
        self.pos.on_price_override(lane, event, p, line)

    def _on_bagging_skipped(self, lane: Lane, event: ev.LaneEvent, p: ev.BaggingSkipped):
        txn = self._txn(lane, event)
        line = txn.lines.get(p.line_id) if p.line_id else (txn.order[-1] if txn.order else None)
        if line is None:
            lane.data_quality_issues += 1
            return
        self.bagging.on_bagging_skipped(lane, txn, line)

    def _on_own_bag_declared(self, lane: Lane, event: ev.LaneEvent, p: ev.OwnBagDeclared):
        self.bagging.on_own_bag_declared(lane, self._txn(lane, event), p.bag_weight_mg)

    # ---- devices --------------------------------------------------------------------

    def _on_item_recognized(self, lane: Lane, event: ev.LaneEvent, p: ev.ItemRecognized):
        track = self.vision.on_recognized(lane, event, p)
        self.identity.on_recognized(lane, event, p, track)

    def _on_barcode_seen(self, lane: Lane, event: ev.LaneEvent, p: ev.BarcodeSeen):
        if p.track_id:
            track = self.vision.on_barcode_seen(lane, event, p)
            self.identity.on_barcode_seen(lane, event, p, track)

    def _on_barcode_read(self, lane: Lane, event: ev.LaneEvent, p: ev.BarcodeRead) -> None:
        # A read that names no item (an add-on alone, a rejected label) is no item's scan.
        if p.gtin or p.variable_measure:
            lane.last_read = p
            lane.last_read_ms = event.lane_time_ms
            lane.last_read_holder = self.vision.holder(lane)

    def _on_scale_reading(self, lane: Lane, event: ev.LaneEvent, p: ev.ScaleReading) -> None:
        if p.role is ev.ScaleRole.BAGGING:
            self.bagging.on_reading(lane, event, p)
        elif p.status is ev.ScaleStatus.STABLE:
            lane.produce_weight_mg = p.weight_mg
            lane.produce_weight_ms = event.lane_time_ms
        elif p.status is ev.ScaleStatus.ZERO:
            if lane.produce_weight_mg > 0:
                lane.produce_last_mg = lane.produce_weight_mg
                lane.produce_last_ms = lane.produce_weight_ms
                lane.produce_cleared_ms = event.lane_time_ms
            lane.produce_weight_mg = 0
            lane.produce_weight_ms = event.lane_time_ms

    def _on_peripheral_health(self, lane: Lane, event: ev.LaneEvent, p) -> None:
        if p.kind in (ev.DeviceKind.VISION_LINK, ev.DeviceKind.CAMERA):
            lane.vision_link_up = p.state is ev.PeripheralState.CONNECTED

    # ---- views ----------------------------------------------------------------------

    def expected_bagging_mg(self, lane: Lane) -> int:
        """The bagging weight the scanned items lead fusion to expect."""
        txn = lane.txn
        if txn is None:
            return lane.ledger.baseline_mg or 0
        total = txn.bagging.carry_mg + txn.bagging.own_bag_mg
        for line in txn.order:
            if not line.voided and line.weight_known and not line.skip_bagging:
                total += line.quantity * (line.unit_low_mg + line.unit_high_mg) // 2
        return total
