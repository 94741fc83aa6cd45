"""What all lane streams of one vision replica share: the model, the batcher, the frame threads."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
from dataclasses import dataclass

import numpy as np
from lanesight.vision.analyzer import FrameDecodeError, decode_image
from lanesight.vision.batcher import DynamicBatcher
from lanesight.vision.config import VisionConfig
from lanesight.vision.observations import Label
from lanesight.vision.recognizer import CropScores, Recognizer
from lanesight.vision.stats import StreamSnapshot
from lanesight.vision.stream import InvalidRequest, LaneStream, StreamIdentity
from lanesight.vision.zones import ZoneMap

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageResult:
    """ClassifyImages' answer for one image."""

    labels: tuple[Label, ...]
    enrolled_match: Label | None


@dataclass(frozen=True)
class EngineStats:
    """GetVisionStats' numbers."""

    open_streams: int
    frames_received: int
    frames_dropped: int
    crops_classified: int
    crops_dropped: int
    batches: int
    mean_batch_size: float
    inference_ms_avg: float
    inference_ms_per_crop_avg: float
    providers: tuple[str, ...]
    streams: tuple[StreamSnapshot, ...]


class VisionEngine:
    """Loads the model, batches crops from every stream, and keeps the replica's counters."""

    def __init__(self, config: VisionConfig, recognizer: Recognizer | None = None) -> None:
        self.config = config
        self.recognizer = recognizer or Recognizer(config)
        self.batcher: DynamicBatcher[np.ndarray, CropScores] = DynamicBatcher(
            self.recognizer.run_batch,
            max_batch=config.max_batch,
            max_wait_ms=config.max_wait_ms,
            max_queue=config.crop_queue_max,
            name="vision-infer",
        )
        workers = config.frame_workers or os.cpu_count() or 1
        self.frame_pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="vision-frame"
        )
        self.streams: set[LaneStream] = set()
        self.frames_received = 0
        self.frames_processed = 0
        self.frames_dropped = 0
        self.crops_dropped = 0
        self._started = False
        self._stopped = False

    async def start(self) -> None:
        """Load the model (in a thread), start batching, warm up."""
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.frame_pool, self.recognizer.load)
        await self.batcher.start()
        if self.config.warmup:
            await self.batcher.run_in_worker(self.recognizer.warm_up, self.config.max_batch)
        log.info(
            "vision model ready on %s (max batch %d, max wait %.1f ms)",
            ", ".join(self.recognizer.providers),
            self.config.max_batch,
            self.config.max_wait_ms,
        )

    def end_streams(self) -> None:
        """End every open lane stream (shutdown)."""
        for stream in list(self.streams):
            stream.end()

    async def stop(self) -> None:
        """End streams, stop batching, release threads; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for stream in list(self.streams):
            await stream.close()
        await self.batcher.stop()
        self.frame_pool.shutdown(wait=False, cancel_futures=True)

    # -- lane streams -----------------------------------------------------------------

    def open_stream(self, identity: StreamIdentity, zones: ZoneMap, top_k: int) -> LaneStream:
        stream = LaneStream(self, identity, zones, top_k or self.config.top_k)
        self.streams.add(stream)
        log.info("stream opened: store %s lane %s camera %s", *vars(identity).values())
        return stream

    def close_stream(self, stream: LaneStream) -> None:
        self.streams.discard(stream)
        log.info(
            "stream closed: lane %s camera %s (%d frames, %d dropped)",
            stream.identity.lane_id,
            stream.identity.camera_id,
            stream.received.total,
            stream.frames_dropped,
        )

    # -- still images -----------------------------------------------------------------

    async def _decode_all(self, images: list[bytes]) -> list[np.ndarray]:
        loop = asyncio.get_running_loop()
        decoded = []
        for index, data in enumerate(images):
            try:
                decoded.append(await loop.run_in_executor(self.frame_pool, decode_image, data))
            except FrameDecodeError as exc:
                raise InvalidRequest(f"images[{index}]", str(exc)) from None
        return decoded

    async def _scores(self, images: list[bytes]) -> list[CropScores]:
        decoded = await self._decode_all(images)
        return list(
            await asyncio.gather(
                *(self.batcher.submit(image, wait_for_room=True) for image in decoded)
            )
        )

    async def classify_images(self, images: list[bytes], top_k: int) -> list[ImageResult]:
        """Top-k labels (and the nearest enrolled product) per image; InvalidRequest on bad input."""
        results = []
        for scores in await self._scores(images):
            results.append(
                ImageResult(
                    self.recognizer.labels(scores, top_k),
                    self.recognizer.enrolled_match(scores),
                )
            )
        return results

    async def enrol_product(self, label: str, images: list[bytes]) -> int:
        """Enrol a product from reference images and persist; returns the product count."""
        embeddings = np.stack([scores.embedding for scores in await self._scores(images)])
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.frame_pool, self.recognizer.enrol, label, embeddings)

    # -- statistics -------------------------------------------------------------------

    def stats(self) -> EngineStats:
        batcher = self.batcher.stats()
        return EngineStats(
            open_streams=len(self.streams),
            frames_received=self.frames_received,
            frames_dropped=self.frames_dropped,
            crops_classified=batcher.processed,
            crops_dropped=self.crops_dropped,
            batches=batcher.batches,
            mean_batch_size=batcher.mean_batch_size,
            inference_ms_avg=batcher.inference_ms_avg,
            inference_ms_per_crop_avg=batcher.inference_ms_per_item_avg,
            providers=tuple(self.recognizer.providers),
            streams=tuple(stream.snapshot() for stream in self.streams),
        )
