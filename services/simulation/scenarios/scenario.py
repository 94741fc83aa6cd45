"""Scenarios: timed actions of one transaction, their ground truth, and their lane events."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from lanesight.fusion import events as ev
from lanesight.fusion.alerts import AlertType, PosExceptionKind
from lanesight.simulation.scenarios.actions import Action, EndTransaction


@dataclass(frozen=True)
class TimedAction:
    """An action ``at_ms`` after the scenario starts."""

    at_ms: int
    action: Action


@dataclass(frozen=True)
class StagedLoss:
    """Ground truth: a loss behaviour staged in a scenario, and the alert it should raise.

    ``type`` is the exception the behaviour is; ``also`` lists other types that describe
    the same act fairly (an alert of those types is not a false alert). ``at_ms`` is when
    the act happened (offset from the scenario start), for alert latency.
    """

    type: AlertType
    behaviour: str
    at_ms: int
    sku: str = ""
    description: str = ""
    amount_minor: int = 0
    pos_kind: PosExceptionKind = PosExceptionKind.UNSPECIFIED
    also: frozenset[AlertType] = frozenset()

    @property
    def acceptable(self) -> frozenset[AlertType]:
        """Every alert type that counts as describing this loss."""
        return self.also | {self.type}


@dataclass
class Scenario:
    """One transaction at one lane (or one POS act such as a no-sale), with ground truth."""

    scenario_id: str
    store_id: str
    lane_id: str
    transaction_id: str
    start_ms: int
    self_checkout: bool
    behaviour: str
    actions: list[TimedAction] = field(default_factory=list)
    losses: list[StagedLoss] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)

    @property
    def honest(self) -> bool:
        """True when no loss was staged."""
        return not self.losses

    @property
    def duration_ms(self) -> int:
        """The time from the first to the last action."""
        return self.actions[-1].at_ms if self.actions else 0


@dataclass(frozen=True)
class Noise:
    """How imperfect the lane's sources are."""

    # Standard deviation of bagging-scale readings around the true weight.
    scale_jitter_mg: int = 2_000
    # Share of recognitions whose top label is another (often similar) class.
    vision_confusion: float = 0.05
    # Share of vision observations that never arrive.
    vision_dropout: float = 0.02
    # Vision events carry frame times up to this much earlier than their arrival.
    event_jitter_ms: int = 200
    # Share of events the lane agent sends twice (resends after reconnects).
    duplicate_rate: float = 0.01


def lane_events(
    scenarios: list[Scenario],
    run_id: str = "sim",
    noise: Noise | None = None,
    seed: int = 0,
    first_sequence: int = 1,
) -> list[ev.LaneEvent]:
    """One lane's ordered event stream for its scenarios, as its lane agent would send it.

    Events are numbered in arrival order. Vision events carry a frame time slightly
    earlier than their arrival (out of order in time, as in production), and a few
    events are sent twice when ``noise`` says so.
    """
    rng = random.Random(seed)
    staged: list[tuple[int, int, ev.Payload, str, str, str, str]] = []
    order = 0
    for scenario in scenarios:
        txn_id = scenario.transaction_id
        for timed in scenario.actions:
            for offset_ms, payload, device in timed.action.payloads():
                at = scenario.start_ms + timed.at_ms + offset_ms
                staged.append(
                    (at, order, payload, device, txn_id, scenario.store_id, scenario.lane_id)
                )
                order += 1
            if isinstance(timed.action, EndTransaction):
                txn_id = ""
    staged.sort(key=lambda item: (item[0], item[1]))
    events: list[ev.LaneEvent] = []
    sequence = first_sequence
    jitter = noise.event_jitter_ms if noise else 0
    duplicates = noise.duplicate_rate if noise else 0.0
    for at, _, payload, device, txn_id, store_id, lane_id in staged:
        lane_time = at
        if jitter and isinstance(payload, ev.VISION_PAYLOADS):
            lane_time = at - rng.randint(0, jitter)
        event = ev.LaneEvent(
            event_id=f"{run_id}-{store_id}-{lane_id}-{sequence:07d}",
            store_id=store_id,
            lane_id=lane_id,
            sequence=sequence,
            lane_time_ms=lane_time,
            payload=payload,
            transaction_id=txn_id,
            source_device_id=device,
        )
        events.append(event)
        if duplicates and rng.random() < duplicates:
            events.append(event)
        sequence += 1
    return events
