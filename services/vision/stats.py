"""Per-lane frame rates in the style of Frigate: camera fps, processed fps, skipped fps."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class RateMeter:
    """Events per second over a sliding window."""

    def __init__(self, window_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._times: deque[float] = deque()
        self._started = clock()
        self.total = 0

    def mark(self, count: int = 1) -> None:
        now = self._clock()
        self.total += count
        for _ in range(count):
            self._times.append(now)
        self._trim(now)

    def rate(self) -> float:
        """Events per second over the window (or since start, when younger than the window)."""
        now = self._clock()
        self._trim(now)
        span = min(self.window_s, max(now - self._started, 1e-3))
        return len(self._times) / span

    def _trim(self, now: float) -> None:
        cutoff = now - self.window_s
        while self._times and self._times[0] < cutoff:
            self._times.popleft()


@dataclass(frozen=True)
class StreamSnapshot:
    """One open lane stream's counters and rates."""

    store_id: str
    lane_id: str
    camera_id: str
    camera_fps: float
    processed_fps: float
    skipped_fps: float
    frames_received: int
    frames_dropped: int
    crops_dropped: int
    tracks: int
    health: str
