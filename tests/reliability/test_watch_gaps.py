"""Watchers: a frozen watcher and every watcher at shutdown end with a WatchGap."""

from __future__ import annotations

from lanesight.fusion.watch import FROZEN_AFTER_BUFFERS, Gap, WatchFilter, WatchHub


async def _drain(watcher) -> list:
    out = []
    while (message := await watcher.next()) is not None:
        out.append(message)
    return out


async def test_a_frozen_watcher_is_closed_with_one_gap_for_everything_it_missed():
    hub = WatchHub(capacity=4)
    frozen = hub.subscribe(WatchFilter())
    total = FROZEN_AFTER_BUFFERS * 4 + 4 + 7
    for number in range(total):
        frozen.offer(f"alert-{number}")
    assert frozen.closed and frozen.frozen
    assert await _drain(frozen) == [Gap(total)]


async def test_shutdown_folds_a_backlog_into_a_gap_but_delivers_a_healthy_queue():
    hub = WatchHub(capacity=4)
    behind, healthy = hub.subscribe(WatchFilter()), hub.subscribe(WatchFilter())
    for number in range(6):
        behind.offer(number)
    healthy.offer("a")
    healthy.offer("b")
    hub.close()
    assert await _drain(behind) == [Gap(6)]
    assert await _drain(healthy) == ["a", "b"]
