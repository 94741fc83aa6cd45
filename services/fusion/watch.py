"""Fan-out of alerts and lane commands to watchers, each with its own bounded buffer."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from lanesight.fusion.alerts import Alert, LaneCommand

log = logging.getLogger(__name__)

#: A watcher that has missed this many times its buffer without reading is frozen: it is
#: torn down (after one last WatchGap) instead of being offered messages forever.
FROZEN_AFTER_BUFFERS = 10


@dataclass(frozen=True, slots=True)
class WatchFilter:
    """What a watcher wants; empty sets match everything."""

    store_ids: frozenset[str] = frozenset()
    lane_ids: frozenset[str] = frozenset()
    types: frozenset[int] = frozenset()
    min_severity: int = 0
    include_commands: bool = False
    include_updates: bool = False

    def wants_alert(self, alert: Alert, is_new: bool) -> bool:
        """True when the alert (or this revision of it) passes the filter."""
        if not is_new and not self.include_updates:
            return False
        if self.store_ids and alert.store_id not in self.store_ids:
            return False
        if self.lane_ids and alert.lane_id not in self.lane_ids:
            return False
        if self.types and int(alert.type) not in self.types:
            return False
        return int(alert.severity) >= self.min_severity

    def wants_command(self, command: LaneCommand) -> bool:
        """True when the watcher asked for commands of this store and lane."""
        if not self.include_commands:
            return False
        if self.store_ids and command.store_id not in self.store_ids:
            return False
        return not self.lane_ids or command.lane_id in self.lane_ids


@dataclass(frozen=True, slots=True)
class Gap:
    """Messages dropped for a watcher that fell behind."""

    missed: int


class Watcher:
    """One watch stream's buffer: it never blocks the publisher; overflow becomes a Gap.

    A watcher that falls far behind (frozen) and every watcher at shutdown is closed with
    its backlog folded into one final Gap, so the last thing its stream carries before it
    ends says how much was missed, and only one message has to get through.
    """

    def __init__(self, watch_filter: WatchFilter, capacity: int) -> None:
        self.filter = watch_filter
        self.capacity = capacity
        self.queue: deque[object] = deque()
        self.missed = 0
        self.missed_total = 0
        self.closed = False
        self.frozen = False
        self._ready = asyncio.Event()

    def offer(self, message: object) -> None:
        """Queue a message, or count it as missed when the buffer is full (or closed)."""
        if self.closed or len(self.queue) >= self.capacity:
            self.missed += 1
            self.missed_total += 1
            if self.missed >= FROZEN_AFTER_BUFFERS * self.capacity and not self.closed:
                self.frozen = True
                log.warning(
                    "a watcher read nothing while %d messages were published: closing its"
                    " stream with a final WatchGap",
                    self.missed + len(self.queue),
                )
                self.close()
        else:
            if self.missed:
                self.queue.append(Gap(self.missed))
                self.missed = 0
            self.queue.append(message)
        self._ready.set()

    def close(self) -> None:
        """End the stream: what is still queued is delivered, unless the watcher is behind
        (it has missed messages or its buffer is full): then the backlog becomes one Gap."""
        if self.missed or len(self.queue) >= self.capacity:
            backlog = sum(m.missed if isinstance(m, Gap) else 1 for m in self.queue)
            self.queue.clear()
            self.missed += backlog
            self.missed_total += backlog
        self.closed = True
        self._ready.set()

    async def next(self) -> object | None:
        """The next message or Gap; None once closed and drained."""
        while True:
            if self.queue:
                return self.queue.popleft()
            if self.missed:
                gap, self.missed = Gap(self.missed), 0
                return gap
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()


class WatchHub:
    """Every open watch stream; publishing is O(watchers) and never awaits."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.watchers: set[Watcher] = set()
        self.closed = False

    def subscribe(self, watch_filter: WatchFilter) -> Watcher:
        """Open a watcher; it is closed at once if the hub is shutting down."""
        watcher = Watcher(watch_filter, self.capacity)
        if self.closed:
            watcher.close()
        else:
            self.watchers.add(watcher)
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        """Forget a watcher (its stream ended)."""
        self.watchers.discard(watcher)
        if watcher.missed_total:
            log.info("watcher ended having missed %d messages", watcher.missed_total)

    def publish_alert(self, alert: Alert, is_new: bool, message: object) -> None:
        """Offer an alert revision to every watcher that wants it."""
        for watcher in self.watchers:
            if watcher.filter.wants_alert(alert, is_new):
                watcher.offer(message)

    def publish_command(self, command: LaneCommand, message: object) -> None:
        """Offer a lane command to every watcher that asked for commands of its lane."""
        for watcher in self.watchers:
            if watcher.filter.wants_command(command):
                watcher.offer(message)

    def close(self) -> None:
        """End every watch stream (service shutdown)."""
        self.closed = True
        for watcher in self.watchers:
            watcher.close()
