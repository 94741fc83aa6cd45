"""The dynamic batcher: max batch, max wait, bounded queue with counted drops, off-loop inference."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from lanesight.vision.batcher import BatcherClosed, BatcherOverloaded, DynamicBatcher


class RecordingModel:
    """A predict(batch) stand-in that records batch sizes and threads, and can be slowed down."""

    def __init__(self, seconds_per_batch: float = 0.0, gate: threading.Event | None = None):
        self.batches: list[list[int]] = []
        self.threads: set[int] = set()
        self.seconds_per_batch = seconds_per_batch
        self.gate = gate

    def __call__(self, items: list[int]) -> list[int]:
        self.threads.add(threading.get_ident())
        if self.gate is not None:
            self.gate.wait(5)
        if self.seconds_per_batch:
            time.sleep(self.seconds_per_batch)
        self.batches.append(list(items))
        return [item * 10 for item in items]


async def started(model, **options) -> DynamicBatcher:
    settings = {"max_batch": 8, "max_wait_ms": 20.0, "max_queue": 64, **options}
    batcher = DynamicBatcher(model, **settings)
    await batcher.start()
    return batcher


async def test_concurrent_items_are_batched_up_to_max_batch_with_results_in_order() -> None:
    model = RecordingModel(seconds_per_batch=0.02)
    batcher = await started(model, max_batch=8)
    try:
        results = await asyncio.gather(*(batcher.submit(i) for i in range(40)))
    finally:
        await batcher.stop()
    assert results == [i * 10 for i in range(40)]
    sizes = [len(batch) for batch in model.batches]
    assert sum(sizes) == 40
    assert max(sizes) == 8
    assert len(sizes) == 5
    stats = batcher.stats()
    assert stats.processed == 40 and stats.batches == 5 and stats.mean_batch_size == 8.0
    assert stats.inference_ms_avg >= 15.0
    assert stats.inference_ms_per_item_avg == pytest.approx(stats.inference_ms_avg / 8, rel=0.5)


async def test_a_lone_item_waits_at_most_max_wait() -> None:
    model = RecordingModel()
    batcher = await started(model, max_batch=8, max_wait_ms=60.0)
    try:
        started_s = time.perf_counter()
        assert await batcher.submit(7) == 70
        waited_s = time.perf_counter() - started_s
    finally:
        await batcher.stop()
    assert model.batches == [[7]]
    assert 0.05 <= waited_s < 0.5


async def test_items_arriving_within_max_wait_share_a_batch() -> None:
    model = RecordingModel()
    batcher = await started(model, max_batch=8, max_wait_ms=200.0)
    try:

        async def later(item: int, delay_s: float) -> int:
            await asyncio.sleep(delay_s)
            return await batcher.submit(item)

        await asyncio.gather(later(1, 0.0), later(2, 0.02), later(3, 0.04))
    finally:
        await batcher.stop()
    assert model.batches == [[1, 2, 3]]


async def test_inference_runs_off_the_event_loop_thread() -> None:
    model = RecordingModel()
    batcher = await started(model)
    try:
        await asyncio.gather(*(batcher.submit(i) for i in range(3)))
        loop_thread = threading.get_ident()
        # The loop stays responsive while a batch is stuck in the model.
        gate = threading.Event()
        model.gate = gate
        pending = asyncio.ensure_future(batcher.submit(99))
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1
        assert not pending.done() and ticks == 5
        gate.set()
        assert await pending == 990
    finally:
        await batcher.stop()
    assert loop_thread not in model.threads
    assert len(model.threads) == 1


async def test_overload_drops_and_counts_instead_of_queueing_without_bound() -> None:
    gate = threading.Event()
    model = RecordingModel(gate=gate)
    batcher = await started(model, max_batch=4, max_wait_ms=0.0, max_queue=6)
    try:
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.05)  # the first batch is now stuck in the model
        submitted = []
        for i in range(1, 30):
            submitted.append(asyncio.ensure_future(batcher.submit(i)))
            await asyncio.sleep(0)
            assert batcher.stats().queued <= 6
        await asyncio.sleep(0.01)
        overloaded = [
            f for f in submitted if f.done() and isinstance(f.exception(), BatcherOverloaded)
        ]
        stats = batcher.stats()
        assert stats.queued == 6
        assert len(overloaded) == stats.dropped == 29 - 6
        gate.set()
        survivors = [f for f in submitted if f not in overloaded]
        assert await asyncio.gather(first, *survivors) == [0, *range(10, 70, 10)]
    finally:
        gate.set()
        await batcher.stop()
    assert batcher.stats().processed == 7


async def test_waiting_for_room_applies_backpressure_instead_of_dropping() -> None:
    model = RecordingModel(seconds_per_batch=0.01)
    batcher = await started(model, max_batch=2, max_wait_ms=0.0, max_queue=2)
    try:
        results = await asyncio.gather(*(batcher.submit(i, wait_for_room=True) for i in range(20)))
    finally:
        await batcher.stop()
    assert results == [i * 10 for i in range(20)]
    assert batcher.stats().dropped == 0


async def test_a_failing_batch_fails_its_callers_and_the_batcher_goes_on() -> None:
    calls = []

    def flaky(items):
        calls.append(items)
        if len(calls) == 1:
            raise RuntimeError("model exploded")
        return items

    batcher = await started(flaky, max_wait_ms=0.0)
    try:
        with pytest.raises(RuntimeError, match="exploded"):
            await batcher.submit(1)
        assert await batcher.submit(2) == 2
    finally:
        await batcher.stop()


async def test_stop_fails_what_is_queued_and_is_idempotent() -> None:
    gate = threading.Event()
    batcher = await started(RecordingModel(gate=gate), max_batch=1, max_wait_ms=0.0)
    running = asyncio.ensure_future(batcher.submit(1))
    await asyncio.sleep(0.05)
    queued = asyncio.ensure_future(batcher.submit(2))
    await asyncio.sleep(0.01)
    gate.set()
    await batcher.stop()
    await batcher.stop()
    assert await running == 10
    with pytest.raises(BatcherClosed):
        await queued
    with pytest.raises(BatcherClosed):
        await batcher.submit(3)
