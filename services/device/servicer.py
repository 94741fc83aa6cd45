"""DeviceService: protobuf in, the lane agent's plain calls, protobuf out."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from lanesight.common.auth import authorize_store
from lanesight.device.agent import LaneAgent, OutboxFull
from lanesight.device.evidence import read_alert_evidence
from lanesight.device.lane_events import DEVICE_KIND, PERIPHERAL_STATE
from lanesight.device.pos_ingress import InvalidPosEvent, validate_pos_event
from lanesight.v1 import common_pb2, device_pb2, device_pb2_grpc

MAX_EVENTS_PER_REQUEST = 1000


def _timestamp(ns: int) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp


class DeviceServicer(device_pb2_grpc.DeviceServiceServicer):
    """The lane agent's gRPC API: POS ingress, status and lane commands.

    The agent serves one store: every RPC first checks the caller may act on it.
    """

    def __init__(self, agent: LaneAgent) -> None:
        self.agent = agent

    async def SubmitPosEvents(self, request, context: grpc.aio.ServicerContext):
        await authorize_store(context, self.agent.store_id)
        if not request.events:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "events: at least one is needed")
        if len(request.events) > MAX_EVENTS_PER_REQUEST:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"events: at most {MAX_EVENTS_PER_REQUEST} per request",
            )
        try:
            for index, event in enumerate(request.events):
                validate_pos_event(event, index)
        except InvalidPosEvent as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        try:
            recorded = await self.agent.submit_pos_events(list(request.events))
        except OutboxFull as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        return device_pb2.SubmitPosEventsResponse(
            event_ids=[event_id for event_id, _ in recorded],
            sequences=[sequence for _, sequence in recorded],
        )

    async def GetDeviceStatus(self, request, context: grpc.aio.ServicerContext):
        await authorize_store(context, self.agent.store_id)
        status = self.agent.status()
        response = device_pb2.GetDeviceStatusResponse(
            lane=common_pb2.LaneRef(store_id=status.store_id, lane_id=status.lane_id),
            outbox_pending=status.outbox_pending,
            last_sequence=status.last_sequence,
            acked_sequence=status.acked_sequence,
            paused=status.paused,
            outbox_dropped=status.outbox_dropped,
        )
        if status.oldest_pending_ns is not None:
            response.oldest_pending_time.CopyFrom(_timestamp(status.oldest_pending_ns))
        for peripheral in status.peripherals:
            response.peripherals.append(
                device_pb2.PeripheralStatus(
                    device_id=peripheral.device_id,
                    kind=DEVICE_KIND[peripheral.kind],
                    state=PERIPHERAL_STATE[peripheral.state],
                    detail=peripheral.detail[:500],
                    since=_timestamp(peripheral.since_ns),
                    address=peripheral.address,
                )
            )
        for camera_id, counters in status.cameras.items():
            response.cameras.append(
                device_pb2.CameraCounters(
                    camera_id=camera_id,
                    captured=counters.captured,
                    sent=counters.sent,
                    skipped_no_motion=counters.skipped_no_motion,
                    dropped=counters.dropped,
                )
            )
        return response

    async def ExecuteLaneCommand(self, request, context: grpc.aio.ServicerContext):
        await authorize_store(context, self.agent.store_id)
        commands = self.agent.commands
        if commands is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the lane agent is starting")
        if not request.HasField("command"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "command: is required")
        if not request.command.command_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "command.command_id: is required")
        if request.command.WhichOneof("action") is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "command.action: none is set")
        assert commands is not None  # context.abort raised above
        result = await commands.execute(request.command)
        return device_pb2.ExecuteLaneCommandResponse(done=result.done, detail=result.detail)

    async def GetAlertEvidence(self, request, context: grpc.aio.ServicerContext):
        await authorize_store(context, self.agent.store_id)
        if not request.alert_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "alert_id: is required")
        if len(request.alert_id) > 256:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "alert_id: at most 256 characters")
        device = self.agent.device
        if not device.evidence_enabled:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, "this lane keeps no evidence (device.evidence_enabled)"
            )
        # Leave room in the message for everything but the images.
        budget = self.agent.config.server.max_message_mb * 1024 * 1024 - 64 * 1024
        found = await asyncio.to_thread(
            read_alert_evidence, Path(device.evidence_dir), request.alert_id, budget
        )
        if found is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"no evidence kept for alert {request.alert_id!r}"
            )
        assert found is not None  # context.abort raised above
        frames, left_out = found
        response = device_pb2.GetAlertEvidenceResponse(frames_left_out=left_out)
        for frame in frames:
            response.frames.append(
                device_pb2.EvidenceFrame(
                    camera_id=frame.camera_id,
                    captured_at=_timestamp(frame.captured_ns),
                    jpeg=frame.jpeg,
                    faces_blurred=frame.faces_blurred,
                )
            )
        return response

    async def WatchLaneCommands(self, request, context: grpc.aio.ServicerContext):
        await authorize_store(context, self.agent.store_id)
        commands = self.agent.commands
        if commands is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the lane agent is starting")
        assert commands is not None  # context.abort raised above
        async for command in commands.subscribe():
            yield device_pb2.WatchLaneCommandsResponse(command=command)

    async def WatchProduceSuggestions(self, request, context: grpc.aio.ServicerContext):
        await authorize_store(context, self.agent.store_id)
        suggester = self.agent.suggester
        if suggester is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "device.produce_suggestions: not enabled on this lane (or it has no camera)",
            )
        assert suggester is not None  # context.abort raised above
        async for suggestions in suggester.subscribe():
            yield device_pb2.WatchProduceSuggestionsResponse(suggestions=suggestions)
