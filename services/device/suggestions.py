"""Produce suggestions at the scale: a settled loose item becomes ranked PLU suggestions.

When the produce scale reports a stable weight, the agent cuts the scale zone out of the
produce camera's next frame, asks vision (``ClassifyImages``) for its top labels with
calibrated scores, maps the labels to the catalog's PLUs and offers the best few, with
confidence and price, to every ``WatchProduceSuggestions`` subscriber (the POS and the
customer display). When the item comes off the scale, a ``cleared`` message follows.
The POS reports the shopper's pick as an ``ItemAdded`` with
``ENTRY_METHOD_VISION_SUGGESTION``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import cv2
import grpc
import numpy as np
from lanesight.device.broadcast import Broadcast
from lanesight.device.camera.pipeline import CameraPipeline
from lanesight.device.config import ProduceSuggestionsConfig
from lanesight.device.protocols.scale_types import ScaleStatus
from lanesight.device.readings import ScaleReported
from lanesight.fusion.catalog import DEMO_CATALOG, CatalogItem, load_catalog_file
from lanesight.v1 import common_pb2, device_pb2, vision_pb2, vision_pb2_grpc

log = logging.getLogger(__name__)

_SUBSCRIBER_QUEUE = 32
_LATENCIES_KEPT = 1000


@dataclass(frozen=True, slots=True)
class PluChoice:
    """A PLU the lane can suggest, and the vision labels that point at it."""

    plu: str
    sku: str
    description: str
    labels: tuple[str, ...]
    sold_by_weight: bool
    price_per_kg: tuple[int, str] | None  # (minor units, currency)
    unit_price: tuple[int, str] | None


@dataclass(frozen=True, slots=True)
class RankedPlu:
    """One suggestion: the PLU, its confidence and the label that scored highest for it."""

    choice: PluChoice
    confidence: float
    label: str


def plu_choices(items: Iterable[CatalogItem]) -> list[PluChoice]:
    """The catalog items that have a PLU and vision labels (loose produce), in catalog order."""
    choices = []
    for item in items:
        if not item.plu or not item.vision_labels:
            continue
        choices.append(
            PluChoice(
                plu=item.plu,
                sku=item.sku,
                description=item.description,
                labels=tuple(item.vision_labels),
                sold_by_weight=item.sold_by_weight,
                price_per_kg=(item.price_per_kg.amount_minor, item.price_per_kg.currency_code)
                if item.price_per_kg
                else None,
                unit_price=(item.unit_price.amount_minor, item.unit_price.currency_code)
                if item.unit_price
                else None,
            )
        )
    return choices


def load_plu_choices(config: ProduceSuggestionsConfig) -> list[PluChoice]:
    """The PLUs of the configured catalog files (the demo catalog first when set)."""
    items: list[CatalogItem] = []
    if config.demo_catalog:
        items += load_catalog_file(DEMO_CATALOG)
    for path in config.catalog_files:
        items += load_catalog_file(path)
    choices = plu_choices(items)
    if config.enabled and not choices:
        raise ValueError(
            "produce_suggestions: the catalog has no item with a PLU and vision labels"
        )
    return choices


def rank_plus(
    labels: Sequence[tuple[str, float]],
    choices: Sequence[PluChoice],
    limit: int,
    min_confidence: float = 0.0,
) -> list[RankedPlu]:
    """Rank PLUs by the summed (calibrated) scores of their labels; best first.

    A PLU's confidence is the probability the item is one of its labels, so several PLUs
    sharing a label each get that label's score (a catalog lists one label per PLU as a rule).
    """
    score_of: dict[str, float] = {}
    for name, score in labels:
        score_of[name] = score_of.get(name, 0.0) + float(score)
    ranked = []
    for choice in choices:
        scores = [(score_of[label], label) for label in choice.labels if label in score_of]
        if not scores:
            continue
        confidence = min(1.0, sum(score for score, _ in scores))
        if confidence < min_confidence:
            continue
        ranked.append(RankedPlu(choice, confidence, max(scores)[1]))
    ranked.sort(key=lambda r: -r.confidence)
    return ranked[:limit]


def crop_zone(frame: np.ndarray, zone: Sequence[tuple[float, float]]) -> np.ndarray:
    """The bounding box of a normalised polygon, cut out of a frame."""
    height, width = frame.shape[:2]
    xs = [x for x, _ in zone]
    ys = [y for _, y in zone]
    x0, x1 = int(min(xs) * width), max(int(round(max(xs) * width)), int(min(xs) * width) + 1)
    y0, y1 = int(min(ys) * height), max(int(round(max(ys) * height)), int(min(ys) * height) + 1)
    return np.ascontiguousarray(frame[y0:y1, x0:x1])


def _money(value: tuple[int, str] | None) -> common_pb2.Money | None:
    return (
        None if value is None else common_pb2.Money(amount_minor=value[0], currency_code=value[1])
    )


def suggestion_message(ranked: RankedPlu) -> device_pb2.ProduceSuggestion:
    choice = ranked.choice
    message = device_pb2.ProduceSuggestion(
        plu=choice.plu,
        sku=choice.sku,
        description=choice.description,
        confidence=ranked.confidence,
        unit_of_measure=common_pb2.UNIT_OF_MEASURE_KILOGRAM
        if choice.sold_by_weight
        else common_pb2.UNIT_OF_MEASURE_EACH,
        vision_label=ranked.label,
    )
    price_per_kg, unit_price = _money(choice.price_per_kg), _money(choice.unit_price)
    if price_per_kg is not None:
        message.price_per_kg.CopyFrom(price_per_kg)
    if unit_price is not None:
        message.unit_price.CopyFrom(unit_price)
    return message


class ProduceSuggester:
    """Watches the produce scale's readings and publishes ranked PLU suggestions."""

    def __init__(
        self,
        config: ProduceSuggestionsConfig,
        channel: grpc.aio.Channel,
        pipeline: CameraPipeline,
        executor: Executor | None = None,
        choices: Sequence[PluChoice] | None = None,
    ) -> None:
        self.config = config
        self.pipeline = pipeline
        self.choices = list(choices) if choices is not None else load_plu_choices(config)
        self._stub = vision_pb2_grpc.VisionServiceStub(channel)
        self._executor = executor
        self._displays: Broadcast[device_pb2.ProduceSuggestions] = Broadcast(_SUBSCRIBER_QUEUE)
        self._task: asyncio.Task | None = None
        self._current: device_pb2.ProduceSuggestions | None = None
        self._settled_weight_mg: int | None = None
        #: Milliseconds from scale-settled to suggestions ready, most recent last.
        self.latencies_ms: list[float] = []
        self.published = 0
        self.failures = 0

    # -- readings -------------------------------------------------------------------------

    def wants(self, reading: object) -> bool:
        """Whether a reading is from the watched produce scale."""
        return (
            isinstance(reading, ScaleReported)
            and reading.role == "produce"
            and (not self.config.scale_id or reading.device_id == self.config.scale_id)
        )

    def on_reading(self, reading: object) -> None:
        """Called with every peripheral reading (after it is recorded); never blocks."""
        if not self.wants(reading):
            return
        assert isinstance(reading, ScaleReported)
        settled_ns = time.time_ns()
        started = time.perf_counter()
        loaded = reading.weight_mg >= self.config.min_weight_mg
        if reading.status is ScaleStatus.STABLE and loaded:
            if reading.weight_mg == self._settled_weight_mg:
                return
            self._settled_weight_mg = reading.weight_mg
            self._replace_task(self._suggest(reading, settled_ns, started))
        elif reading.status is ScaleStatus.ZERO or (
            reading.status is ScaleStatus.STABLE and not loaded
        ):
            if self._settled_weight_mg is None:
                return
            self._settled_weight_mg = None
            self._cancel_task()
            cleared = device_pb2.ProduceSuggestions(
                suggestion_id=self._current.suggestion_id if self._current else "",
                scale_id=reading.device_id,
                camera_id=self.pipeline.camera_id,
                cleared=True,
            )
            self._current = None
            self._publish(cleared)

    def _replace_task(self, coro) -> None:
        self._cancel_task()
        self._task = asyncio.get_running_loop().create_task(coro, name="produce-suggestions")

    def _cancel_task(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    async def close(self) -> None:
        """Stop a suggestion in progress and end every subscription."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        self.close_subscribers()

    def close_subscribers(self) -> None:
        """End every subscription (shutdown: open streams must not hold the server's drain)."""
        self._displays.close()

    # -- one settled item ------------------------------------------------------------------

    async def _frame_after(self, settled_ns: int) -> np.ndarray | None:
        """The first frame captured after the scale settled, or the latest within frame_wait_s."""
        deadline = time.monotonic() + self.config.frame_wait_s
        while True:
            latest = self.pipeline.latest
            if latest is not None and latest[0] >= settled_ns:
                return latest[1]
            if time.monotonic() >= deadline:
                return None if latest is None else latest[1]
            await asyncio.sleep(0.01)

    async def _suggest(self, reading: ScaleReported, settled_ns: int, started: float) -> None:
        message = device_pb2.ProduceSuggestions(
            suggestion_id=secrets.token_hex(8),
            scale_id=reading.device_id,
            weight_mg=reading.weight_mg,
            camera_id=self.pipeline.camera_id,
        )
        message.settled_time.FromNanoseconds(settled_ns)
        try:
            frame = await self._frame_after(settled_ns)
            if frame is None:
                message.detail = "no camera frame yet"
            else:
                loop = asyncio.get_running_loop()
                jpeg = await loop.run_in_executor(self._executor, self._encode_crop, frame)
                response = await self._stub.ClassifyImages(
                    vision_pb2.ClassifyImagesRequest(images=[jpeg], top_k=self.config.vision_top_k),
                    timeout=self.config.timeout_s,
                )
                labels = [(label.label, label.score) for label in response.results[0].labels]
                ranked = rank_plus(
                    labels, self.choices, self.config.max_suggestions, self.config.min_confidence
                )
                message.suggestions.extend(suggestion_message(r) for r in ranked)
                if not ranked:
                    message.detail = "no PLU of the catalog fits"
        except asyncio.CancelledError:
            raise
        except grpc.aio.AioRpcError as exc:
            self.failures += 1
            message.detail = f"vision unavailable: {exc.code().name}"
            log.warning("produce suggestions: vision failed: %s %s", exc.code().name, exc.details())
        except Exception as exc:  # a bad frame must not end suggestions for the lane
            self.failures += 1
            message.detail = f"failed: {type(exc).__name__}"
            log.exception("produce suggestions failed")
        latency_ms = (time.perf_counter() - started) * 1000
        message.latency_ms = latency_ms
        self.latencies_ms.append(latency_ms)
        del self.latencies_ms[:-_LATENCIES_KEPT]
        self._current = message
        self._publish(message)

    def _encode_crop(self, frame: np.ndarray) -> bytes:
        crop = crop_zone(frame, self.config.scale_zone)
        ok, encoded = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise ValueError("the scale-zone crop could not be encoded")
        return encoded.tobytes()

    # -- subscribers -----------------------------------------------------------------------

    def _publish(self, message: device_pb2.ProduceSuggestions) -> None:
        self.published += 1
        self._displays.publish(message)  # a display that stopped reading loses its oldest

    def subscribe(self) -> AsyncIterator[device_pb2.ProduceSuggestions]:
        """The current suggestions (if an item is on the scale), then every new set or clear."""
        return self._displays.subscribe(self._current)

    @property
    def subscriber_count(self) -> int:
        return len(self._displays)

    @property
    def subscriber_drops(self) -> int:
        return self._displays.drops
