"""The projector: derives facts and rollups from stored raw events, behind the ack.

Ingest acknowledges a batch once its raw events are stored. The projector then reads the
stored events after its durable cursor (``projection_cursor``), derives the facts and
rollups of a few thousand at a time, and moves the cursor in the same transaction: a crash
between the ack and the projection loses nothing, the next start resumes at the cursor.

It lets ingest go first (it starts once ingest pauses, or once its oldest pending event
has waited ``projection_max_delay_s``), bounds the lag (ingest waits while
``projection_max_lag_events`` are pending), and a report waits for it to reach everything
acknowledged before the report began (``caught_up``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator

from lanesight.reporting.config import ReportingConfig

log = logging.getLogger(__name__)

# After a failed projection (the database unreachable, say), the wait before trying again.
RETRY_S = 1.0


class Projector:
    """Runs ``project(limit)`` (project up to ``limit`` stored events in one transaction;
    returns how many it projected) whenever acknowledged events wait."""

    def __init__(
        self,
        project: Callable[[int], Awaitable[int]],
        config: ReportingConfig,
        pending: int = 0,
    ) -> None:
        self._project = project
        self._config = config
        # Events stored and not projected yet: the lag.
        self.pending = pending
        # Acks that stored events, counted; and how many of them are fully projected.
        self._acks = 0
        self._projected_acks = 0
        self._oldest_pending = time.monotonic() if pending else None
        self._last_ack = 0.0
        self._ingesting = 0  # ingest calls under way (one may wait for the write lock)
        self._urgent = 0  # reports (or a full lag) waiting
        self._nudge = asyncio.Event()
        self._progress = asyncio.Condition()
        self._task: asyncio.Task | None = None
        self._backpressure_logged = False
        self._failing = False  # the last projection failed (it is retried)
        if pending:
            self._acks = 1  # what the database held at start counts as one ack
            log.info("projector: %d stored events wait for projection (resuming)", pending)

    # --- the store's side ----------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="reporting-projector")
            self._nudge.set()

    async def stop(self, drain: bool = True) -> None:
        """Stop the projector; with ``drain`` after projecting everything acknowledged."""
        if self._task is None:
            return
        if drain:
            # Not while projection fails (the database is gone, say): the next start will.
            await self._wait(self._acks, give_up_on_failure=True)
        task, self._task = self._task, None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        async with self._progress:
            self._progress.notify_all()  # nothing more to wait for

    @contextlib.contextmanager
    def ingesting(self) -> Iterator[None]:
        """Marks an ingest call under way: the projector does not count it as a pause."""
        self._ingesting += 1
        try:
            yield
        finally:
            self._ingesting -= 1

    def acknowledged(self, stored: int) -> None:
        """An ingest batch committed, storing ``stored`` new events."""
        self._last_ack = time.monotonic()
        if stored <= 0:
            return
        if self.pending == 0:
            self._oldest_pending = self._last_ack
        self.pending += stored
        self._acks += 1
        self._nudge.set()

    async def room(self) -> None:
        """Wait while the lag is at its bound (ingest calls this before storing)."""
        limit = self._config.projection_max_lag_events
        if self.pending < limit or self._task is None:
            return
        if not self._backpressure_logged:
            log.warning(
                "projection lag at %d events (the bound): ingest waits for the projector",
                self.pending,
            )
            self._backpressure_logged = True
        self._nudge.set()
        async with self._progress:
            await self._progress.wait_for(lambda: self.pending < limit or self._task is None)

    async def caught_up(self) -> None:
        """Wait until every event acknowledged before this call is projected."""
        await self._wait(self._acks, give_up_on_failure=False)

    async def _wait(self, target: int, give_up_on_failure: bool) -> None:
        def done() -> bool:
            return (
                self._projected_acks >= target
                or self._task is None
                or (give_up_on_failure and self._failing)
            )

        if done():
            return
        self._urgent += 1
        self._nudge.set()
        try:
            async with self._progress:
                await self._progress.wait_for(done)
        finally:
            self._urgent -= 1

    def lag_seconds(self) -> float:
        """How long the oldest event not projected yet has waited; 0 when none."""
        if self._oldest_pending is None:
            return 0.0
        return time.monotonic() - self._oldest_pending

    # --- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        batch = self._config.projection_batch_events
        while True:
            await self._nudge.wait()
            self._nudge.clear()
            while self._projected_acks < self._acks:
                await self._let_ingest_run()
                target = self._acks
                try:
                    projected = await self._project(batch)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("projection failed; retrying in %.0fs", RETRY_S)
                    self._failing = True
                    async with self._progress:
                        self._progress.notify_all()
                    await asyncio.sleep(RETRY_S)
                    continue
                self._failing = False
                self.pending = max(0, self.pending - projected)
                if projected < batch:
                    # Nothing left after this batch: every ack up to target is projected.
                    self._projected_acks = target
                    if target == self._acks:
                        self.pending = 0
                        self._oldest_pending = None
                        self._backpressure_logged = False
                    else:
                        self._oldest_pending = self._last_ack
                async with self._progress:
                    self._progress.notify_all()

    async def _let_ingest_run(self) -> None:
        """Wait while ingest is busy, unless a report waits, the lag is at its bound or the
        oldest pending event has waited the longest delay allowed."""
        idle_s = self._config.projection_idle_s
        max_delay_s = self._config.projection_max_delay_s
        while not self._urgent and self.pending < self._config.projection_max_lag_events:
            now = time.monotonic()
            oldest = self._oldest_pending if self._oldest_pending is not None else now
            paused_since = now if self._ingesting else self._last_ack
            start_at = min(paused_since + idle_s, oldest + max_delay_s)
            if now >= start_at:
                return
            self._nudge.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(start_at - now):
                    await self._nudge.wait()
