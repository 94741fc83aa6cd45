"""Alert evidence: ring buffers, face-blurred writes once per alert, retention, the agent end to end."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import cv2
import grpc
import numpy as np
from lanesight.device.camera.motion import MotionGate, encode_jpeg
from lanesight.device.camera.pipeline import CameraPipeline
from lanesight.device.config import CameraConfig
from lanesight.device.evidence import (
    MANIFEST,
    EvidenceRecorder,
    EvidenceSettings,
    FrameRingBuffer,
    folder_name,
    purge_expired,
)
from lanesight.device.privacy import FaceBlurrer
from lanesight.v1 import alerts_pb2, device_pb2, device_pb2_grpc
from skimage import data as skimage_data

from tests.conftest import SHARED_DATA, assert_eventually
from tests.device.conftest import agent_config, start_agent

NS = 1_000_000_000
GROCERY = SHARED_DATA / "grocery" / "dataset"


def astronaut_bgr() -> np.ndarray:
    """A real portrait with one face (bundled in the scikit-image wheel)."""
    return cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)


def grocery_bgr() -> np.ndarray:
    image = cv2.imread(str(GROCERY / "train/Fruit/Banana/Banana_001.jpg"))
    assert image is not None
    return image


class AstronautCamera:
    """A python frame source (python:tests.device.test_evidence:AstronautCamera)."""

    def __init__(self) -> None:
        self.frame = astronaut_bgr()

    def read(self):
        return True, self.frame.copy()


def _sharpness(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())


def assert_face_destroyed(path: Path) -> None:
    """The stored frame's face (where the original has one) has lost its detail."""
    original = astronaut_bgr()
    (face,) = FaceBlurrer().detect(original)
    stored = cv2.imread(str(path))
    assert stored is not None and stored.shape == original.shape
    inside = np.s_[face.y + 3 : face.y + face.height - 3, face.x + 3 : face.x + face.width - 3]
    assert _sharpness(original[inside]) > 300
    assert _sharpness(stored[inside]) < _sharpness(original[inside]) / 20


# -- the ring buffer --------------------------------------------------------------------


def test_ring_buffer_samples_and_is_bounded_by_count_and_age():
    buffer = FrameRingBuffer(window_s=1.0, max_frames=5)  # a frame every 0.2 s at most
    assert buffer.interval_ns == NS // 5
    kept = 0
    for i in range(100):  # 100 frames at 50 fps = 2 s
        captured = i * NS // 50
        if buffer.wants(captured):
            buffer.add(captured, b"jpeg%d" % i)
            kept += 1
    assert kept == 10  # sampled at 5 per second
    assert len(buffer) == 5  # count bound
    times = [f.captured_ns for f in buffer.frames]
    assert times[-1] - times[0] <= NS  # age bound
    # Age evicts before the count does when frames are sparse.
    sparse = FrameRingBuffer(window_s=1.0, max_frames=50)
    for second in range(5):
        sparse.add(second * NS, b"x")
    assert [f.captured_ns for f in sparse.frames] == [3 * NS, 4 * NS]
    assert [f.captured_ns for f in sparse.between(3 * NS, 3 * NS)] == [3 * NS]


async def test_the_pipeline_keeps_evidence_frames_reusing_the_vision_jpeg():
    camera = CameraConfig(id="cam-1", source="python:unused:unused", keyframe_interval_s=3600)
    pipeline = CameraPipeline(camera, lambda reading: None)
    pipeline.evidence = FrameRingBuffer(window_s=1.0, max_frames=1000)
    gate = MotionGate()
    ready = [True]
    pipeline.link_ready = lambda: ready[0]
    frame = grocery_bgr()
    assert await pipeline.process(gate, frame, 1 * NS) == "queued"  # first frame: keyframe
    queued = pipeline.queue.get_nowait()
    assert pipeline.evidence.frames[-1].jpeg is queued.jpeg  # no second encoding
    assert await pipeline.process(gate, frame, 2 * NS) == "skipped"  # still scene
    ready[0] = False
    assert await pipeline.process(gate, frame[::-1].copy(), 3 * NS) == "dropped"  # vision away
    # Frames vision never got are still kept (encoded for evidence), within the window.
    assert [f.captured_ns for f in pipeline.evidence.frames] == [2 * NS, 3 * NS]
    assert pipeline.evidence.frames[-1].jpeg[:2] == b"\xff\xd8"
    pipeline.close()


# -- writing evidence -------------------------------------------------------------------


def _settings(tmp_path: Path, **overrides) -> EvidenceSettings:
    values = {
        "directory": tmp_path / "evidence",
        "before_s": 5.0,
        "after_s": 0.0,
        "max_frames": 20,
    }
    values.update(overrides)
    return EvidenceSettings(**values)


def _fill(recorder: EvidenceRecorder, camera_id: str, image: np.ndarray, count: int) -> int:
    """Buffer count frames ending now; returns the newest capture time."""
    buffer = recorder.buffer_for(camera_id)
    jpeg = encode_jpeg(image, 90)
    now = time.time_ns()
    for i in range(count):
        buffer.add(now - (count - 1 - i) * NS // 2, jpeg)
    return now


async def test_an_alert_writes_blurred_frames_and_a_manifest_once(tmp_path):
    recorder = EvidenceRecorder(_settings(tmp_path), "store-7", "lane-3")
    _fill(recorder, "cam-1", astronaut_bgr(), 3)
    _fill(recorder, "cam-2", grocery_bgr(), 2)
    assert recorder.note_alert("alert-42", time.time_ns())
    assert not recorder.note_alert("alert-42", time.time_ns())  # at most once per alert
    folder = tmp_path / "evidence" / "alert-42"
    await assert_eventually(lambda: (folder / MANIFEST).is_file(), timeout_s=30)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["alert_id"] == "alert-42"
    assert (manifest["store_id"], manifest["lane_id"]) == ("store-7", "lane-3")
    assert manifest["frame_count"] == 5 and manifest["faces_blurred"] == 3
    assert manifest["cameras"] == {
        "cam-1": {"frame_count": 3, "faces_blurred": 3},
        "cam-2": {"frame_count": 2, "faces_blurred": 0},
    }
    assert manifest["window_start"] < manifest["alert_time"] <= manifest["window_end"]
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["cam-1-1.jpg", "cam-1-2.jpg", "cam-1-3.jpg", "cam-2-1.jpg", "cam-2-2.jpg"] + [
        MANIFEST
    ]
    for n in (1, 2, 3):
        assert_face_destroyed(folder / f"cam-1-{n}.jpg")
    assert not list((tmp_path / "evidence").glob(".*"))  # no staging left behind
    assert recorder.counters.alerts_written == 1 and recorder.counters.faces_blurred == 3
    # A restarted agent (empty memory) sees the folder and writes nothing again.
    stamp = (folder / MANIFEST).stat().st_mtime_ns
    again = EvidenceRecorder(_settings(tmp_path), "store-7", "lane-3")
    _fill(again, "cam-1", astronaut_bgr(), 1)
    assert await again.capture("alert-42", time.time_ns()) is None
    assert (folder / MANIFEST).stat().st_mtime_ns == stamp
    assert again.counters.alerts_written == 0
    await recorder.close()
    await again.close()


async def test_no_frames_means_no_evidence_folder(tmp_path):
    recorder = EvidenceRecorder(_settings(tmp_path), "s", "l")
    assert not recorder.note_alert("a-1")  # no camera on the lane
    recorder.buffer_for("cam-1")  # a camera that has delivered nothing yet
    assert await recorder.capture("a-2", time.time_ns()) is None
    assert not (tmp_path / "evidence").exists()
    assert recorder.counters.alerts_skipped == 1
    await recorder.close()


async def test_unsafe_alert_ids_cannot_leave_the_evidence_folder(tmp_path):
    recorder = EvidenceRecorder(_settings(tmp_path), "s", "l")
    _fill(recorder, "cam/1", grocery_bgr(), 1)
    written = await recorder.capture("../../etc/passwd", time.time_ns())
    assert written is not None
    assert written.path.parent == tmp_path / "evidence"
    assert written.path.name == folder_name("../../etc/passwd") and written.path.name[:3] == "id-"
    assert json.loads((written.path / MANIFEST).read_text())["alert_id"] == "../../etc/passwd"
    assert [p.name for p in written.path.glob("*.jpg")] == [f"{folder_name('cam/1')}-1.jpg"]
    await recorder.close()


async def test_write_failures_are_counted_and_logged_once(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the evidence folder should be")
    recorder = EvidenceRecorder(_settings(tmp_path, directory=blocker), "s", "l")
    _fill(recorder, "cam-1", grocery_bgr(), 1)
    with caplog.at_level(logging.WARNING, logger="lanesight.device.evidence"):
        assert await recorder.capture("a-1", time.time_ns()) is None
        assert await recorder.capture("a-2", time.time_ns()) is None
    assert recorder.counters.errors == 2 and recorder.counters.alerts_written == 0
    assert len([r for r in caplog.records if "evidence" in r.getMessage()]) == 1
    await recorder.close()


async def test_close_writes_pending_evidence_without_waiting_for_the_after_window(tmp_path):
    recorder = EvidenceRecorder(_settings(tmp_path, after_s=300.0), "s", "l")
    _fill(recorder, "cam-1", grocery_bgr(), 2)
    assert recorder.note_alert("a-9")
    started = time.monotonic()
    await recorder.close(timeout_s=30)
    assert time.monotonic() - started < 30
    assert (tmp_path / "evidence" / "a-9" / MANIFEST).is_file()
    assert not recorder.note_alert("a-10")  # closed: no new captures


# -- retention --------------------------------------------------------------------------


def _evidence_folder(root: Path, name: str, age_days: float) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / MANIFEST).write_text("{}")
    (folder / "cam-1-1.jpg").write_bytes(b"\xff\xd8")
    stamp = time.time() - age_days * 86400
    os.utime(folder, (stamp, stamp))
    return folder


async def test_purge_removes_only_expired_evidence_folders(tmp_path):
    root = tmp_path / "evidence"
    old = _evidence_folder(root, "alert-old", 31)
    fresh = _evidence_folder(root, "alert-new", 2)
    foreign = root / "not-evidence"  # no manifest: not ours, never deleted
    foreign.mkdir()
    stamp = time.time() - 90 * 86400
    os.utime(foreign, (stamp, stamp))
    staging = root / ".alert-x.partial"  # a crash mid-write, two hours ago
    staging.mkdir()
    os.utime(staging, (time.time() - 7200, time.time() - 7200))
    recorder = EvidenceRecorder(
        EvidenceSettings(directory=root, retention_days=30.0), "store-7", "lane-3"
    )
    assert await recorder.purge() == 2
    assert not old.exists() and not staging.exists()
    assert fresh.is_dir() and foreign.is_dir()
    assert purge_expired(tmp_path / "missing", 1.0) == 0
    await recorder.close()


# -- through the real agent -------------------------------------------------------------


async def test_an_alert_command_over_grpc_leaves_blurred_evidence(tmp_path):
    evidence_dir = tmp_path / "evidence"
    expired = _evidence_folder(evidence_dir, "alert-expired", 10)
    camera = CameraConfig(
        id="cam-1",
        source="python:tests.device.test_evidence:AstronautCamera",
        max_fps=10,
        keyframe_interval_s=3600,
    )
    config = agent_config(
        tmp_path,
        vision_link=True,  # vision is unreachable: frames are dropped, evidence still kept
        cameras=[camera],
        evidence_dir=str(evidence_dir),
        evidence_before_s=2.0,
        evidence_after_s=0.3,
        evidence_max_frames=6,
        evidence_retention_days=7.0,
    )
    running = await start_agent(config)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        agent = running.app.agent
        await assert_eventually(lambda: not expired.exists())  # purged at start
        await assert_eventually(lambda: len(agent.evidence.buffers["cam-1"]) >= 2)
        stub = device_pb2_grpc.DeviceServiceStub(channel)
        plain = alerts_pb2.LaneCommand(command_id="c-1", lane_id="lane-3")
        plain.prompt.message = "please rescan"
        reply = await stub.ExecuteLaneCommand(
            device_pb2.ExecuteLaneCommandRequest(command=plain), timeout=5
        )
        assert reply.done
        command = alerts_pb2.LaneCommand(command_id="c-2", lane_id="lane-3", alert_id="A-17")
        command.prompt.message = "attendant on the way"
        command.issued_at.FromNanoseconds(time.time_ns())
        reply = await stub.ExecuteLaneCommand(
            device_pb2.ExecuteLaneCommandRequest(command=command), timeout=5
        )
        assert reply.done
        manifest_path = evidence_dir / "A-17" / MANIFEST
        await assert_eventually(manifest_path.is_file, timeout_s=30)
        manifest = json.loads(manifest_path.read_text())
        assert manifest["lane_id"] == "lane-3" and manifest["store_id"] == "store-7"
        assert 2 <= manifest["frame_count"] <= 6
        assert manifest["faces_blurred"] == manifest["frame_count"]
        assert_face_destroyed(evidence_dir / "A-17" / "cam-1-1.jpg")
        # A second command of the same alert writes nothing new; the plain one wrote nothing.
        follow_up = alerts_pb2.LaneCommand(command_id="c-3", lane_id="lane-3", alert_id="A-17")
        follow_up.print_audit_slip.lines.append("check basket")
        await stub.ExecuteLaneCommand(
            device_pb2.ExecuteLaneCommandRequest(command=follow_up), timeout=5
        )
        assert sorted(p.name for p in evidence_dir.iterdir()) == ["A-17"]
        assert agent.evidence.counters.alerts_written == 1
        assert agent.evidence.status()["pending"] == 0
    finally:
        await channel.close()
        await running.stop()
