"""The demo's script: shoppers from the fusion simulator, laid out in real time per lane.

Each lane gets a run of transactions (honest baskets mixed with loss behaviours) from
``lanesight.simulation.scenarios``. Their physical actions are placed on one timeline per lane
in seconds from the demo's start; camera actions become a camera script that the lane
agent's synthetic camera renders (real grocery photos moving across the lane), every other
action is played live against the device simulators and the POS.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from lanesight.fusion import events as ev
from lanesight.fusion.catalog import DEMO_CATALOG, load_catalog_file
from lanesight.simulation.scenarios import actions as act
from lanesight.simulation.scenarios.scenario import Noise, Scenario, StagedLoss
from lanesight.simulation.scenarios.shoppers import (
    SELF_CHECKOUT_LOSSES,
    STAFFED_LOSSES,
    Catalogue,
    build_transaction,
)

STORE_ID = "demo-store"
# Loss behaviours the demo stages, in turn, per lane kind.
DEMO_SELF_CHECKOUT = SELF_CHECKOUT_LOSSES
DEMO_STAFFED = STAFFED_LOSSES
_MOVE_S = 0.8  # how long an item takes to move from one zone to the next
_MIN_COVER_S = 9.0  # a staged camera cover lasts at least this long (see _place)
# Shoppers in the demo are a little quicker than the simulator's (same order of events).
TIME_SCALE = 0.7
_ZONE_NAMES = {ev.LaneZone.CART: "cart", ev.LaneZone.SCAN: "scan", ev.LaneZone.BAGGING: "bagging"}


@dataclass(frozen=True)
class LiveAction:
    """One action to play at ``at_s`` seconds after the demo starts."""

    at_s: float
    action: act.Action
    scenario: Scenario


@dataclass
class LanePlan:
    """Everything one lane does during the demo."""

    lane_id: str
    self_checkout: bool
    scenarios: list[Scenario] = field(default_factory=list)
    offsets_s: dict[str, float] = field(default_factory=dict)
    live: list[LiveAction] = field(default_factory=list)
    camera_items: list[dict] = field(default_factory=list)
    camera_effects: list[dict] = field(default_factory=list)

    def staged(self) -> list[tuple[Scenario, StagedLoss, float]]:
        """Every staged loss with the demo time it happens at."""
        return [
            (sc, loss, self.offsets_s[sc.scenario_id] + loss.at_ms / 1000 * TIME_SCALE)
            for sc in self.scenarios
            for loss in sc.losses
        ]

    def write_camera_script(self, path: Path, epoch_unix: float | None, grocery_dir: Path) -> None:
        """The synthetic camera's schedule, in seconds after ``epoch_unix``."""
        script = {
            "epoch_unix": epoch_unix,
            "seed": abs(hash(self.lane_id)) % 1000,
            "grocery_dir": str(grocery_dir),
            "items": self.camera_items,
            "effects": self.camera_effects,
        }
        path.write_text(json.dumps(script, indent=1), encoding="utf-8")


def demo_scenarios(
    lane_index: int, seed: int, duration_s: float, catalogue: Catalogue, loss_every: int = 2
) -> tuple[list[Scenario], list[float]]:
    """Transactions for one lane that fit in the run, with their start times (seconds)."""
    rng = random.Random(seed * 1000 + lane_index)
    self_checkout = lane_index % 4 != 3
    behaviours = DEMO_SELF_CHECKOUT if self_checkout else DEMO_STAFFED
    operator = "" if self_checkout else f"op-{lane_index + 1:02d}"
    lane_id = f"lane-{lane_index + 1:02d}"
    noise = Noise(
        scale_jitter_mg=500,
        vision_confusion=0.0,
        vision_dropout=0.0,
        event_jitter_ms=0,
        duplicate_rate=0.0,
    )
    scenarios: list[Scenario] = []
    starts: list[float] = []
    at_s = 2.0 + 1.3 * lane_index
    turn = lane_index + seed
    number = 0
    while True:
        stage = number % loss_every == 0
        behaviour = behaviours[turn % len(behaviours)] if stage else "honest"
        if stage:
            turn += 1
        scenario = Scenario(
            scenario_id=f"{STORE_ID}/{lane_id}/{number}",
            store_id=STORE_ID,
            lane_id=lane_id,
            transaction_id=f"{'NS' if behaviour == 'no_sale' else 'T'}-{lane_id}-{seed}-{number:03d}",
            start_ms=0,
            self_checkout=self_checkout,
            behaviour=behaviour,
        )
        build_transaction(rng, catalogue, noise, scenario, self_checkout, operator, (2, 4))
        _drop_unplayable(scenario)
        length_s = scenario.duration_ms / 1000 * TIME_SCALE
        if at_s + length_s + 4.0 > duration_s:
            if number == 0 and not scenarios:
                # Always play one transaction, even on a very short run.
                scenarios.append(scenario)
                starts.append(at_s)
            break
        scenarios.append(scenario)
        starts.append(at_s)
        at_s += length_s + rng.uniform(2.0, 4.0)
        number += 1
    return scenarios, starts


def _drop_unplayable(scenario: Scenario) -> None:
    """Remove actions no simulated device can perform (a vision link outage is not staged)."""
    scenario.actions = [
        t
        for t in scenario.actions
        if not isinstance(t.action, act.PeripheralHealth | act.PrintReceipt)
    ]
    if "vision_down" in scenario.faults:
        scenario.faults.remove("vision_down")


def build_lane_plans(lanes: int, seed: int, duration_s: float) -> list[LanePlan]:
    """A plan per lane for a run of ``duration_s`` seconds."""
    catalogue = Catalogue.from_items(load_catalog_file(DEMO_CATALOG))
    plans = []
    for index in range(lanes):
        scenarios, starts = demo_scenarios(index, seed, duration_s, catalogue)
        plan = LanePlan(f"lane-{index + 1:02d}", index % 4 != 3)
        for scenario, start_s in zip(scenarios, starts, strict=True):
            plan.scenarios.append(scenario)
            plan.offsets_s[scenario.scenario_id] = start_s
            _place(plan, scenario, start_s)
        plan.live.sort(key=lambda a: a.at_s)
        plans.append(plan)
    return plans


def _place(plan: LanePlan, scenario: Scenario, start_s: float) -> None:
    """Split a scenario into live actions and the camera script."""
    crossings: dict[str, list[tuple[float, act.ItemCrossesZones]]] = {}
    blocked_from: float | None = None
    staged_cover = False
    tender_s = end_s = start_s + scenario.duration_ms / 1000 * TIME_SCALE
    for timed in scenario.actions:
        at_s = start_s + timed.at_ms / 1000 * TIME_SCALE
        action = timed.action
        if isinstance(action, act.ItemCrossesZones):
            crossings.setdefault(action.track_id, []).append((at_s, action))
        elif isinstance(action, act.CameraHealthChange):
            if action.health in (ev.CameraHealth.BLOCKED, ev.CameraHealth.DARK):
                blocked_from = at_s
                # A staged cover (blocked), not a flicker of the lights (dark, < 1 s).
                staged_cover = action.health is ev.CameraHealth.BLOCKED
            elif blocked_from is not None:
                # Long enough to be tamper in real time: vision reports a covered camera
                # only once it has held for a second over frames sent every keyframe
                # interval (2 s) while nothing moves, and fusion wants it reported
                # unhealthy for vision.camera_tamper_min_ms (5 s).
                end = max(at_s, blocked_from + _MIN_COVER_S) if staged_cover else at_s
                plan.camera_effects.append({"kind": "cover", "start_s": blocked_from, "end_s": end})
                blocked_from = None
        elif isinstance(action, act.CartItemCount | act.BarcodeInView):
            continue  # the real vision service counts and decodes what the camera shows
        else:
            if isinstance(action, act.StartTender):
                tender_s = at_s
            if isinstance(action, act.EndTransaction):
                end_s = at_s
            plan.live.append(LiveAction(at_s, action, scenario))
    if blocked_from is not None:
        plan.camera_effects.append({"kind": "cover", "start_s": blocked_from, "end_s": end_s})
    row = 0
    for legs in crossings.values():
        row += 1
        lane_y = 0.25 + 0.5 * ((row * 0.37) % 1.0)
        _camera_legs(plan, legs, lane_y, tender_s, end_s)


def _camera_legs(
    plan: LanePlan,
    legs: list[tuple[float, act.ItemCrossesZones]],
    lane_y: float,
    tender_s: float,
    end_s: float,
) -> None:
    """Turn one track's zone crossings into moving items for the synthetic camera."""
    moves = [
        (at_s, c) for at_s, c in legs if c.from_zone in _ZONE_NAMES and c.to_zone in _ZONE_NAMES
    ]
    label = legs[0][1].label
    if not label:
        return  # an object the model does not know (an own bag): not drawn
    if not moves:
        # Seen only in the cart (an item left behind): there from the shopper's arrival,
        # as the rest of their goods were, until the transaction ends.
        arrived = [at_s for at_s, c in legs if c.to_zone is ev.LaneZone.CART]
        if arrived:
            start = max(min(arrived[0], tender_s - 4.0), 0.0)
            plan.camera_items.append(
                {
                    "label": label,
                    "start_s": start,
                    "from_zone": "cart",
                    "to_zone": "cart",
                    "duration_s": 0.1,
                    "leave_s": max(end_s - start, 1.0),
                    "lane_y": lane_y,
                }
            )
        return
    for index, (at_s, crossing) in enumerate(moves):
        start = max(at_s - _MOVE_S, 0.0)
        if index + 1 < len(moves):
            stay = max(moves[index + 1][0] - _MOVE_S - at_s, 0.05)
        else:
            stay = 1.2  # into a bag, out of view
        plan.camera_items.append(
            {
                "label": crossing.label or label,
                "start_s": start,
                "from_zone": _ZONE_NAMES[crossing.from_zone],
                "to_zone": _ZONE_NAMES[crossing.to_zone],
                "duration_s": _MOVE_S,
                "leave_s": stay,
                "lane_y": lane_y,
            }
        )
