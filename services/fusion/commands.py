"""Lane commands fusion issued and what each lane reported back about them."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from lanesight.fusion.alerts import LaneCommand

log = logging.getLogger(__name__)
LaneKey = tuple[str, str]


@dataclass
class _LaneCommands:
    pending: OrderedDict[str, int] = field(default_factory=OrderedDict)
    failed: int = 0


class CommandLedger:
    """Commands awaiting their lane's acknowledgement, bounded per lane (oldest forgotten)."""

    def __init__(self, max_pending_per_lane: int = 1000) -> None:
        self.max_pending_per_lane = max_pending_per_lane
        self._lanes: dict[LaneKey, _LaneCommands] = {}

    def issued(self, command: LaneCommand) -> None:
        """Record a command sent to a lane."""
        lane = self._lanes.setdefault((command.store_id, command.lane_id), _LaneCommands())
        lane.pending[command.command_id] = command.issued_at_ms
        while len(lane.pending) > self.max_pending_per_lane:
            lane.pending.popitem(last=False)

    def acknowledge(
        self, store_id: str, lane_id: str, command_id: str, done: bool, detail: str
    ) -> bool:
        """Record a lane's report on a command; True when the command was pending."""
        lane = self._lanes.get((store_id, lane_id))
        known = lane is not None and lane.pending.pop(command_id, None) is not None
        if lane is not None and known and not done:
            lane.failed += 1
            log.warning(
                "lane %s/%s could not carry out command %s: %s",
                store_id,
                lane_id,
                command_id,
                detail,
            )
        return known

    def pending(self, store_id: str, lane_id: str) -> int:
        """Commands issued to the lane and not yet acknowledged."""
        lane = self._lanes.get((store_id, lane_id))
        return len(lane.pending) if lane else 0

    def failed(self, store_id: str, lane_id: str) -> int:
        """Commands the lane reported it could not carry out."""
        lane = self._lanes.get((store_id, lane_id))
        return lane.failed if lane else 0
