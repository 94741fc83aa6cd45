"""One camera's capture loop: read, gate by motion, encode JPEG, hand frames to the vision link.

Reading, motion gating and encoding run in worker threads, never on the event loop.
Frames wait in a small bounded queue for the vision stream; when vision is away or
slow, frames are dropped and counted, never queued without bound.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from lanesight.common.channels import Backoff
from lanesight.device.camera.motion import MotionGate, encode_jpeg
from lanesight.device.camera.sources import (
    FrameSource,
    SourceUnavailable,
    open_frame_source,
    release_source,
)
from lanesight.device.config import CameraConfig
from lanesight.device.drivers.base import HealthTracker
from lanesight.device.evidence import FrameRingBuffer
from lanesight.device.readings import DeviceKindName, HealthState, ReadingSink

log = logging.getLogger(__name__)


@dataclass
class FrameCounters:
    """Frames of one camera since the agent started."""

    captured: int = 0
    sent: int = 0
    skipped_no_motion: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """A frame ready for vision."""

    frame_id: int
    captured_ns: int
    jpeg: bytes
    keyframe: bool


class CameraPipeline:
    """Captures one camera and queues motion (and keyframe) frames for vision."""

    def __init__(
        self,
        config: CameraConfig,
        sink: ReadingSink,
        executor: Executor | None = None,
        source_factory: Callable[[], FrameSource] | None = None,
        backoff: Backoff | None = None,
        release_source: bool = True,
    ) -> None:
        self.config = config
        self.camera_id = config.id
        self.counters = FrameCounters()
        self.queue: asyncio.Queue[EncodedFrame] = asyncio.Queue(maxsize=config.send_queue_frames)
        self.health = HealthTracker(config.id, DeviceKindName.CAMERA, _describe(config), sink)
        self._executor = executor
        # Reads block for up to a frame period: each camera reads in its own thread, so
        # one slow camera never holds up another camera's gating and encoding.
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"cam-{config.id}")
        self._release_source = release_source
        self._source_factory = source_factory or (
            lambda: open_frame_source(config.source, config.loop)
        )
        self._backoff = backoff or Backoff()
        self._frame_id = 0
        self._last_queued = -1e9
        #: True while the vision stream takes frames; set by the vision link.
        self.link_ready: Callable[[], bool] = lambda: False
        #: Recent frames kept for alert evidence; set by the agent when evidence is on.
        self.evidence: FrameRingBuffer | None = None
        #: The last frame read and its capture time (ns), for produce suggestions.
        self.latest: tuple[int, np.ndarray] | None = None

    async def _in_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _read(self, source: FrameSource):
        return await asyncio.get_running_loop().run_in_executor(self._reader, source.read)

    def close(self) -> None:
        """Let go of the reader thread (a read in progress finishes on its own)."""
        self._reader.shutdown(wait=False, cancel_futures=True)

    async def run(self) -> None:
        """Capture until cancelled, reopening the source with backoff when it fails."""
        while True:
            source: FrameSource | None = None
            try:
                source = await asyncio.get_running_loop().run_in_executor(
                    self._reader, self._source_factory
                )
                await self._capture(source)
            except Exception as exc:  # a source is third-party code; keep the camera loop alive
                await self._failed(exc)
            finally:
                if source is not None and self._release_source:
                    await asyncio.get_running_loop().run_in_executor(
                        self._reader, release_source, source
                    )

    async def _failed(self, exc: BaseException) -> None:
        delay = self._backoff.next_delay()
        if self._backoff.first_failure:
            log.warning("camera %s: %s; retrying with backoff", self.camera_id, exc)
        await self.health.set(HealthState.DISCONNECTED, str(exc))
        await asyncio.sleep(delay)

    async def _capture(self, source: FrameSource) -> None:
        config = self.config
        gate = MotionGate(
            [zone.points for zone in config.zones],
            config.analysis_width,
            config.pixel_threshold,
            config.motion_threshold,
        )
        period = 1.0 / config.max_fps
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            ok, frame = await self._read(source)
            if not ok or frame is None:
                raise SourceUnavailable("the source delivered no frame")
            captured_ns = time.time_ns()
            self.latest = (captured_ns, frame)
            if self.health.state is not HealthState.CONNECTED:
                self._backoff.reset()
                await self.health.set(HealthState.CONNECTED)
            await self.process(gate, frame, captured_ns)
            next_at = max(next_at + period, loop.time())
            await asyncio.sleep(max(0.0, next_at - loop.time()))

    async def process(self, gate: MotionGate, frame, captured_ns: int) -> str:
        """Gate one frame and queue it if it should go to vision; returns what happened."""
        outcome, jpeg = await self._route(gate, frame, captured_ns)
        if self.evidence is not None and self.evidence.wants(captured_ns):
            await self._keep_as_evidence(self.evidence, frame, captured_ns, jpeg)
        return outcome

    async def _keep_as_evidence(
        self, buffer: FrameRingBuffer, frame, captured_ns: int, jpeg: bytes | None
    ) -> None:
        try:
            if jpeg is None:  # reuse the JPEG made for vision when there is one
                jpeg = await self._in_thread(encode_jpeg, frame, self.config.jpeg_quality)
            buffer.add(captured_ns, jpeg)
        except Exception as exc:  # evidence must never stop the camera
            buffer.errors += 1
            if buffer.errors == 1:
                log.warning("camera %s: keeping evidence frames failed: %r", self.camera_id, exc)

    async def _route(self, gate: MotionGate, frame, captured_ns: int) -> tuple[str, bytes | None]:
        counters = self.counters
        counters.captured += 1
        result = await self._in_thread(gate.update, frame)
        now = time.monotonic()
        keyframe = now - self._last_queued >= self.config.keyframe_interval_s
        if not result.motion and not keyframe:
            counters.skipped_no_motion += 1
            return "skipped", None
        if not self.link_ready():
            counters.dropped += 1
            return "dropped", None
        jpeg = await self._in_thread(encode_jpeg, frame, self.config.jpeg_quality)
        if self.queue.full():
            self.queue.get_nowait()  # the oldest frame is the least useful
            counters.dropped += 1
        self._frame_id += 1
        self._last_queued = now
        self.queue.put_nowait(EncodedFrame(self._frame_id, captured_ns, jpeg, not result.motion))
        return "queued", jpeg

    def drop_queued(self) -> int:
        """Drop frames waiting for a stream that went away; returns how many."""
        dropped = 0
        while not self.queue.empty():
            self.queue.get_nowait()
            dropped += 1
        self.counters.dropped += dropped
        return dropped


def _describe(config: CameraConfig) -> str:
    source = config.source
    if "@" in source and "://" in source:  # rtsp://user:password@host/...
        scheme, rest = source.split("://", 1)
        source = f"{scheme}://{rest.split('@', 1)[1]}"
    return source
