"""One lane camera's long-lived stream: bounded frame queue, analysis off the loop, recognitions."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lanesight.vision import metrics
from lanesight.vision.analyzer import CropRequest, FrameDecodeError, LaneAnalyzer
from lanesight.vision.batcher import BatcherClosed, BatcherOverloaded
from lanesight.vision.observations import Health, ItemSeen, Observation
from lanesight.vision.recognition import TrackRecognitions
from lanesight.vision.stats import RateMeter, StreamSnapshot
from lanesight.vision.zones import ZoneMap

if TYPE_CHECKING:
    from lanesight.vision.engine import VisionEngine

log = logging.getLogger(__name__)

_INPUT_END = object()
_OUTPUT_END = object()


class InvalidRequest(ValueError):
    """The client sent something invalid; ``field`` names it (e.g. ``frame.jpeg``, ``images[2]``)."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class FrameIn:
    """A frame as received: ``captured_s`` is the lane clock in seconds (None if unset)."""

    frame_id: int
    jpeg: bytes
    captured_s: float | None = None
    # Echoed back untouched (the servicer passes the protobuf Timestamp).
    captured_at: Any = None
    received_s: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class StreamOutput:
    """Results that belong to one frame (tracking, or a later recognition of its crop)."""

    frame_id: int
    captured_at: Any
    observations: list[Observation]
    dropped_frames: int
    latency_ms: float


@dataclass(frozen=True)
class StreamIdentity:
    """Which lane camera a stream is."""

    store_id: str
    lane_id: str
    camera_id: str


class LaneStream:
    """Per-lane state and the tasks that analyse its frames; outputs come from ``run``."""

    def __init__(
        self, engine: VisionEngine, identity: StreamIdentity, zones: ZoneMap, top_k: int
    ) -> None:
        config = engine.config
        self.engine = engine
        self.identity = identity
        self.top_k = top_k
        self.analyzer = LaneAnalyzer(zones, config)
        self._frames: asyncio.Queue = asyncio.Queue(maxsize=config.stream_frame_queue_max)
        self._out: asyncio.Queue = asyncio.Queue(maxsize=max(16, 4 * config.stream_frame_queue_max))
        self._recognitions: set[asyncio.Task] = set()
        self._recognise_again: set[str] = set()
        self.track_labels = TrackRecognitions(
            config.recognition_update_min_gain, config.recognition_updates_max
        )
        self._tasks: list[asyncio.Task] = []
        self.received = RateMeter()
        self.processed = RateMeter()
        self.skipped = RateMeter()
        self.frames_dropped = 0
        self.crops_dropped = 0
        self.health: Health | None = None

    # -- input ------------------------------------------------------------------------

    def offer(self, frame: FrameIn) -> bool:
        """Queue a frame for analysis; when the queue is full the frame is dropped and counted."""
        self.received.mark()
        self.engine.frames_received += 1
        try:
            self._frames.put_nowait(frame)
        except asyncio.QueueFull:
            self.frames_dropped += 1
            self.engine.frames_dropped += 1
            self.skipped.mark()
            return False
        return True

    async def _read(self, frames: AsyncIterator[FrameIn]) -> None:
        try:
            async for frame in frames:
                self.offer(frame)
        except InvalidRequest as exc:
            await self._out.put(exc)
            return
        except Exception as exc:  # the transport failed; the RPC is ending anyway
            log.debug("reading %s ended: %r", self.identity.camera_id, exc)
            await self._out.put(_OUTPUT_END)
            return
        # The client half-closed: finish what is queued, then end the stream.
        await self._frames.put(_INPUT_END)

    # -- processing -------------------------------------------------------------------

    async def _process(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            frame = await self._frames.get()
            if frame is _INPUT_END:
                if self._recognitions:
                    await asyncio.gather(*self._recognitions, return_exceptions=True)
                await self._out.put(_OUTPUT_END)
                return
            retry, self._recognise_again = self._recognise_again, set()
            now_s = frame.captured_s if frame.captured_s is not None else frame.received_s
            try:
                analysis = await loop.run_in_executor(
                    self.engine.frame_pool, self.analyzer.analyze_jpeg, frame.jpeg, now_s, retry
                )
            except FrameDecodeError as exc:
                await self._out.put(
                    InvalidRequest("frame.jpeg", f"frame_id {frame.frame_id}: {exc}")
                )
                return
            except Exception:
                # A bug on one frame must not end the lane's stream.
                log.exception("analysing frame %d of %s failed", frame.frame_id, self.identity)
                continue
            self.processed.mark()
            self.engine.frames_processed += 1
            metrics.camera_condition(analysis.health)
            self.health = analysis.health or self.health
            self.track_labels.retain(t.track_id for t in self.analyzer.tracker.tracks)
            for crop in analysis.crops:
                self._recognise(frame, crop)
            await self._out.put(self._output(frame, analysis.observations))

    def _recognise(self, frame: FrameIn, crop: CropRequest) -> None:
        if len(self._recognitions) >= self.engine.config.stream_inflight_crops_max:
            self._drop_crop(crop.track_id)
            return
        self.track_labels.expect(crop.track_id)
        task = asyncio.create_task(self._classify(frame, crop))
        self._recognitions.add(task)
        task.add_done_callback(self._recognitions.discard)

    async def _classify(self, frame: FrameIn, crop: CropRequest) -> None:
        try:
            scores = await self.engine.batcher.submit(crop.crop_bgr)
        except BatcherOverloaded:
            self.track_labels.abandon(crop.track_id)
            self._drop_crop(crop.track_id)
            return
        except BatcherClosed:
            self.track_labels.abandon(crop.track_id)
            return
        except Exception:
            self.track_labels.abandon(crop.track_id)
            log.exception("classifying a crop of %s failed", self.identity.camera_id)
            return
        # The track's labels over all its crops so far, reported when they say something new.
        folded = self.track_labels.fold(crop.track_id, scores, crop.settled)
        labels = self.engine.recognizer.stream_labels(folded, self.top_k)
        if not self.track_labels.should_report(crop.track_id, crop.zone, labels):
            return
        await self._out.put(self._output(frame, [ItemSeen(crop.track_id, crop.zone, labels)]))

    def _drop_crop(self, track_id: str) -> None:
        # The track is still in view: take a fresh crop from a later frame.
        self.crops_dropped += 1
        self.engine.crops_dropped += 1
        self._recognise_again.add(track_id)

    def _output(self, frame: FrameIn, observations: list[Observation]) -> StreamOutput:
        return StreamOutput(
            frame.frame_id,
            frame.captured_at,
            observations,
            self.frames_dropped,
            (time.monotonic() - frame.received_s) * 1000.0,
        )

    # -- the stream -------------------------------------------------------------------

    async def run(self, frames: AsyncIterator[FrameIn]) -> AsyncIterator[StreamOutput]:
        """Consume frames, yield outputs until the client half-closes; raises InvalidRequest."""
        self._tasks = [
            asyncio.create_task(self._read(frames), name=f"read-{self.identity.camera_id}"),
            asyncio.create_task(self._process(), name=f"analyse-{self.identity.camera_id}"),
        ]
        try:
            while True:
                item = await self._out.get()
                if item is _OUTPUT_END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            await self.close()

    def end(self) -> None:
        """Ask ``run`` to finish now (server shutdown); undelivered results are discarded."""
        for task in [*self._tasks, *self._recognitions]:
            task.cancel()
        while not self._out.empty():
            self._out.get_nowait()
        self._out.put_nowait(_OUTPUT_END)

    async def close(self) -> None:
        """Cancel this stream's tasks and wait for them; idempotent."""
        tasks = [*self._tasks, *self._recognitions]
        self._tasks = []
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def snapshot(self) -> StreamSnapshot:
        """Counters and rates for GetVisionStats."""
        return StreamSnapshot(
            store_id=self.identity.store_id,
            lane_id=self.identity.lane_id,
            camera_id=self.identity.camera_id,
            camera_fps=self.received.rate(),
            processed_fps=self.processed.rate(),
            skipped_fps=self.skipped.rate(),
            frames_received=self.received.total,
            frames_dropped=self.frames_dropped,
            crops_dropped=self.crops_dropped,
            tracks=sum(1 for track in self.analyzer.tracker.tracks if track.confirmed),
            health=self.health.value if self.health else "",
        )
