"""Evidence frames around alerts: a ring buffer per camera, face-blurred writes, retention purge.

Each camera keeps its last few seconds of JPEG frames in memory (sampled so that
``max_frames`` cover the before + after window). A lane command tied to an alert
starts one capture per alert id: after ``after_s`` the frames around the alert are
decoded, faces are blurred, and only then is anything written, to
``<dir>/<alert id>/<camera>-<n>.jpg`` with a ``manifest.json``. The folder appears
whole (written under a dot-name, then renamed). Folders older than the retention
period are deleted. Evidence never stops the lane: failures are counted and logged once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
from lanesight.device.config import DeviceConfig
from lanesight.device.privacy import FaceBlurrer

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
PURGE_INTERVAL_S = 3600.0
#: Captures waiting for their after-window at once; more alerts are skipped and counted.
MAX_PENDING_CAPTURES = 16
#: Alert ids remembered in memory (the folder on disk is the lasting record).
_SEEN_ALERTS = 10_000
#: A half-written folder (crash while writing) older than this is removed by the purge.
_STALE_STAGING_S = 3600.0
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class EvidenceSettings:
    """Where evidence goes, which frames it holds and how long it is kept."""

    directory: Path
    before_s: float = 10.0
    after_s: float = 5.0
    retention_days: float = 30.0
    max_frames: int = 45

    @classmethod
    def from_device(cls, device: DeviceConfig) -> EvidenceSettings:
        """The settings in the [device] section."""
        return cls(
            Path(device.evidence_dir),
            device.evidence_before_s,
            device.evidence_after_s,
            device.evidence_retention_days,
            device.evidence_max_frames,
        )

    @property
    def window_s(self) -> float:
        """Seconds of frames one alert covers (and each camera buffers)."""
        return self.before_s + self.after_s


@dataclass(frozen=True, slots=True)
class BufferedFrame:
    """One camera frame held for evidence (JPEG as captured; faces not yet blurred)."""

    captured_ns: int
    jpeg: bytes


class FrameRingBuffer:
    """A camera's recent frames, bounded by age (``window_s``) and count (``max_frames``).

    Frames are taken at most every ``window_s / max_frames`` seconds, so the count
    bound keeps the whole window. Used from the event loop only.
    """

    def __init__(self, window_s: float, max_frames: int) -> None:
        self.window_ns = int(window_s * _NS)
        self.interval_ns = self.window_ns // max(1, max_frames)
        self.frames: deque[BufferedFrame] = deque(maxlen=max_frames)
        self.errors = 0
        self._last_ns: int | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def wants(self, captured_ns: int) -> bool:
        """Whether a frame captured now should be kept (the sampling interval has passed)."""
        return self._last_ns is None or captured_ns - self._last_ns >= self.interval_ns

    def add(self, captured_ns: int, jpeg: bytes) -> None:
        """Keep a frame and forget frames older than the window."""
        self._last_ns = captured_ns
        self.frames.append(BufferedFrame(captured_ns, jpeg))
        while self.frames and captured_ns - self.frames[0].captured_ns > self.window_ns:
            self.frames.popleft()

    def between(self, start_ns: int, end_ns: int) -> list[BufferedFrame]:
        """The frames captured within [start_ns, end_ns], oldest first."""
        return [f for f in self.frames if start_ns <= f.captured_ns <= end_ns]


@dataclass
class EvidenceCounters:
    """What the evidence recorder did since the agent started."""

    alerts_written: int = 0
    frames_written: int = 0
    faces_blurred: int = 0
    alerts_skipped: int = 0
    errors: int = 0


@dataclass(frozen=True, slots=True)
class WrittenEvidence:
    """An evidence folder that was written."""

    path: Path
    frame_count: int
    faces_blurred: int


def folder_name(identifier: str) -> str:
    """A file-system-safe name for an alert or camera id (a digest when the id is unsafe)."""
    if _SAFE_NAME.fullmatch(identifier) and identifier not in (".", ".."):
        return identifier
    return "id-" + hashlib.sha256(identifier.encode()).hexdigest()[:20]


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / _NS, UTC).isoformat(timespec="milliseconds")


def write_alert_evidence(
    directory: Path,
    alert_id: str,
    frames_by_camera: dict[str, list[BufferedFrame]],
    blurrer: FaceBlurrer,
    details: dict[str, object],
    abandon: threading.Event | None = None,
) -> WrittenEvidence | None:
    """Blur faces in the frames and write them and a manifest; None if already written.

    Blocking (decode, detection, file I/O): runs in a worker thread. Frames are
    decoded and blurred in memory; nothing unblurred reaches the disk. When ``abandon``
    is set (the agent is stopping and could wait no longer) it stops between frames and
    returns None, leaving only the staging folder, which the next attempt clears.
    """
    name = folder_name(alert_id)
    final = directory / name
    if final.exists():
        return None
    staging = directory / f".{name}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    entries: list[dict[str, object]] = []
    cameras: dict[str, dict[str, int]] = {}
    for camera_id in sorted(frames_by_camera):
        written = faces_in_camera = 0
        for frame in frames_by_camera[camera_id]:
            if abandon is not None and abandon.is_set():
                return None
            image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                continue  # a damaged frame is left out rather than stored unchecked
            blurred, faces = blurrer.blur_faces(image)
            if faces:
                ok, encoded = cv2.imencode(".jpg", blurred, [cv2.IMWRITE_JPEG_QUALITY, 85])
                if not ok:
                    continue
                data = encoded.tobytes()
            else:
                data = frame.jpeg  # nothing to hide: keep the frame as captured
            written += 1
            faces_in_camera += faces
            file_name = f"{folder_name(camera_id)}-{written}.jpg"
            (staging / file_name).write_bytes(data)
            entries.append(
                {
                    "file": file_name,
                    "camera_id": camera_id,
                    "captured_at": _iso(frame.captured_ns),
                    "faces_blurred": faces,
                }
            )
        cameras[camera_id] = {"frame_count": written, "faces_blurred": faces_in_camera}
    faces_total = sum(c["faces_blurred"] for c in cameras.values())
    manifest = {
        "alert_id": alert_id,
        **details,
        "written_at": _iso(time.time_ns()),
        "frame_count": len(entries),
        "faces_blurred": faces_total,
        "face_blur": "OpenCV Haar cascades (frontal, profile); pixelated and blurred",
        "cameras": cameras,
        "frames": entries,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    try:
        os.rename(staging, final)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if final.exists():
            return None  # written by someone else meanwhile
        raise
    return WrittenEvidence(final, len(entries), faces_total)


@dataclass(frozen=True, slots=True)
class StoredFrame:
    """One frame of a written evidence folder, as read back."""

    camera_id: str
    captured_ns: int
    jpeg: bytes
    faces_blurred: int


def read_alert_evidence(
    directory: Path, alert_id: str, max_bytes: int
) -> tuple[list[StoredFrame], int] | None:
    """The frames written for an alert, oldest first, and how many were left out to stay
    under max_bytes; None when no folder was written for it (yet).

    Only complete folders are read (they appear whole, renamed from a staging name);
    a frame whose file is missing or unreadable is left out and counted.
    """
    folder = directory / folder_name(alert_id)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("alert_id") != alert_id:
        return None
    frames: list[StoredFrame] = []
    left_out = 0
    size = 0
    entries = sorted(manifest.get("frames", []), key=lambda e: str(e.get("captured_at", "")))
    for entry in entries:
        try:
            data = (folder / folder_name(str(entry["file"]))).read_bytes()
            captured = datetime.fromisoformat(str(entry["captured_at"]))
        except (OSError, KeyError, ValueError):
            left_out += 1
            continue
        if size + len(data) > max_bytes:
            left_out += 1
            continue
        size += len(data)
        frames.append(
            StoredFrame(
                str(entry.get("camera_id", "")),
                int(captured.timestamp() * _NS),
                data,
                int(entry.get("faces_blurred", 0)),
            )
        )
    return frames, left_out


def purge_expired(directory: Path, retention_s: float, now_s: float | None = None) -> int:
    """Delete evidence folders last modified more than retention_s ago; returns how many.

    Only folders this module writes are touched (those holding a manifest, and
    half-written ones left by a crash, which go after an hour), so a mistyped
    evidence_dir cannot delete anything else. Links and files are left alone.
    """
    if not directory.is_dir():
        return 0
    now_s = time.time() if now_s is None else now_s
    removed = 0
    for entry in os.scandir(directory):
        if not entry.is_dir(follow_symlinks=False):
            continue
        staging = entry.name.startswith(".") and entry.name.endswith(".partial")
        if not staging and not os.path.isfile(os.path.join(entry.path, MANIFEST)):
            continue
        limit = min(retention_s, _STALE_STAGING_S) if staging else retention_s
        if now_s - entry.stat(follow_symlinks=False).st_mtime > limit:
            shutil.rmtree(entry.path)
            removed += 1
    return removed


class EvidenceRecorder:
    """Holds each camera's ring buffer and writes evidence once per alert."""

    def __init__(self, settings: EvidenceSettings, store_id: str, lane_id: str) -> None:
        self.settings = settings
        self.store_id = store_id
        self.lane_id = lane_id
        self.buffers: dict[str, FrameRingBuffer] = {}
        self.counters = EvidenceCounters()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._pending: set[asyncio.Task] = set()
        self._closing = asyncio.Event()
        self._logged: set[str] = set()
        # One thread: evidence is written one alert at a time and never starves the lane.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evidence")
        # Set when close() has waited long enough: a write in progress stops between frames.
        self._abandon = threading.Event()
        self._blurrer: FaceBlurrer | None = None

    def buffer_for(self, camera_id: str) -> FrameRingBuffer:
        """The ring buffer a camera pipeline fills."""
        if camera_id not in self.buffers:
            self.buffers[camera_id] = FrameRingBuffer(
                self.settings.window_s, self.settings.max_frames
            )
        return self.buffers[camera_id]

    def _failed(self, what: str, exc: BaseException) -> None:
        self.counters.errors += 1
        if what not in self._logged:  # once per kind: a full disk would log every alert
            self._logged.add(what)
            log.warning("evidence: %s failed: %r (further failures only counted)", what, exc)

    def note_alert(self, alert_id: str, issued_at_ns: int | None = None) -> bool:
        """Start capturing evidence for an alert (at most once); True if a capture started."""
        if not alert_id or alert_id in self._seen or self._closing.is_set():
            return False
        if not self.buffers:
            return False  # no camera on this lane: nothing to keep
        if len(self._pending) >= MAX_PENDING_CAPTURES:
            self.counters.alerts_skipped += 1
            self._failed("capture", RuntimeError("too many alerts waiting for evidence"))
            return False
        self._seen[alert_id] = None
        if len(self._seen) > _SEEN_ALERTS:
            self._seen.popitem(last=False)
        now_ns = time.time_ns()
        before_ns = int(self.settings.before_s * _NS)
        # The alert's own time when it is plausible; clocks of fusion and lane may differ.
        moment_ns = now_ns if issued_at_ns is None else issued_at_ns
        moment_ns = min(now_ns, max(now_ns - before_ns, moment_ns))
        task = asyncio.create_task(self.capture(alert_id, moment_ns), name=f"evidence-{alert_id}")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return True

    async def capture(self, alert_id: str, moment_ns: int) -> WrittenEvidence | None:
        """Wait for the after-window, then write the frames around moment_ns."""
        settings = self.settings
        end_ns = moment_ns + int(settings.after_s * _NS)
        wait_s = max(0.0, (end_ns - time.time_ns()) / _NS)
        if wait_s > 0:
            # On shutdown, write what there is now instead of losing the evidence.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), wait_s)
        start_ns = moment_ns - int(settings.before_s * _NS)
        frames = {camera: buf.between(start_ns, end_ns) for camera, buf in self.buffers.items()}
        if not any(frames.values()):
            self.counters.alerts_skipped += 1
            log.info("evidence for alert %s: no camera frames around it", alert_id)
            return None
        details: dict[str, object] = {
            "store_id": self.store_id,
            "lane_id": self.lane_id,
            "alert_time": _iso(moment_ns),
            "window_start": _iso(start_ns),
            "window_end": _iso(end_ns),
        }
        try:
            written = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._write, alert_id, frames, details
            )
        except Exception as exc:  # disk full, permissions: the lane goes on
            self._failed("write", exc)
            return None
        if written is None:
            return None
        self.counters.alerts_written += 1
        self.counters.frames_written += written.frame_count
        self.counters.faces_blurred += written.faces_blurred
        log.info(
            "evidence for alert %s: %d frames, %d faces blurred",
            alert_id,
            written.frame_count,
            written.faces_blurred,
        )
        return written

    def _write(
        self, alert_id: str, frames: dict[str, list[BufferedFrame]], details: dict[str, object]
    ) -> WrittenEvidence | None:
        if self._blurrer is None:
            self._blurrer = FaceBlurrer()  # loaded once, in the worker thread
        return write_alert_evidence(
            self.settings.directory, alert_id, frames, self._blurrer, details, self._abandon
        )

    async def purge(self) -> int:
        """Delete evidence older than the retention period (in the worker thread)."""
        retention_s = self.settings.retention_days * 86400.0
        try:
            removed = await asyncio.get_running_loop().run_in_executor(
                self._executor, purge_expired, self.settings.directory, retention_s
            )
        except Exception as exc:
            self._failed("purge", exc)
            return 0
        if removed:
            log.info("evidence: purged %d folders past retention", removed)
        return removed

    async def purge_periodically(self, interval_s: float = PURGE_INTERVAL_S) -> None:
        """Purge now and then every interval_s, until cancelled."""
        while True:
            await self.purge()
            await asyncio.sleep(interval_s)

    def status(self) -> dict[str, object]:
        """Counters and buffer sizes, for logs and diagnostics."""
        return {
            **asdict(self.counters),
            "pending": len(self._pending),
            "buffered": {camera: len(buf) for camera, buf in self.buffers.items()},
        }

    async def close(self, timeout_s: float = 5.0) -> None:
        """Write pending captures now (waiting at most timeout_s), then stop; idempotent."""
        if self._closing.is_set():
            return
        self._closing.set()
        pending = list(self._pending)
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        # A write still blurring frames in the worker would keep the process from exiting.
        self._abandon.set()
        self._executor.shutdown(wait=False, cancel_futures=True)
