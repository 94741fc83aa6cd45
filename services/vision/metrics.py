"""Vision's OpenTelemetry instruments (names, units, attributes: docs/telemetry.md).

Frigate-style camera and inference statistics: streams open, frames by outcome, processed
fps per lane stream, inference time and batch size per batch, the crop queue's depth and
drops, camera conditions. Counters are read from the engine's own (GetVisionStats uses the
same); watch(engine) at start, unwatch(engine) at stop.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

from lanesight.common.telemetry import duration_histogram, service_meter
from lanesight.vision.observations import Health
from opentelemetry.metrics import CallbackOptions, Observation

if TYPE_CHECKING:
    from lanesight.vision.engine import VisionEngine

_meter = service_meter("vision")
_engines: weakref.WeakSet[VisionEngine] = weakref.WeakSet()

In = TypeVar("In")
Out = TypeVar("Out")

inference_duration = duration_histogram(
    _meter, "lanesight.vision.inference.duration", "One batch of crops through the model."
)
batch_size = _meter.create_histogram(
    "lanesight.vision.batch.size",
    unit="{crop}",
    description="Crops per inference batch.",
    explicit_bucket_boundaries_advisory=[1, 2, 4, 8, 16, 32, 64, 128],
)
camera_conditions = _meter.create_counter(
    "lanesight.vision.camera.conditions",
    unit="{condition}",
    description="Camera conditions raised (dark, blocked, frozen, moved).",
)


def provider_name(providers: Sequence[str]) -> str:
    """lanesight.vision.provider: the first execution provider in use, short."""
    first = providers[0] if providers else "CPUExecutionProvider"
    return first.removesuffix("ExecutionProvider").lower()


def timed_batches(
    run_batch: Callable[[list[In]], Sequence[Out]], provider: Callable[[], str]
) -> Callable[[list[In]], Sequence[Out]]:
    """run_batch, recording each batch's duration and size (it runs in the worker thread)."""

    def run(items: list[In]) -> Sequence[Out]:
        started = time.perf_counter()
        results = run_batch(items)
        attributes = {"lanesight.vision.provider": provider()}
        inference_duration.record(time.perf_counter() - started, attributes)
        batch_size.record(len(items), attributes)
        return results

    return run


def camera_condition(health: Health | None) -> None:
    """Count a camera condition a stream reported (OK, the end of one, is not counted)."""
    if health is not None and health is not Health.OK:
        camera_conditions.add(1, {"lanesight.camera.condition": health.value})


def watch(engine: VisionEngine) -> None:
    """Report this engine's counters, and time its batches (once per engine)."""
    if engine in _engines:
        return
    _engines.add(engine)
    batcher = engine.batcher
    batcher.run_batch = timed_batches(
        batcher.run_batch, lambda: provider_name(engine.recognizer.providers)
    )


def unwatch(engine: VisionEngine) -> None:
    _engines.discard(engine)


def _streams(options: CallbackOptions) -> Iterable[Observation]:
    for engine in list(_engines):
        yield Observation(len(engine.streams))


def _frames(options: CallbackOptions) -> Iterable[Observation]:
    for engine in list(_engines):
        yield Observation(engine.frames_received, {"lanesight.frame.outcome": "received"})
        yield Observation(engine.frames_processed, {"lanesight.frame.outcome": "processed"})
        yield Observation(engine.frames_dropped, {"lanesight.frame.outcome": "dropped"})


def _fps(options: CallbackOptions) -> Iterable[Observation]:
    for engine in list(_engines):
        for stream in list(engine.streams):
            identity = stream.identity
            yield Observation(
                stream.processed.rate(),
                {
                    "lanesight.store.id": identity.store_id,
                    "lanesight.lane.id": identity.lane_id,
                    "lanesight.camera.id": identity.camera_id,
                },
            )


def _crops_dropped(options: CallbackOptions) -> Iterable[Observation]:
    for engine in list(_engines):
        yield Observation(engine.crops_dropped)


def _queue_depth(options: CallbackOptions) -> Iterable[Observation]:
    for engine in list(_engines):
        yield Observation(engine.batcher.stats().queued)


_meter.create_observable_up_down_counter(
    "lanesight.vision.streams.open",
    callbacks=[_streams],
    unit="{stream}",
    description="Lane camera streams open on this replica.",
)
_meter.create_observable_counter(
    "lanesight.vision.frames",
    callbacks=[_frames],
    unit="{frame}",
    description="Frames received, processed and dropped (drops mean overload).",
)
_meter.create_observable_gauge(
    "lanesight.vision.stream.fps",
    callbacks=[_fps],
    unit="{frame}/s",
    description="Processed frames per second of each lane camera stream.",
)
_meter.create_observable_counter(
    "lanesight.vision.crops.dropped",
    callbacks=[_crops_dropped],
    unit="{crop}",
    description="Crops dropped at the bounded queues.",
)
_meter.create_observable_gauge(
    "lanesight.vision.queue.depth",
    callbacks=[_queue_depth],
    unit="{crop}",
    description="Crops waiting for the model.",
)
