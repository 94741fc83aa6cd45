"""Turning signals into alerts: thresholds, merging, lifecycle, shopper corrections."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass

from lanesight.fusion.alerts import (
    Alert,
    AlertState,
    AlertType,
    Disposition,
    ItemRef,
    LaneCommand,
    PosExceptionKind,
    Severity,
)
from lanesight.fusion.config import FusionConfig
from lanesight.fusion.escalation import Escalator, ThresholdTuner, severity_of
from lanesight.fusion.events import Money
from lanesight.fusion.lane import Lane, Line, supports
from lanesight.fusion.signals import PHYSICAL_TYPES, Correction, Signal, clamp, wording

_NAMESPACE = uuid.UUID("0b8f7f5e-1d7a-4c4e-8f8e-6a3f4b1f9c21")
_MAX_SUPPORTING = 48


@dataclass(slots=True)
class AlertUpdate:
    """A new alert or a new revision of one (a snapshot, safe to keep)."""

    alert: Alert
    is_new: bool


def _noisy_or(a: float, b: float) -> float:
    return min(0.99, 1 - (1 - a) * (1 - b))


class AlertBook:
    """Every alert fusion raised, indexed by id and by lane."""

    def __init__(
        self,
        config: FusionConfig,
        tuner: ThresholdTuner,
        escalator: Escalator,
        max_alerts: int = 50_000,
    ):
        self.config = config
        self.max_alerts = max_alerts
        self.tuner = tuner
        self.escalator = escalator
        self.alerts: dict[str, Alert] = {}
        self.open_by_lane: dict[tuple[str, str], list[Alert]] = {}
        self.weak_by_lane: dict[tuple[str, str], list[Signal]] = {}
        self.corrections: dict[str, Correction] = {}
        self.outputs: list[AlertUpdate | LaneCommand] = []
        self.raised = 0
        self.merged = 0
        self.withdrawn = 0

    # ---- raising and merging --------------------------------------------------------

    def _related(self, signal: Signal, keys: set[str], types: list[AlertType], at_ms: int) -> bool:
        if signal.item_keys & keys:
            return True
        window = self.config.rules.merge_window_ms
        return (
            signal.type in PHYSICAL_TYPES
            and any(t in PHYSICAL_TYPES for t in types)
            and abs(signal.at_ms - at_ms) <= window
        )

    def submit(self, lane: Lane, signal: Signal, self_checkout: bool) -> Alert | None:
        """Raise, merge or hold (when below threshold) one signal; returns the alert."""
        txn_id = lane.txn.transaction_id if lane.txn else signal.transaction_id
        for alert in self.open_by_lane.get(lane.key, ()):
            if alert.transaction_id == txn_id and self._related(
                signal, alert.item_keys, alert.merged_types, alert.evidence_ms
            ):
                self._merge(lane, alert, signal, self_checkout)
                return alert
        # Combine with weaker signals about the same item that did not make it alone.
        weak = self.weak_by_lane.setdefault(lane.key, [])
        window = self.config.rules.merge_window_ms
        weak[:] = [w for w in weak if signal.at_ms - w.at_ms <= window]
        partners = [w for w in weak if self._related(signal, w.item_keys, [w.type], w.at_ms)]
        confidence = signal.confidence
        for partner in partners:
            confidence = _noisy_or(confidence, partner.confidence)
        threshold = self.tuner.threshold(lane.store_id, signal.type.rule_name)
        if confidence < threshold:
            weak.append(signal)
            return None
        for partner in partners:
            weak.remove(partner)
        alert = self._create(lane, signal, confidence, txn_id)
        for partner in partners:
            self._absorb(alert, partner)
        open_alerts = self.open_by_lane.setdefault(lane.key, [])
        open_alerts.append(alert)
        if lane.txn is not None:
            lane.txn.alert_ids.append(alert.alert_id)
        open_in_txn = sum(1 for a in open_alerts if a.transaction_id == txn_id)
        commands = self.escalator.on_raised(lane, alert, self_checkout, open_in_txn)
        self.outputs.append(AlertUpdate(_snapshot(alert), True))
        self.outputs.extend(commands)
        self.raised += 1
        return alert

    def _create(self, lane: Lane, signal: Signal, confidence: float, txn_id: str) -> Alert:
        reason, action = wording(signal)
        # Deterministic, so a replay of the same events raises the same alert ids.
        first = signal.event_ids[0] if signal.event_ids else ""
        seed = f"{lane.store_id}/{lane.lane_id}/{first}/{int(signal.type)}/{int(signal.pos_kind)}"
        alert_id = str(uuid.uuid5(_NAMESPACE, seed))
        suffix = 1
        while alert_id in self.alerts:
            suffix += 1
            alert_id = str(uuid.uuid5(_NAMESPACE, f"{seed}/{suffix}"))
        amount = max(signal.amount_minor, 0)
        alert = Alert(
            alert_id=alert_id,
            store_id=lane.store_id,
            lane_id=lane.lane_id,
            transaction_id=txn_id,
            type=signal.type,
            severity=severity_of(signal.type, confidence, amount, self.config.rules),
            confidence=round(clamp(confidence), 4),
            amount_at_risk=Money(amount, signal.currency),
            supporting_event_ids=list(dict.fromkeys(signal.event_ids))[:_MAX_SUPPORTING],
            reason=reason,
            suggested_action=action,
            raised_at_ms=lane.clock_ms,
            rule=signal.type.rule_name,
            vision_available=lane.vision_available,
            item=signal.item or ItemRef(),
            pos_exception_kind=signal.pos_kind,
            merged_types=[signal.type],
            item_keys=set(signal.item_keys),
            evidence_ms=signal.at_ms,
        )
        if signal.pos_kind:
            alert.severity = _pos_severity(signal, amount, self.config.rules.severity_high_minor)
        self.alerts[alert_id] = alert
        if signal.correction is not None:
            self.corrections[alert_id] = signal.correction
        if len(self.alerts) > self.max_alerts:
            self._forget_oldest()
        return alert

    def _forget_oldest(self) -> None:
        """Keep memory bounded: drop the oldest alerts (reporting has every revision),
        resolved ones first."""
        excess = len(self.alerts) - self.max_alerts * 9 // 10
        victims = [a for a in self.alerts.values() if not a.is_open][:excess]
        if len(victims) < excess:
            victims += [a for a in self.alerts.values() if a.is_open][: excess - len(victims)]
        for alert in victims:
            del self.alerts[alert.alert_id]
            self.corrections.pop(alert.alert_id, None)
            open_alerts = self.open_by_lane.get((alert.store_id, alert.lane_id))
            if open_alerts and alert in open_alerts:
                open_alerts.remove(alert)

    def _absorb(self, alert: Alert, signal: Signal) -> None:
        alert.merged_signals += 1
        if signal.type not in alert.merged_types:
            alert.merged_types.append(signal.type)
        alert.item_keys |= signal.item_keys
        ids = alert.supporting_event_ids
        for event_id in signal.event_ids:
            if event_id not in ids and len(ids) < _MAX_SUPPORTING:
                ids.append(event_id)
        if signal.amount_minor > alert.amount_at_risk.amount_minor:
            alert.amount_at_risk = Money(signal.amount_minor, signal.currency)
        if not alert.item.description and signal.item.description:
            alert.item = signal.item
        if alert.alert_id not in self.corrections and signal.correction is not None:
            self.corrections[alert.alert_id] = signal.correction

    def _merge(self, lane: Lane, alert: Alert, signal: Signal, self_checkout: bool) -> None:
        self._absorb(alert, signal)
        alert.confidence = round(_noisy_or(alert.confidence, signal.confidence), 4)
        alert.severity = max(
            alert.severity,
            severity_of(
                alert.type,
                alert.confidence,
                alert.amount_at_risk.amount_minor,
                self.config.rules,
            ),
        )
        self.merged += 1
        open_in_txn = sum(
            1
            for a in self.open_by_lane.get(lane.key, ())
            if a.transaction_id == alert.transaction_id
        )
        commands = self.escalator.maybe_pause(lane, alert, self_checkout, open_in_txn)
        self._revise(alert)
        self.outputs.extend(commands)

    def _revise(self, alert: Alert) -> None:
        alert.revision += 1
        self.outputs.append(AlertUpdate(_snapshot(alert), False))

    # ---- lifecycle ------------------------------------------------------------------

    def open_alerts(self, lane: Lane, transaction_id: str | None = None) -> list[Alert]:
        """Unresolved alerts of a lane, optionally of one transaction."""
        alerts = self.open_by_lane.get(lane.key, [])
        if transaction_id is None:
            return list(alerts)
        return [a for a in alerts if a.transaction_id == transaction_id]

    def escalate_prompt(self, lane: Lane, alert: Alert) -> None:
        """A prompt timed out: hand the alert to the attendant."""
        if self.escalator.on_prompt_timeout(lane, alert):
            self._revise(alert)

    def on_tender_started(self, lane: Lane, self_checkout: bool) -> None:
        """Payment started: pause the lane if attendant-level alerts are still open."""
        txn_id = lane.txn.transaction_id if lane.txn else ""
        commands = self.escalator.on_tender_started(
            lane, self.open_alerts(lane, txn_id), self_checkout
        )
        for command in commands:
            alert = self.alerts.get(command.alert_id)
            if alert is not None:
                self._revise(alert)
        self.outputs.extend(commands)

    def on_transaction_ended(self, lane: Lane, transaction_id: str) -> None:
        """The transaction closed: an audit slip for what is still open."""
        open_alerts = self.open_alerts(lane, transaction_id)
        self.outputs.extend(self.escalator.on_transaction_ended(lane, open_alerts))

    def acknowledge(self, alert_id: str, attendant_id: str, at_ms: int) -> Alert:
        """Record that an attendant saw an alert; raises KeyError for unknown ids."""
        alert = self.alerts[alert_id]
        if alert.state is AlertState.OPEN:
            alert.state = AlertState.ACKNOWLEDGED
            alert.acknowledged_at_ms = at_ms
            alert.acknowledged_by = attendant_id
            self._revise(alert)
        return alert

    def resolve(
        self,
        lane: Lane,
        alert_id: str,
        disposition: Disposition,
        resolved_by: str,
        at_ms: int,
        note: str = "",
        amount_recovered: Money | None = None,
    ) -> Alert:
        """Close an alert with a disposition; raises KeyError / ValueError."""
        if disposition is Disposition.UNSPECIFIED:
            raise ValueError("disposition must not be UNSPECIFIED")
        alert = self.alerts[alert_id]
        first_time = alert.state not in (AlertState.RESOLVED, AlertState.WITHDRAWN)
        alert.state = AlertState.RESOLVED
        alert.disposition = disposition
        alert.resolved_at_ms = at_ms
        alert.resolved_by = resolved_by
        alert.resolution_note = note
        if amount_recovered is not None:
            alert.amount_recovered = amount_recovered
        elif disposition in (Disposition.RECOVERED, Disposition.SHOPPER_CORRECTED):
            alert.amount_recovered = alert.amount_at_risk
        self.corrections.pop(alert_id, None)
        open_alerts = self.open_by_lane.get(lane.key, [])
        if alert in open_alerts:
            open_alerts.remove(alert)
        self._revise(alert)
        if first_time:
            self.tuner.record(alert.store_id, alert.rule, disposition)
            self.outputs.extend(self.escalator.on_resolved(lane, alert, resolved_by))
        return alert

    def withdraw(self, lane: Lane, alert_id: str, reason: str) -> Alert | None:
        """Later evidence contradicts an open alert: withdraw it (state WITHDRAWN), so the
        attendant is told and reporting does not count it; None when it is not open."""
        alert = self.alerts.get(alert_id)
        if alert is None or not alert.is_open:
            return None
        alert.state = AlertState.WITHDRAWN
        alert.withdrawn_reason = reason
        alert.resolved_at_ms = lane.clock_ms
        self.corrections.pop(alert_id, None)
        open_alerts = self.open_by_lane.get(lane.key, [])
        if alert in open_alerts:
            open_alerts.remove(alert)
        self.withdrawn += 1
        self._revise(alert)
        self.outputs.extend(self.escalator.on_resolved(lane, alert, "fusion"))
        return alert

    # ---- shopper corrections --------------------------------------------------------

    def _corrected(self, lane: Lane, alert_ids: list[str], how: str) -> None:
        for alert_id in alert_ids:
            self.resolve(
                lane, alert_id, Disposition.SHOPPER_CORRECTED, "lane", lane.clock_ms, note=how
            )

    def _candidates(self, lane: Lane) -> list[tuple[str, Correction]]:
        txn_id = lane.txn.transaction_id if lane.txn else ""
        return [
            (a.alert_id, self.corrections[a.alert_id])
            for a in self.open_by_lane.get(lane.key, ())
            if a.transaction_id == txn_id and a.alert_id in self.corrections
        ]

    def on_line_added(self, lane: Lane, line: Line, fits) -> None:
        """A new POS line may be the shopper scanning the item an alert was about."""
        for alert_id, corr in self._candidates(lane):
            if corr.kind == "any_scan" or (corr.kind == "scan_item" and _is_item(corr, line, fits)):
                self._corrected(lane, [alert_id], "item scanned after the prompt")
                return

    def on_weight_change(self, lane: Lane, delta_mg: int, fits) -> None:
        """The bagging weight moved back by what an alert was about."""
        for alert_id, corr in self._candidates(lane):
            if corr.kind == "weight_back" and fits(corr.low_mg, corr.high_mg, delta_mg):
                self._corrected(lane, [alert_id], "item returned to the bagging area")
                return
            if (
                corr.kind == "scan_item"
                and corr.high_mg
                and fits(-corr.high_mg, -corr.low_mg, delta_mg)
            ):
                self._corrected(lane, [alert_id], "item taken out of the bagging area")
                return

    def on_quantity(self, lane: Lane, line: Line) -> None:
        """A quantity change may cover the extra units an alert counted."""
        for alert_id, corr in self._candidates(lane):
            if corr.kind == "quantity" and corr.line_id == line.line_id:
                if line.quantity >= corr.units:
                    self._corrected(lane, [alert_id], "quantity changed")
                    return

    def drop_lane_state(self, lane: Lane) -> None:
        """Forget held weak signals at the end of a transaction."""
        self.weak_by_lane.pop(lane.key, None)

    def take_outputs(self) -> list[AlertUpdate | LaneCommand]:
        """The alert revisions and commands produced since the last call."""
        outputs, self.outputs = self.outputs, []
        return outputs


def _is_item(corr: Correction, line: Line, fits) -> bool:
    """True when a new line is the alerted item: by its weight, or by what the camera saw."""
    if corr.high_mg and fits(corr.low_mg, corr.high_mg):
        return True
    item = line.item
    return bool(corr.labels and item is not None and supports(corr.labels, item.vision_labels))


def _pos_severity(signal: Signal, amount_minor: int, high_minor: int) -> Severity:
    if signal.pos_kind is PosExceptionKind.NO_SALE_DRAWER_OPEN:
        return Severity.LOW
    return Severity.HIGH if amount_minor >= high_minor else Severity.MEDIUM


def _snapshot(alert: Alert) -> Alert:
    snap = copy.copy(alert)
    snap.supporting_event_ids = list(alert.supporting_event_ids)
    snap.merged_types = list(alert.merged_types)
    snap.item_keys = set()
    return snap
