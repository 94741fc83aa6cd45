"""Cameras: motion gating on synthetic frames, frame sources, the vision link and its outages."""

from __future__ import annotations

import asyncio

import cv2
import grpc
import numpy as np
import pytest
from lanesight.device.camera.motion import MotionGate, encode_jpeg, zone_mask
from lanesight.device.camera.pipeline import CameraPipeline
from lanesight.device.camera.sources import LoopingCapture, SourceUnavailable, open_frame_source
from lanesight.device.config import CameraConfig, ZoneConfig
from lanesight.v1 import common_pb2, device_pb2, device_pb2_grpc, events_pb2

from tests.conftest import assert_eventually
from tests.device.conftest import FakeVision, agent_config, start_agent, start_fake_vision

LEFT_HALF = [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]


def frame_with_block(x: int | None, size: int = 40) -> np.ndarray:
    """A 320x240 grey frame with a white block at column x (None: no block)."""
    frame = np.full((240, 320, 3), 60, np.uint8)
    if x is not None:
        frame[100 : 100 + size, x : x + size] = 255
    return frame


class SyntheticCamera:
    """A frame source like the vision team's synthetic camera: read() -> (ok, frame)."""

    def __init__(self) -> None:
        self.moving = False
        self.reads = 0
        self._x = 10

    def read(self):
        self.reads += 1
        if self.moving:
            self._x = (self._x + 15) % 120  # stays in the left half
            return True, frame_with_block(self._x)
        return True, frame_with_block(None)


def test_static_scene_has_no_motion_and_a_moving_block_has():
    gate = MotionGate(analysis_width=96, motion_threshold=0.01)
    assert gate.update(frame_with_block(None)).motion is False  # first frame: background
    for _ in range(5):
        assert gate.update(frame_with_block(None)).motion is False
    result = gate.update(frame_with_block(40))
    assert result.motion and result.changed_fraction > 0.01


def test_motion_outside_the_zones_is_ignored():
    gate = MotionGate(zones=[LEFT_HALF], analysis_width=96)
    gate.update(frame_with_block(None))
    assert gate.update(frame_with_block(250)).motion is False  # right half
    gate = MotionGate(zones=[LEFT_HALF], analysis_width=96)
    gate.update(frame_with_block(None))
    assert gate.update(frame_with_block(20)).motion is True  # left half


def test_zone_mask_covers_the_polygon():
    mask = zone_mask([LEFT_HALF], 100, 50)
    assert mask[:, :49].all() and not mask[:, 52:].any()
    assert zone_mask([], 10, 10).all()


def _camera(**overrides) -> CameraConfig:
    values = {
        "id": "cam-1",
        "source": "python:unused:unused",
        "zones": [ZoneConfig(zone="scan", points=LEFT_HALF)],
        "keyframe_interval_s": 3600.0,
        "send_queue_frames": 2,
    }
    values.update(overrides)
    return CameraConfig(**values)


async def _noop_sink(reading) -> None:
    return None


async def test_pipeline_counts_captured_sent_skipped_and_dropped():
    pipeline = CameraPipeline(_camera(), _noop_sink)
    gate = MotionGate(zones=[LEFT_HALF])
    ready = [True]
    pipeline.link_ready = lambda: ready[0]
    outcomes = []
    # First frame: no motion yet but a keyframe is due.
    outcomes.append(await pipeline.process(gate, frame_with_block(None), 1))
    for _ in range(3):  # a still scene is skipped
        outcomes.append(await pipeline.process(gate, frame_with_block(None), 2))
    for x in (10, 40, 70):  # motion: queued; the 2-frame queue drops its oldest twice
        outcomes.append(await pipeline.process(gate, frame_with_block(x), 3))
    ready[0] = False  # vision away: motion frames are dropped, not queued
    outcomes.append(await pipeline.process(gate, frame_with_block(100), 4))
    assert outcomes == ["queued", *["skipped"] * 3, "queued", "queued", "queued", "dropped"]
    counters = pipeline.counters
    assert (counters.captured, counters.skipped_no_motion, counters.dropped) == (8, 3, 3)
    assert pipeline.queue.qsize() == 2
    frame = pipeline.queue.get_nowait()
    assert frame.keyframe is False and frame.frame_id == 3  # the oldest ones went
    decoded = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == (240, 320, 3)
    assert pipeline.drop_queued() == 1 and counters.dropped == 4


def test_jpeg_encoding_round_trips():
    jpeg = encode_jpeg(frame_with_block(30), quality=90)
    assert jpeg[:2] == b"\xff\xd8"
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert abs(int(image[120, 50, 0]) - 255) < 10


def test_video_file_source_and_looping(tmp_path):
    path = tmp_path / "lane.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for x in range(0, 100, 20):
        writer.write(frame_with_block(x))
    writer.release()
    capture = open_frame_source(str(path))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 5
    looping = open_frame_source(str(path), loop=True)
    assert isinstance(looping, LoopingCapture)
    assert all(looping.read()[0] for _ in range(12))
    with pytest.raises(SourceUnavailable):
        open_frame_source(str(tmp_path / "missing.avi"))


def test_python_source_spec_builds_the_object():
    source = open_frame_source("python:tests.device.test_camera:SyntheticCamera")
    assert isinstance(source, SyntheticCamera)
    ok, frame = source.read()
    assert ok and frame.shape == (240, 320, 3)


async def test_vision_link_streams_config_then_frames_and_records_observations(tmp_path):
    vision = FakeVision()
    server = await start_fake_vision(vision)
    camera = SyntheticCamera()
    config = agent_config(
        tmp_path,
        vision=f"127.0.0.1:{server.port}",
        cameras=[_camera(keyframe_interval_s=0.5, max_fps=30)],
    )
    agent_server = await start_agent(config, frame_sources={"cam-1": camera})
    agent = agent_server.app.agent
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{agent_server.port}")
    try:
        await assert_eventually(lambda: vision.configs)
        stream = vision.configs[0]
        assert vision.first_messages[0] == "config"
        assert (stream.lane.store_id, stream.lane.lane_id, stream.camera_id) == (
            "store-7",
            "lane-3",
            "cam-1",
        )
        assert stream.zones[0].zone == common_pb2.LANE_ZONE_SCAN
        assert [(p.x, p.y) for p in stream.zones[0].points] == LEFT_HALF
        await assert_eventually(lambda: vision.frames)  # the first keyframe
        assert vision.frames[0].keyframe
        camera.moving = True
        await assert_eventually(lambda: any(not f.keyframe for f in vision.frames))
        camera.moving = False
        counters = agent.cameras["cam-1"].counters
        await assert_eventually(lambda: counters.skipped_no_motion > 5)
        # Each response carried a zone crossing: they are lane events in the outbox.
        rows = await agent.outbox.read_after(0, 10_000)
        crossings = [
            e
            for e in (events_pb2.LaneEvent.FromString(r.payload) for r in rows)
            if e.HasField("zone_crossing")
        ]
        assert crossings and crossings[0].zone_crossing.camera_id == "cam-1"
        assert crossings[0].source_device_id == "cam-1"
        stub = device_pb2_grpc.DeviceServiceStub(channel)
        status = await stub.GetDeviceStatus(device_pb2.GetDeviceStatusRequest(), timeout=5)
        (cam,) = status.cameras
        assert cam.camera_id == "cam-1" and cam.sent >= len(crossings)
        assert cam.captured >= cam.sent + cam.skipped_no_motion
        kinds = {p.device_id: p.kind for p in status.peripherals}
        assert kinds["cam-1"] == common_pb2.DEVICE_KIND_CAMERA
        assert kinds["vision:cam-1"] == common_pb2.DEVICE_KIND_VISION_LINK
    finally:
        await channel.close()
        await agent_server.stop()
        await server.stop()


async def test_what_vision_saw_is_stamped_when_the_frame_was_taken(tmp_path):
    # Vision answers each frame 0.4 s later: the crossing it reports happened when the
    # frame was captured, and gets that lane time (not the answer's arrival), so the
    # camera is not always behind the scanner and the scales.
    vision = FakeVision(delay_s=0.4)
    server = await start_fake_vision(vision)
    camera = SyntheticCamera()
    camera.moving = True
    config = agent_config(
        tmp_path, vision=f"127.0.0.1:{server.port}", cameras=[_camera(max_fps=10)]
    )
    agent_server = await start_agent(config, frame_sources={"cam-1": camera})
    agent = agent_server.app.agent
    try:

        async def crossings():
            rows = await agent.outbox.read_after(0, 10_000)
            events = [events_pb2.LaneEvent.FromString(r.payload) for r in rows]
            return [e for e in events if e.HasField("zone_crossing")]

        for _ in range(100):
            if len(await crossings()) >= 3:
                break
            await asyncio.sleep(0.05)
        captured = {f"t{f.frame_id}": f.captured_at.ToNanoseconds() for f in vision.frames}
        seen = await crossings()
        assert len(seen) >= 3
        for event in seen:
            assert event.lane_time.ToNanoseconds() == captured[event.zone_crossing.track_id]
    finally:
        await agent_server.stop()
        await server.stop()


async def test_when_vision_is_away_frames_are_dropped_and_the_outage_recorded(tmp_path):
    camera = SyntheticCamera()
    camera.moving = True
    config = agent_config(
        tmp_path,
        vision="127.0.0.1:1",  # nothing listens
        cameras=[_camera(max_fps=30)],
    )
    agent_server = await start_agent(config, frame_sources={"cam-1": camera})
    agent = agent_server.app.agent
    try:
        counters = agent.cameras["cam-1"].counters
        await assert_eventually(lambda: counters.dropped >= 10)
        assert counters.sent == 0
        assert agent.cameras["cam-1"].queue.qsize() == 0  # nothing queued without bound
        rows = await agent.outbox.read_after(0, 1000)
        health = [
            e.peripheral_health_changed
            for e in (events_pb2.LaneEvent.FromString(r.payload) for r in rows)
            if e.HasField("peripheral_health_changed")
        ]
        link = [h for h in health if h.kind == common_pb2.DEVICE_KIND_VISION_LINK]
        assert link and link[0].state == events_pb2.PERIPHERAL_STATE_DISCONNECTED
        assert link[0].device_id == "vision:cam-1"
        cam = [h for h in health if h.kind == common_pb2.DEVICE_KIND_CAMERA]
        assert cam[0].state == events_pb2.PERIPHERAL_STATE_CONNECTED
    finally:
        await agent_server.stop()


async def test_a_camera_that_fails_is_reported_and_retried(tmp_path):
    class Flaky:
        def __init__(self):
            self.calls = 0

        def read(self):
            self.calls += 1
            return (self.calls > 3), frame_with_block(None)

    flaky = Flaky()
    config = agent_config(tmp_path, vision="127.0.0.1:1", cameras=[_camera(max_fps=60)])
    agent_server = await start_agent(config, frame_sources={"cam-1": flaky})
    try:
        pipeline = agent_server.app.agent.cameras["cam-1"]
        await assert_eventually(lambda: pipeline.counters.captured > 3)
        rows = await agent_server.app.agent.outbox.read_after(0, 1000)
        states = [
            e.peripheral_health_changed.state
            for e in (events_pb2.LaneEvent.FromString(r.payload) for r in rows)
            if e.HasField("peripheral_health_changed")
            and e.peripheral_health_changed.device_id == "cam-1"
        ]
        assert states[:2] == [
            events_pb2.PERIPHERAL_STATE_DISCONNECTED,
            events_pb2.PERIPHERAL_STATE_CONNECTED,
        ]
    finally:
        await agent_server.stop()


async def test_capture_does_not_block_the_event_loop(tmp_path):
    """Reads, gating and encoding run in threads: the loop keeps ticking during capture."""

    class SlowCamera(SyntheticCamera):
        def read(self):
            import time

            time.sleep(0.3)  # a blocking driver call, far longer than any loop hiccup
            return super().read()

    config = agent_config(tmp_path, vision="127.0.0.1:1", cameras=[_camera(max_fps=100)])
    agent_server = await start_agent(config, frame_sources={"cam-1": SlowCamera()})
    try:
        loop = asyncio.get_running_loop()
        worst = 0.0
        pipeline = agent_server.app.agent.cameras["cam-1"]
        for _ in range(500):  # about 5 s at most
            if pipeline.counters.captured >= 2:
                break
            before = loop.time()
            await asyncio.sleep(0.01)
            worst = max(worst, loop.time() - before - 0.01)
        assert pipeline.counters.captured >= 2
        assert worst < 0.2  # a read on the loop would stall it for 0.3 s
    finally:
        await agent_server.stop()
