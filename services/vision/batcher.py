"""A dynamic batcher shared by all lane streams: max batch, max wait, bounded queue, one inference thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

In = TypeVar("In")
Out = TypeVar("Out")
R = TypeVar("R")


class BatcherOverloaded(Exception):
    """The queue is full: the item was dropped and counted."""


class BatcherClosed(Exception):
    """The batcher is stopped or not started."""


class MovingAverage:
    """An exponential moving average, as Frigate reports inference time."""

    def __init__(self, alpha: float = 0.1) -> None:
        self.alpha = alpha
        self.value: float | None = None

    def add(self, sample: float) -> None:
        self.value = (
            sample if self.value is None else self.value + self.alpha * (sample - self.value)
        )


@dataclass(frozen=True)
class BatcherStats:
    """Counters of a batcher since start."""

    submitted: int
    dropped: int
    processed: int
    batches: int
    queued: int
    mean_batch_size: float
    inference_ms_avg: float
    inference_ms_per_item_avg: float


@dataclass
class _Pending(Generic[In, Out]):
    item: In
    future: asyncio.Future


class DynamicBatcher(Generic[In, Out]):
    """Collects items from many callers into batches for ``run_batch`` in a worker thread.

    A batch closes when it holds ``max_batch`` items or ``max_wait_ms`` after its first item
    arrived. ``run_batch`` gets a list of items and returns one result per item, in order;
    it runs in a single thread (never on the event loop), so the model is never called
    concurrently unless ``workers`` > 1.
    """

    def __init__(
        self,
        run_batch: Callable[[list[In]], Sequence[Out]],
        *,
        max_batch: int,
        max_wait_ms: float,
        max_queue: int,
        workers: int = 1,
        name: str = "batcher",
    ) -> None:
        if max_batch < 1 or max_queue < 1 or workers < 1:
            raise ValueError("max_batch, max_queue and workers must be at least 1")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue = max_queue
        self.name = name
        self._workers = workers
        self._queue: asyncio.Queue[_Pending[In, Out]] | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._collector: asyncio.Task | None = None
        self._inflight: set[asyncio.Task] = set()
        self._slots: asyncio.Semaphore | None = None
        self._submitted = self._dropped = self._processed = self._batches = 0
        self._inference_ms = MovingAverage()
        self._per_item_ms = MovingAverage()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start collecting; idempotent."""
        if self._collector is not None:
            return
        self._queue = asyncio.Queue(maxsize=self.max_queue)
        self._slots = asyncio.Semaphore(self._workers)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix=self.name
        )
        self._collector = asyncio.create_task(self._collect(), name=f"{self.name}-collect")

    async def stop(self) -> None:
        """Stop collecting, fail what is still queued, wait for running batches; idempotent."""
        collector, self._collector = self._collector, None
        if collector is None:
            return
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        if self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)
        queue = self._queue
        while queue is not None and not queue.empty():
            pending = queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(BatcherClosed(f"{self.name} stopped"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def run_in_worker(self, fn: Callable[..., R], *args: object) -> R:
        """Run ``fn(*args)`` in the inference thread, outside the queue (warm-up, benchmarks)."""
        if self._executor is None:
            raise BatcherClosed(f"{self.name} is not running")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    # -- submitting -----------------------------------------------------------------------

    async def submit(self, item: In, *, wait_for_room: bool = False) -> Out:
        """Queue one item and wait for its result.

        When the queue is full the item is dropped and counted, and BatcherOverloaded is
        raised; with ``wait_for_room`` (unary RPCs) the caller waits for room instead.
        """
        if self._collector is None or self._queue is None:
            raise BatcherClosed(f"{self.name} is not running")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        pending: _Pending[In, Out] = _Pending(item, future)
        if wait_for_room:
            await self._queue.put(pending)
        else:
            try:
                self._queue.put_nowait(pending)
            except asyncio.QueueFull:
                self._dropped += 1
                raise BatcherOverloaded(
                    f"{self.name}: {self.max_queue} items already queued"
                ) from None
        self._submitted += 1
        return await future

    # -- the collector --------------------------------------------------------------------

    async def _collect(self) -> None:
        assert self._queue is not None and self._slots is not None
        loop = asyncio.get_running_loop()
        while True:
            # Wait for a free worker first, so items keep queueing (and batching) meanwhile.
            await self._slots.acquire()
            batch: list[_Pending[In, Out]] = []
            try:
                batch.append(await self._queue.get())
                deadline = loop.time() + self.max_wait_s
                while len(batch) < self.max_batch:
                    try:
                        batch.append(self._queue.get_nowait())
                        continue
                    except asyncio.QueueEmpty:
                        pass
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                    except TimeoutError:
                        break
            except BaseException:
                self._slots.release()
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(BatcherClosed(f"{self.name} stopped"))
                raise
            batch = [pending for pending in batch if not pending.future.cancelled()]
            if not batch:
                self._slots.release()
                continue
            task = asyncio.create_task(self._run(batch))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _run(self, batch: list[_Pending[In, Out]]) -> None:
        assert self._executor is not None and self._slots is not None
        loop = asyncio.get_running_loop()
        items = [pending.item for pending in batch]
        started = time.perf_counter()
        try:
            results = await loop.run_in_executor(self._executor, self.run_batch, items)
            if len(results) != len(items):
                raise RuntimeError(f"run_batch returned {len(results)} results for {len(items)}")
        except Exception as exc:
            log.exception("%s: a batch of %d failed", self.name, len(items))
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        finally:
            self._slots.release()
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        self._inference_ms.add(elapsed_ms)
        self._per_item_ms.add(elapsed_ms / len(items))
        self._batches += 1
        self._processed += len(items)
        for pending, result in zip(batch, results, strict=True):
            if not pending.future.done():
                pending.future.set_result(result)

    # -- statistics -----------------------------------------------------------------------

    def stats(self) -> BatcherStats:
        """Counters since start; averages are 0 before the first batch."""
        return BatcherStats(
            submitted=self._submitted,
            dropped=self._dropped,
            processed=self._processed,
            batches=self._batches,
            queued=self._queue.qsize() if self._queue is not None else 0,
            mean_batch_size=self._processed / self._batches if self._batches else 0.0,
            inference_ms_avg=self._inference_ms.value or 0.0,
            inference_ms_per_item_avg=self._per_item_ms.value or 0.0,
        )
