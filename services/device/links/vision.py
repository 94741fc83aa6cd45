"""The link to vision: one VisionService.Analyze stream per camera; observations become events."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import grpc
from lanesight.common.channels import Backoff
from lanesight.device.camera.pipeline import CameraPipeline
from lanesight.device.config import CameraConfig
from lanesight.device.drivers.base import HealthTracker
from lanesight.device.links.streams import run_until_either_ends
from lanesight.device.readings import HealthState
from lanesight.v1 import common_pb2, events_pb2, vision_pb2, vision_pb2_grpc

log = logging.getLogger(__name__)

ZONES = {
    "scan": common_pb2.LANE_ZONE_SCAN,
    "bagging": common_pb2.LANE_ZONE_BAGGING,
    "cart": common_pb2.LANE_ZONE_CART,
}
# VisionObservation field -> LaneEvent payload field (same message types).
_PAYLOADS = (
    "zone_crossing",
    "item_recognized",
    "barcode_seen",
    "zone_item_count",
    "camera_health_changed",
)


def stream_config(store_id: str, lane_id: str, camera: CameraConfig) -> vision_pb2.StreamConfig:
    """The first message of a camera's stream: lane, camera and zone polygons."""
    return vision_pb2.StreamConfig(
        lane=common_pb2.LaneRef(store_id=store_id, lane_id=lane_id),
        camera_id=camera.id,
        zones=[
            vision_pb2.ZonePolygon(
                zone=ZONES[zone.zone], points=[vision_pb2.Point(x=x, y=y) for x, y in zone.points]
            )
            for zone in camera.zones
        ],
        top_k=camera.top_k,
    )


def observation_event(
    camera_id: str, observation: vision_pb2.VisionObservation
) -> events_pb2.LaneEvent | None:
    """The unstamped lane event for one vision observation."""
    kind = observation.WhichOneof("observation")
    if kind not in _PAYLOADS:
        return None
    event = events_pb2.LaneEvent(source_device_id=camera_id)
    getattr(event, kind).CopyFrom(getattr(observation, kind))
    return event


class VisionLink:
    """Streams one camera's gated frames to vision and records what comes back.

    While vision is away the pipeline drops frames (counted) instead of queueing
    them, and a VISION_LINK health event records the outage.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        pipeline: CameraPipeline,
        config: vision_pb2.StreamConfig,
        record: Callable[..., Awaitable[object]],
        health: HealthTracker,
        backoff: Backoff | None = None,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self._stub = vision_pb2_grpc.VisionServiceStub(channel)
        self.pipeline = pipeline
        self.config = config
        self._record = record
        self.health = health
        self._backoff = backoff or Backoff()
        self._connect_timeout_s = connect_timeout_s
        self._ready = False
        self.observations = 0
        self.vision_dropped_frames = 0
        pipeline.link_ready = lambda: self._ready

    async def run(self) -> None:
        """Keep the stream open until cancelled; reconnect with backoff."""
        while True:
            call = self._stub.Analyze()
            try:
                await asyncio.wait_for(call.wait_for_connection(), self._connect_timeout_s)
                await call.write(vision_pb2.AnalyzeRequest(config=self.config))
                self._ready = True  # frames may flow; only vision's first answer says "up"
                await run_until_either_ends(self._send(call), self._receive(call), "analyze")
            except Exception as exc:  # any stream error: back off and reconnect, never die
                self._ready = False
                self.pipeline.drop_queued()
                detail = (
                    f"{exc.code().name}: {exc.details()}"
                    if isinstance(exc, grpc.aio.AioRpcError)
                    else f"{type(exc).__name__}: {exc}"
                )
                delay = self._backoff.next_delay()
                if self._backoff.first_failure:
                    log.warning(
                        "vision link for camera %s down (%s); dropping frames until it is back",
                        self.pipeline.camera_id,
                        detail,
                    )
                await self.health.set(HealthState.DISCONNECTED, detail)
                await asyncio.sleep(delay)
            finally:
                self._ready = False
                with contextlib.suppress(Exception):
                    call.cancel()

    async def _send(self, call) -> None:
        while True:
            frame = await self.pipeline.queue.get()
            message = vision_pb2.Frame(
                frame_id=frame.frame_id, jpeg=frame.jpeg, keyframe=frame.keyframe
            )
            message.captured_at.FromNanoseconds(frame.captured_ns)
            await call.write(vision_pb2.AnalyzeRequest(frame=message))
            self.pipeline.counters.sent += 1

    async def _receive(self, call) -> None:
        answered = False
        while True:
            response = await call.read()
            if response is grpc.aio.EOF:
                raise ConnectionError("vision closed the analyze stream")
            if not answered:
                # Vision took the stream (it may refuse the config instead): now it is up.
                answered = True
                self._backoff.reset()
                await self.health.set(HealthState.CONNECTED)
            self.vision_dropped_frames = response.dropped_frames
            # What vision saw happened when the frame was taken (the lane clock's).
            captured = (
                response.captured_at.ToNanoseconds() if response.HasField("captured_at") else 0
            )
            for observation in response.observations:
                event = observation_event(self.pipeline.camera_id, observation)
                if event is not None:
                    self.observations += 1
                    await self._record(event, happened_ns=captured or None)
