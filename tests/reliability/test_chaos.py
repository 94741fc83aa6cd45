"""The chaos harness, short form: 4 lanes for a minute while fusion and reporting are
killed, stopped and restarted; nothing acknowledged is lost or duplicated."""

from __future__ import annotations

import pytest

from benchmarks.chaos import ACTIONS, run_chaos


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_chaos_short_form_keeps_every_invariant(tmp_path):
    result = await run_chaos(lanes=4, seconds=60, rate=20, work_dir=tmp_path, interval_s=4.5)
    print(result.table())
    assert set(result.actions) == {f"{action} {service}" for action, service in ACTIONS}
    assert result.sent > 4 * 60 * 20 * 0.8
    assert result.acked == result.sent
    assert result.lost == 0 and result.duplicated == 0
    assert result.alerts_expected > 0
    assert result.alerts_missing == 0 and result.alerts_duplicated == 0
    assert result.alerts_resolved_at_end == result.alerts_open_at_end > 0
