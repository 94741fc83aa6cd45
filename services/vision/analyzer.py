"""One lane camera's frame-by-frame work (CPU, run in a worker thread): decode, health, tracking, crops, barcodes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import cv2
import numpy as np
from lanesight.vision.barcodes import codes_conflict, decode_barcodes
from lanesight.vision.config import VisionConfig
from lanesight.vision.health import CameraHealthMonitor
from lanesight.vision.observations import BarcodeDecoded, Health, Observation
from lanesight.vision.tracker import Track, ZoneTracker
from lanesight.vision.zones import Zone, ZoneMap

# Health verdicts under which the picture says nothing about items.
_UNTRUSTED = (Health.DARK, Health.BLOCKED, Health.FROZEN)


class FrameDecodeError(ValueError):
    """The frame's bytes are not a decodable image."""


@dataclass(frozen=True)
class CropRequest:
    """A tracked item's crop to classify, and where the item was."""

    track_id: str
    zone: Zone | None
    crop_bgr: np.ndarray
    # The item had settled (its box stood still) when the crop was taken.
    settled: bool = False


@dataclass
class FrameAnalysis:
    """What one frame produced: observations now, crops to classify later."""

    observations: list[Observation] = field(default_factory=list)
    crops: list[CropRequest] = field(default_factory=list)
    health: Health | None = None


def decode_image(data: bytes) -> np.ndarray:
    """Decode JPEG (or PNG) bytes to a BGR image; FrameDecodeError when they are not one."""
    if not data:
        raise FrameDecodeError("empty")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise FrameDecodeError(f"{len(data)} bytes that do not decode as an image")
    return image


class LaneAnalyzer:
    """Per-stream state: zones, tracker and health monitor; ``analyze`` is called one frame at a time."""

    def __init__(self, zones: ZoneMap, config: VisionConfig) -> None:
        self.config = config
        self.tracker = ZoneTracker(zones, config.tracker)
        self.health = CameraHealthMonitor(config.health)
        self._frame_size: tuple[int, int] | None = None
        self._frames = 0

    def analyze_jpeg(
        self, jpeg: bytes, now_s: float, recognise_again: Iterable[str] = ()
    ) -> FrameAnalysis:
        """Decode and analyse one frame (raises FrameDecodeError)."""
        return self.analyze(decode_image(jpeg), now_s, recognise_again)

    def analyze(
        self, frame_bgr: np.ndarray, now_s: float, recognise_again: Iterable[str] = ()
    ) -> FrameAnalysis:
        """Analyse one decoded frame captured at ``now_s`` (seconds, any epoch).

        ``recognise_again`` names tracks whose last crop could not be classified (overload);
        they get a new crop from this frame. A track is cropped for classification when it
        is confirmed, when it enters a zone, when it settles, and every
        ``rest_recognise_every_frames`` frames while it rests (at most ``zone_crops_max``
        crops per zone visit).
        """
        frame_bgr = self._consistent_size(frame_bgr)
        self._frames += 1
        result = FrameAnalysis()
        items_in_view = [(t.box.x0, t.box.y0, t.box.x1, t.box.y1) for t in self.tracker.tracks]
        reading, change = self.health.update(frame_bgr, now_s, items_in_view)
        result.health = reading.health
        if change is not None:
            result.observations.append(change)
        if reading.health in _UNTRUSTED:
            self.tracker.hold()
            return result
        update = self.tracker.update(self.tracker.small_grey(frame_bgr))
        result.observations.extend(update.crossings)
        result.observations.extend(update.counts)

        wanted = {track.track_id for track in update.confirmed + update.entered_zone}
        wanted.update(recognise_again)
        height, width = frame_bgr.shape[:2]
        for track in self.tracker.tracks:
            if not track.confirmed or track.missed:
                continue
            recognise = self._wants_crop(track, track.track_id in wanted)
            look_for_barcode = (
                recognise or track.frames_seen % self.config.barcode_every_frames == 0
            )
            if not (recognise or look_for_barcode):
                continue
            crop = self._crop(frame_bgr, track, width, height)
            if crop is None:
                continue
            if recognise:
                track.zone_crops += 1
                settled = track.still_frames >= self.config.tracker.settle_frames
                result.crops.append(CropRequest(track.track_id, track.zone, crop, settled))
            if look_for_barcode:
                result.observations.extend(self._barcodes(track, crop))
        return result

    def _consistent_size(self, frame_bgr: np.ndarray) -> np.ndarray:
        size = (frame_bgr.shape[1], frame_bgr.shape[0])
        if self._frame_size is None:
            self._frame_size = size
        elif size != self._frame_size:
            # The background model and the health reference need one size per stream.
            frame_bgr = cv2.resize(frame_bgr, self._frame_size, interpolation=cv2.INTER_AREA)
        return frame_bgr

    def _wants_crop(self, track: Track, asked: bool) -> bool:
        """Whether to classify the track in this frame (``asked``: confirmed, re-zoned, retried)."""
        if track.crop_zone != track.zone:
            track.crop_zone, track.zone_crops = track.zone, 0
        if asked:
            return True
        settle = self.config.tracker.settle_frames
        if track.still_frames < settle or track.zone_crops >= self.config.zone_crops_max:
            return False
        return (track.still_frames - settle) % self.config.rest_recognise_every_frames == 0

    def _crop(self, frame_bgr: np.ndarray, track: Track, width: int, height: int):
        box = track.item_box or track.box
        x0, y0, x1, y1 = box.to_pixels(width, height, self.config.crop_pad_fraction)
        if min(x1 - x0, y1 - y0) < self.config.min_crop_px:
            return None
        return np.ascontiguousarray(frame_bgr[y0:y1, x0:x1])

    def _barcodes(self, track: Track, crop: np.ndarray) -> list[BarcodeDecoded]:
        """Codes read in this look that enough looks at the track now agree on."""
        found = []
        reads = track.barcode_reads
        for code in decode_barcodes(crop, effort="fast"):
            reads[code.data] = reads.get(code.data, 0) + 1
            if code.data in track.barcodes:
                continue
            # Confirmed: read often enough, and more than twice as often as any conflicting
            # code (a misread of it, or it of them) on this track.
            if reads[code.data] < self.config.barcode_confirm_reads or any(
                other != code.data
                and reads[code.data] <= 2 * count
                and codes_conflict(code.data, other)
                for other, count in reads.items()
            ):
                continue
            track.barcodes.add(code.data)
            found.append(BarcodeDecoded(track.track_id, code.data, code.symbology, code.gtin))
        return found
