"""Store escalation policy (prompt → attendant → pause), lane rate limits, threshold tuning."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable

from lanesight.fusion.alerts import (
    Alert,
    AlertType,
    CommandKind,
    Disposition,
    Escalation,
    LaneCommand,
    Severity,
)
from lanesight.fusion.config import FeedbackSettings, FusionConfig, RuleSettings
from lanesight.fusion.lane import Lane
from lanesight.fusion.signals import money

_SEVERITY = {"low": Severity.LOW, "medium": Severity.MEDIUM, "high": Severity.HIGH}
_NAMESPACE = uuid.UUID("6f1c7b0e-4a57-4d0e-9a43-1b7e0c2d5f10")


def command_id(alert_id: str, what: str) -> str:
    """A deterministic command id: replaying the same events issues the same commands."""
    return str(uuid.uuid5(_NAMESPACE, f"{alert_id}/{what}"))


class Escalator:
    """Applies a store's escalation policy to alerts and issues the lane commands."""

    def __init__(self, config: FusionConfig) -> None:
        self.config = config

    def _command(
        self, lane: Lane, alert: Alert | None, kind: CommandKind, what: str, **fields
    ) -> LaneCommand:
        alert_id = alert.alert_id if alert else ""
        return LaneCommand(
            command_id=command_id(alert_id or f"{lane.store_id}/{lane.lane_id}", what),
            store_id=lane.store_id,
            lane_id=lane.lane_id,
            alert_id=alert_id,
            issued_at_ms=lane.clock_ms,
            kind=kind,
            **fields,
        )

    def _allow_intervention(self, lane: Lane, limit: int) -> bool:
        """Per-lane rate limit on prompts and pauses, in lane time (a sliding minute)."""
        window = lane.interventions_ms
        while window and window[0] <= lane.clock_ms - 60_000:
            window.popleft()
        if len(window) >= limit:
            return False
        window.append(lane.clock_ms)
        return True

    def on_raised(self, lane: Lane, alert: Alert, self_checkout: bool, open_in_txn: int):
        """Escalate a new alert; returns the commands to issue."""
        policy = self.config.policy_for(lane.store_id)
        commands: list[LaneCommand] = []
        alert.escalation = Escalation.ATTENDANT
        if (
            self_checkout
            and alert.rule in policy.lane_prompt_rules
            and self._allow_intervention(lane, policy.lane_interventions_per_minute)
        ):
            alert.escalation = Escalation.LANE_PROMPT
            commands.append(
                self._command(lane, alert, CommandKind.PROMPT, "prompt", message=alert.reason)
            )
            lane.schedule(lane.clock_ms + policy.prompt_timeout_ms, "prompt", alert)
        alert.escalated_at_ms = lane.clock_ms
        commands.extend(self.maybe_pause(lane, alert, self_checkout, open_in_txn))
        return commands

    def maybe_pause(
        self, lane: Lane, alert: Alert, self_checkout: bool, open_in_txn: int
    ) -> list[LaneCommand]:
        """Pause a self-checkout lane for a serious alert or too many open ones."""
        policy = self.config.policy_for(lane.store_id)
        if lane.paused or not self_checkout or not alert.is_open:
            return []
        serious = (
            alert.severity >= _SEVERITY[policy.pause_min_severity]
            and alert.confidence >= policy.pause_min_confidence
            and alert.escalation is not Escalation.LANE_PROMPT
        )
        crowded = 0 < policy.pause_after_alerts_per_transaction <= open_in_txn
        if not (serious or crowded):
            return []
        if not self._allow_intervention(lane, policy.lane_interventions_per_minute):
            return []
        return [self._pause(lane, alert)]

    def _pause(self, lane: Lane, alert: Alert) -> LaneCommand:
        alert.escalation = Escalation.PAUSE_LANE
        alert.escalated_at_ms = lane.clock_ms
        lane.paused = True
        lane.pausing_alerts.add(alert.alert_id)
        return self._command(lane, alert, CommandKind.PAUSE, "pause", message=alert.reason)

    def on_prompt_timeout(self, lane: Lane, alert: Alert) -> bool:
        """A prompt the shopper did not act on goes to the attendant; True when changed."""
        if alert.is_open and alert.escalation is Escalation.LANE_PROMPT:
            alert.escalation = Escalation.ATTENDANT
            alert.escalated_at_ms = lane.clock_ms
            return True
        return False

    def on_tender_started(
        self, lane: Lane, open_alerts: Iterable[Alert], self_checkout: bool
    ) -> list[LaneCommand]:
        """Pause before payment when attendant-level alerts are still open."""
        policy = self.config.policy_for(lane.store_id)
        if not (policy.pause_at_tender_with_open_alerts and self_checkout) or lane.paused:
            return []
        waiting = [
            a
            for a in open_alerts
            if a.escalation >= Escalation.ATTENDANT and a.severity >= Severity.MEDIUM
        ]
        if not waiting:
            return []
        return [self._pause(lane, max(waiting, key=lambda a: (a.severity, a.confidence)))]

    def on_transaction_ended(self, lane: Lane, open_alerts: list[Alert]) -> list[LaneCommand]:
        """An audit slip for the attendant when a transaction ends with open alerts."""
        policy = self.config.policy_for(lane.store_id)
        if not (policy.audit_slip_at_end and open_alerts):
            return []
        lines = [f"Lane {lane.lane_id} - please review {len(open_alerts)} item(s):"]
        for alert in open_alerts[:10]:
            amount = money(alert.amount_at_risk.amount_minor, alert.amount_at_risk.currency_code)
            lines.append(f"- {alert.reason} ({amount})")
        return [
            self._command(
                lane, open_alerts[0], CommandKind.PRINT_AUDIT_SLIP, "slip", lines=tuple(lines)
            )
        ]

    def on_resolved(self, lane: Lane, alert: Alert, attendant_id: str) -> list[LaneCommand]:
        """Resume a lane once every alert that paused it is resolved."""
        if alert.alert_id not in lane.pausing_alerts:
            return []
        lane.pausing_alerts.discard(alert.alert_id)
        if lane.pausing_alerts or not lane.paused:
            return []
        lane.paused = False
        return [self._command(lane, alert, CommandKind.RESUME, "resume", attendant_id=attendant_id)]


def severity_of(alert_type: AlertType, confidence: float, amount_minor: int, rules: RuleSettings):
    """Severity from the type, the confidence and the amount at risk."""
    if alert_type is AlertType.CAMERA_TAMPER:
        return Severity.HIGH
    if amount_minor >= rules.severity_high_minor:
        return Severity.HIGH
    if amount_minor >= rules.severity_medium_minor or confidence >= 0.85:
        return Severity.MEDIUM
    return Severity.LOW


class ThresholdTuner:
    """Moves a rule's threshold per store toward a target false-alert rate from dispositions.

    Each (store, rule) keeps its last ``window`` dispositions. Once ``min_samples`` are in,
    a false-alert share above the target raises the threshold by ``step`` (up to
    ``max_threshold``); a share below half the target lowers it again, never below the
    configured base.
    """

    def __init__(self, rules: RuleSettings, feedback: FeedbackSettings) -> None:
        self.base = dict(rules.min_confidence)
        self.feedback = feedback
        self.tuned: dict[tuple[str, str], float] = {}
        self.history: dict[tuple[str, str], deque[bool]] = {}
        self.dirty: dict[tuple[str, str], float] = {}

    def threshold(self, store_id: str, rule: str) -> float:
        """The threshold in force for a rule at a store."""
        return self.tuned.get((store_id, rule), self.base.get(rule, 0.5))

    def load(self, tuned: dict[tuple[str, str], float]) -> None:
        """Restore persisted thresholds."""
        self.tuned.update(tuned)

    def record(self, store_id: str, rule: str, disposition: Disposition) -> float | None:
        """Feed one disposition; returns the new threshold when it moved."""
        if not self.feedback.enabled or disposition in (
            Disposition.UNSPECIFIED,
            Disposition.NO_ACTION,
        ):
            return None
        key = (store_id, rule)
        history = self.history.setdefault(key, deque(maxlen=self.feedback.window))
        history.append(disposition is Disposition.FALSE_ALERT)
        if len(history) < self.feedback.min_samples:
            return None
        rate = sum(history) / len(history)
        current = self.threshold(store_id, rule)
        base = self.base.get(rule, 0.5)
        target = self.feedback.target_false_alert_rate
        if rate > target:
            new = min(self.feedback.max_threshold, current + self.feedback.step)
        elif rate < target / 2:
            new = max(base, current - self.feedback.step)
        else:
            return None
        new = round(new, 4)
        if new == current:
            return None
        self.tuned[key] = new
        self.dirty[key] = new
        return new

    def take_dirty(self) -> dict[tuple[str, str], float]:
        """Thresholds changed since the last call, for persisting."""
        dirty, self.dirty = self.dirty, {}
        return dirty
