"""One publisher, many stream subscribers: what lane displays watch (commands, suggestions)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

T = TypeVar("T")
_CLOSED = object()


class Broadcast(Generic[T]):
    """Every subscriber gets every item; one that stops reading loses its oldest."""

    def __init__(self, queue_size: int) -> None:
        self._queue_size = queue_size
        self._queues: set[asyncio.Queue] = set()
        self.drops = 0

    def __len__(self) -> int:
        return len(self._queues)

    def publish(self, item: T) -> None:
        for queue in self._queues:
            if queue.full():
                queue.get_nowait()
                self.drops += 1
            queue.put_nowait(item)

    async def subscribe(self, first: T | None = None) -> AsyncIterator[T]:
        """``first`` (if given), then every item published from now on, until close()."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=self._queue_size)
        if first is not None:
            queue.put_nowait(first)
        self._queues.add(queue)
        try:
            while True:
                item = await queue.get()
                if item is _CLOSED:
                    return
                yield item
        finally:
            self._queues.discard(queue)

    def close(self) -> None:
        """End every subscription (shutdown: open streams must not hold the server's drain)."""
        for queue in self._queues:
            while queue.full():
                queue.get_nowait()
            queue.put_nowait(_CLOSED)
