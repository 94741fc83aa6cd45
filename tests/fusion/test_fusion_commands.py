"""The ledger of lane commands awaiting their lane's acknowledgement."""

from __future__ import annotations

from lanesight.fusion.alerts import CommandKind, LaneCommand
from lanesight.fusion.commands import CommandLedger


def _command(command_id: str, lane_id: str = "lane-1") -> LaneCommand:
    return LaneCommand(command_id, "store-1", lane_id, "alert-1", 0, CommandKind.PROMPT)


def test_pending_until_acknowledged_and_failures_counted():
    ledger = CommandLedger()
    ledger.issued(_command("c-1"))
    ledger.issued(_command("c-2"))
    ledger.issued(_command("c-3", lane_id="lane-2"))
    assert ledger.pending("store-1", "lane-1") == 2
    assert ledger.acknowledge("store-1", "lane-1", "c-1", True, "")
    assert not ledger.acknowledge("store-1", "lane-1", "c-1", True, "")
    assert not ledger.acknowledge("store-1", "lane-2", "c-2", True, "")  # another lane's
    assert ledger.acknowledge("store-1", "lane-1", "c-2", False, "no printer")
    assert (ledger.pending("store-1", "lane-1"), ledger.failed("store-1", "lane-1")) == (0, 1)
    assert ledger.pending("store-1", "lane-2") == 1
    assert ledger.pending("store-9", "lane-9") == 0


def test_bounded_per_lane():
    ledger = CommandLedger(max_pending_per_lane=3)
    for n in range(10):
        ledger.issued(_command(f"c-{n}"))
    assert ledger.pending("store-1", "lane-1") == 3
    assert not ledger.acknowledge("store-1", "lane-1", "c-0", True, "")  # forgotten
    assert ledger.acknowledge("store-1", "lane-1", "c-9", True, "")
