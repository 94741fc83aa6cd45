"""VisionService over gRPC: protobuf in and out, the work done by the engine and lane streams."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import grpc
from lanesight.common.auth import authorize_all_stores, authorize_store
from lanesight.v1 import common_pb2, events_pb2, vision_pb2, vision_pb2_grpc
from lanesight.vision.engine import VisionEngine
from lanesight.vision.observations import (
    BarcodeDecoded,
    Direction,
    Health,
    HealthChanged,
    ItemSeen,
    Label,
    Observation,
    ZoneCountChanged,
    ZoneCrossingSeen,
)
from lanesight.vision.stream import FrameIn, InvalidRequest, StreamIdentity, StreamOutput
from lanesight.vision.zones import Zone, ZoneError, ZoneMap

log = logging.getLogger(__name__)

_ZONE_FROM_PROTO = {
    common_pb2.LANE_ZONE_CART: Zone.CART,
    common_pb2.LANE_ZONE_SCAN: Zone.SCAN,
    common_pb2.LANE_ZONE_BAGGING: Zone.BAGGING,
}
# Keyed by Zone | None so an observation's optional zone can be looked up as is.
_ZONE_TO_PROTO: dict[Zone | None, int] = {zone: value for value, zone in _ZONE_FROM_PROTO.items()}
_DIRECTION_TO_PROTO = {
    Direction.ENTERED: events_pb2.ZONE_DIRECTION_ENTERED,
    Direction.LEFT: events_pb2.ZONE_DIRECTION_LEFT,
}
_HEALTH_TO_PROTO = {
    Health.OK: events_pb2.CAMERA_HEALTH_OK,
    Health.DARK: events_pb2.CAMERA_HEALTH_DARK,
    Health.BLOCKED: events_pb2.CAMERA_HEALTH_BLOCKED,
    Health.FROZEN: events_pb2.CAMERA_HEALTH_FROZEN,
    Health.MOVED: events_pb2.CAMERA_HEALTH_MOVED,
}
_HEALTH_BY_NAME = {health.value: value for health, value in _HEALTH_TO_PROTO.items()}
DEFAULT_CLASSIFY_TOP_K = 5
MAX_TOP_K = 81


def stream_settings(
    config: vision_pb2.StreamConfig, default_store_id: str
) -> tuple[StreamIdentity, ZoneMap, int]:
    """Validate a StreamConfig; InvalidRequest names the offending field."""
    if not config.lane.lane_id:
        raise InvalidRequest("config.lane.lane_id", "required")
    if not config.camera_id:
        raise InvalidRequest("config.camera_id", "required")
    if config.top_k < 0:
        raise InvalidRequest("config.top_k", f"must not be negative, got {config.top_k}")
    zones = []
    for index, polygon in enumerate(config.zones):
        zone = _ZONE_FROM_PROTO.get(polygon.zone)
        if zone is None:
            raise InvalidRequest(f"config.zones[{index}].zone", "must be CART, SCAN or BAGGING")
        zones.append((zone, [(point.x, point.y) for point in polygon.points]))
    try:
        zone_map = ZoneMap.from_points(zones)
    except ZoneError as exc:
        raise InvalidRequest(f"config.{exc.field}", str(exc).split(": ", 1)[1]) from None
    identity = StreamIdentity(
        config.lane.store_id or default_store_id, config.lane.lane_id, config.camera_id
    )
    return identity, zone_map, min(config.top_k, MAX_TOP_K)


async def frames_from(requests: AsyncIterator[vision_pb2.AnalyzeRequest]) -> AsyncIterator[FrameIn]:
    """The frames after the config; InvalidRequest on anything else."""
    async for request in requests:
        kind = request.WhichOneof("item")
        if kind == "config":
            raise InvalidRequest("config", "only the first message may be a StreamConfig")
        if kind != "frame":
            raise InvalidRequest("item", "a message must carry a config or a frame")
        frame = request.frame
        if not frame.jpeg:
            raise InvalidRequest("frame.jpeg", f"frame_id {frame.frame_id}: empty")
        if frame.HasField("captured_at"):
            captured_s = frame.captured_at.seconds + frame.captured_at.nanos / 1e9
            yield FrameIn(frame.frame_id, frame.jpeg, captured_s, frame.captured_at)
        else:
            yield FrameIn(frame.frame_id, frame.jpeg)


def _label(label: Label) -> events_pb2.LabelScore:
    return events_pb2.LabelScore(
        label=label.label, score=label.score, coarse_label=label.coarse_label
    )


def observation_to_proto(observation: Observation, camera_id: str) -> vision_pb2.VisionObservation:
    """One domain observation as a VisionObservation."""
    if isinstance(observation, ZoneCrossingSeen):
        return vision_pb2.VisionObservation(
            zone_crossing=events_pb2.ZoneCrossing(
                camera_id=camera_id,
                track_id=observation.track_id,
                zone=_ZONE_TO_PROTO[observation.zone],
                direction=_DIRECTION_TO_PROTO[observation.direction],
            )
        )
    if isinstance(observation, ZoneCountChanged):
        return vision_pb2.VisionObservation(
            zone_item_count=events_pb2.ZoneItemCount(
                camera_id=camera_id, zone=_ZONE_TO_PROTO[observation.zone], count=observation.count
            )
        )
    if isinstance(observation, ItemSeen):
        zone = _ZONE_TO_PROTO.get(observation.zone, common_pb2.LANE_ZONE_UNSPECIFIED)
        return vision_pb2.VisionObservation(
            item_recognized=events_pb2.ItemRecognized(
                camera_id=camera_id,
                track_id=observation.track_id,
                zone=zone,
                labels=[_label(label) for label in observation.labels],
            )
        )
    if isinstance(observation, BarcodeDecoded):
        return vision_pb2.VisionObservation(
            barcode_seen=events_pb2.BarcodeSeen(
                camera_id=camera_id,
                track_id=observation.track_id,
                data=observation.data,
                symbology=observation.symbology,
                gtin=observation.gtin,
            )
        )
    if isinstance(observation, HealthChanged):
        return vision_pb2.VisionObservation(
            camera_health_changed=events_pb2.CameraHealthChanged(
                camera_id=camera_id,
                health=_HEALTH_TO_PROTO[observation.health],
                reason=observation.reason,
            )
        )
    raise TypeError(f"unknown observation {observation!r}")


def output_to_proto(output: StreamOutput, camera_id: str) -> vision_pb2.AnalyzeResponse:
    response = vision_pb2.AnalyzeResponse(
        frame_id=output.frame_id,
        observations=[observation_to_proto(o, camera_id) for o in output.observations],
        dropped_frames=output.dropped_frames,
        latency_ms=output.latency_ms,
    )
    if output.captured_at is not None:
        response.captured_at.CopyFrom(output.captured_at)
    return response


class VisionServicer(vision_pb2_grpc.VisionServiceServicer):
    """VisionService: thin translation between protobuf and the engine."""

    def __init__(self, engine: VisionEngine, default_store_id: str) -> None:
        self.engine = engine
        self.default_store_id = default_store_id

    async def Analyze(self, request_iterator, context: grpc.aio.ServicerContext):
        try:
            first = await anext(aiter(request_iterator))
        except StopAsyncIteration:
            return
        try:
            if first.WhichOneof("item") != "config":
                raise InvalidRequest("config", "the first message must be a StreamConfig")
            identity, zones, top_k = stream_settings(first.config, self.default_store_id)
        except InvalidRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            return
        # The store the stream is for (the config's, else this service's default).
        await authorize_store(context, identity.store_id)
        stream = self.engine.open_stream(identity, zones, top_k)
        try:
            async for output in stream.run(frames_from(request_iterator)):
                yield output_to_proto(output, identity.camera_id)
        except InvalidRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        finally:
            self.engine.close_stream(stream)

    async def ClassifyImages(self, request, context: grpc.aio.ServicerContext):
        if not request.images:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "images: at least one required")
        if request.top_k < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "top_k: must not be negative")
        top_k = min(request.top_k or DEFAULT_CLASSIFY_TOP_K, MAX_TOP_K)
        try:
            results = await self.engine.classify_images(list(request.images), top_k)
        except InvalidRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        response = vision_pb2.ClassifyImagesResponse()
        for result in results:
            entry = response.results.add(labels=[_label(label) for label in result.labels])
            if result.enrolled_match is not None:
                entry.enrolled_match.CopyFrom(_label(result.enrolled_match))
        return response

    async def EnrolProduct(self, request, context: grpc.aio.ServicerContext):
        # The enrolled products are shared by every store's lanes.
        await authorize_all_stores(context)
        if not request.label.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "label: required")
        if not request.images:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "images: at least one required")
        try:
            count = await self.engine.enrol_product(request.label.strip(), list(request.images))
        except InvalidRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        return vision_pb2.EnrolProductResponse(enrolled_products=count)

    async def GetVisionStats(self, request, context: grpc.aio.ServicerContext):
        stats = self.engine.stats()
        return vision_pb2.GetVisionStatsResponse(
            open_streams=stats.open_streams,
            frames_received=stats.frames_received,
            frames_dropped=stats.frames_dropped,
            crops_classified=stats.crops_classified,
            mean_batch_size=stats.mean_batch_size,
            inference_ms_avg=stats.inference_ms_avg,
            providers=list(stats.providers),
            crops_dropped=stats.crops_dropped,
            batches=stats.batches,
            inference_ms_per_crop_avg=stats.inference_ms_per_crop_avg,
            streams=[
                vision_pb2.StreamStats(
                    lane=common_pb2.LaneRef(store_id=s.store_id, lane_id=s.lane_id),
                    camera_id=s.camera_id,
                    camera_fps=s.camera_fps,
                    processed_fps=s.processed_fps,
                    skipped_fps=s.skipped_fps,
                    frames_received=s.frames_received,
                    frames_dropped=s.frames_dropped,
                    crops_dropped=s.crops_dropped,
                    tracks=s.tracks,
                    health=_HEALTH_BY_NAME.get(s.health, events_pb2.CAMERA_HEALTH_UNSPECIFIED),
                )
                for s in stats.streams
            ],
        )
