"""Acknowledged means durable: what fusion acked to a lane reaches reporting, whatever stops."""

from __future__ import annotations

import collections

import pytest

from tests.conftest import assert_eventually

from .lanes import LaneClient, LaneLedger, Stack


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["sigterm", "kill -9"])
async def test_events_acked_while_reporting_is_down_survive_a_fusion_restart(tmp_path, stop):
    stack = Stack.create(tmp_path)
    ledger = LaneLedger("store-1", "lane-01")
    client = LaneClient(stack.address("fusion"), ledger)
    try:
        await stack.start("fusion")  # reporting is down
        client.start()
        ledger.record(300)
        client.wake.set()
        await assert_eventually(lambda: ledger.acked_sequence == 300, timeout_s=30)
        if stop == "sigterm":
            assert await stack.terminate("fusion") == 0
        else:
            await stack.kill("fusion")
        ledger.record(50)  # the lane goes on while fusion is away
        client.wake.set()
        await stack.start("fusion")
        await stack.start("reporting")
        await assert_eventually(lambda: ledger.acked_sequence == 350, timeout_s=30)
        await assert_eventually(lambda: set(stack.stored_event_ids()) >= ledger.acked_ids(), 60)
        counts = collections.Counter(stack.stored_event_ids())
        assert max(counts.values()) == 1 and len(counts) == 350
    finally:
        await client.stop()
        await stack.close()
