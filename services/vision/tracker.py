"""Item tracking: background subtraction and contours, IoU/centroid matching, zone crossings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from lanesight.vision.config import TrackerConfig
from lanesight.vision.observations import Direction, ZoneCountChanged, ZoneCrossingSeen
from lanesight.vision.zones import Zone, ZoneMap


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in normalised coordinates (0..1 from the top left)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    @property
    def area(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)

    def iou(self, other: Box) -> float:
        """Intersection over union with another box."""
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def to_pixels(self, width: int, height: int, pad_fraction: float = 0.0) -> tuple[int, ...]:
        """(x0, y0, x1, y1) in pixels of a width×height image, padded and clipped."""
        pad_x = (self.x1 - self.x0) * pad_fraction
        pad_y = (self.y1 - self.y0) * pad_fraction
        return (
            max(0, round((self.x0 - pad_x) * width)),
            max(0, round((self.y0 - pad_y) * height)),
            min(width, round((self.x1 + pad_x) * width)),
            min(height, round((self.y1 + pad_y) * height)),
        )


@dataclass(frozen=True)
class Detection:
    """One foreground blob: ``box`` (dilated, for matching) and ``item`` (the tight box, for crops)."""

    box: Box
    item: Box


class MotionDetector:
    """Foreground blobs from a background subtractor (MOG2 or KNN) on a small grey frame."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self._subtractor = self._new_subtractor()
        self._learned_frames = 0
        self._background_sample: np.ndarray | None = None
        self._frames_since_sample = 0
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))

    def _new_subtractor(self) -> cv2.BackgroundSubtractor:
        config = self.config
        if config.subtractor == "knn":
            return cv2.createBackgroundSubtractorKNN(
                history=config.history_frames, detectShadows=False
            )
        subtractor = cv2.createBackgroundSubtractorMOG2(
            history=config.history_frames,
            varThreshold=config.var_threshold,
            detectShadows=False,
        )
        # A resting item becomes background only once it outweighs the old background
        # (about ln 2 / learning_rate frames), and the counter shows again at once
        # when it is taken away.
        subtractor.setBackgroundRatio(0.5)
        return subtractor

    def relearn(self) -> None:
        """Learn the background again quickly, after a lighting or camera change."""
        self._learned_frames = 0
        self._background_sample = None

    def _match_brightness(self, grey: np.ndarray) -> np.ndarray:
        """Undo a global lighting change: scale by the median ratio to the background."""
        if self._background_sample is None or self._frames_since_sample >= 10:
            # The background changes slowly: a fresh sample every 10 frames is enough.
            background = self._subtractor.getBackgroundImage()
            if background is None or background.shape != grey.shape:
                return grey
            self._background_sample = background[::4, ::4].astype(np.float32)
            self._frames_since_sample = 0
        self._frames_since_sample += 1
        reference = self._background_sample
        sample = grey[::4, ::4].astype(np.float32)
        valid = reference > 16
        if valid.sum() < sample.size // 4:
            return grey
        gain = float(np.median(sample[valid] / reference[valid]))
        if abs(gain - 1.0) < 0.04 or gain <= 0.05:
            return grey
        return cv2.convertScaleAbs(grey, alpha=1.0 / gain)

    def detect(self, grey: np.ndarray) -> list[Detection] | None:
        """Foreground blobs in this frame; None while learning or when the whole scene changed."""
        config = self.config
        if self._learned_frames < config.warmup_frames:
            rate = 1.0 / (self._learned_frames + 1)
            self._subtractor.apply(grey, learningRate=rate)
            self._learned_frames += 1
            return None
        grey = self._match_brightness(grey)
        mask = self._subtractor.apply(grey, learningRate=config.learning_rate)
        foreground = cv2.countNonZero(mask) / mask.size
        if foreground > config.max_foreground_fraction:
            self.relearn()
            return None
        opened = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel)
        # Dilation joins an item's pieces into one blob, but grows its box by a few pixels
        # on every side; the item's own box comes from the mask before dilation.
        mask = cv2.dilate(opened, self._kernel, iterations=2)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        height, width = mask.shape
        min_area = config.min_area_fraction * width * height
        detections = []
        for contour in contours:
            if cv2.contourArea(contour) < min_area:
                continue
            x, y, w, h = cv2.boundingRect(contour)
            box = Box(x / width, y / height, (x + w) / width, (y + h) / height)
            ix, iy, iw, ih = cv2.boundingRect(opened[y : y + h, x : x + w])
            if iw and ih:
                item = Box(
                    (x + ix) / width,
                    (y + iy) / height,
                    (x + ix + iw) / width,
                    (y + iy + ih) / height,
                )
            else:
                item = box
            detections.append(Detection(box, item))
        return detections


@dataclass
class Track:
    """One tracked item on a lane stream."""

    track_id: str
    box: Box
    hits: int = 1
    missed: int = 0
    confirmed: bool = False
    # The zone the track is reported in; changes after zone_confirm_frames.
    zone: Zone | None = None
    candidate_zone: Zone | None = None
    candidate_frames: int = 0
    frames_seen: int = 0
    barcodes: set[str] = field(default_factory=set)
    # Reads of each code so far (a code is reported once enough looks agree on it).
    barcode_reads: dict[str, int] = field(default_factory=dict)
    # The item's own box (undilated mask), which crops are cut from.
    item_box: Box | None = None
    # Frames in a row in which the item's box stayed put (IoU >= settle_iou_min).
    still_frames: int = 0
    # Crops classified in the current zone visit, and which zone that is (the analyzer's).
    crop_zone: Zone | None = None
    zone_crops: int = 0


@dataclass
class TrackUpdate:
    """What one frame changed: crossings in order, count changes, new and re-zoned tracks."""

    crossings: list[ZoneCrossingSeen] = field(default_factory=list)
    counts: list[ZoneCountChanged] = field(default_factory=list)
    # Tracks confirmed this frame, and tracks that entered a zone this frame.
    confirmed: list[Track] = field(default_factory=list)
    entered_zone: list[Track] = field(default_factory=list)


class ZoneTracker:
    """Tracks items across frames and reports zone entries, exits and per-zone counts."""

    def __init__(self, zones: ZoneMap, config: TrackerConfig) -> None:
        self.zones = zones
        self.config = config
        self.detector = MotionDetector(config)
        self.tracks: list[Track] = []
        self._next_id = 1
        self._counts: dict[Zone, int] = dict.fromkeys(zones.zones, 0)

    def small_grey(self, frame_bgr: np.ndarray) -> np.ndarray:
        """The frame scaled to the processing width, grey and slightly blurred."""
        height, width = frame_bgr.shape[:2]
        target_width = min(self.config.process_width_px, width)
        target_height = max(1, round(height * target_width / width))
        small = cv2.resize(frame_bgr, (target_width, target_height), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(grey, (5, 5), 0)

    def update(self, grey: np.ndarray) -> TrackUpdate:
        """Advance the tracker by one processed frame (from ``small_grey``)."""
        detections = self.detector.detect(grey)
        update = TrackUpdate()
        if detections is None:
            # Learning or a whole-scene change: hold the tracks as they are.
            return update
        self._match(detections, grey.shape[1], grey.shape[0], update)
        self._recount(update)
        return update

    def hold(self) -> None:
        """Skip a frame the camera cannot be trusted on (dark, blocked, frozen).

        The background model is left as it was: when the picture comes back the same,
        resting items are still foreground; when it does not, the whole-scene check relearns.
        """

    # -- matching ---------------------------------------------------------------------

    def _match(
        self, detections: list[Detection], width: int, height: int, update: TrackUpdate
    ) -> None:
        config = self.config
        boxes = [detection.box for detection in detections]
        assigned: dict[int, int] = {}
        pairs = []
        for ti, track in enumerate(self.tracks):
            for bi, box in enumerate(boxes):
                iou = track.box.iou(box)
                if iou >= config.iou_match_min:
                    pairs.append((-iou, ti, bi))
        _assign_greedy(sorted(pairs), assigned)
        # Fast movers no longer overlap their last box: fall back to centroid distance.
        diagonal = math.hypot(width, height)
        taken = set(assigned.values())
        pairs = []
        for ti, track in enumerate(self.tracks):
            if ti in assigned:
                continue
            tx, ty = track.box.centre
            for bi, box in enumerate(boxes):
                if bi in taken:
                    continue
                bx, by = box.centre
                distance = math.hypot((tx - bx) * width, (ty - by) * height) / diagonal
                if distance <= config.centroid_match_max:
                    pairs.append((distance, ti, bi))
        _assign_greedy(sorted(pairs), assigned)

        survivors = []
        for ti, track in enumerate(self.tracks):
            if ti in assigned:
                detection = detections[assigned[ti]]
                track.box = detection.box
                still = (
                    track.item_box is not None
                    and track.item_box.iou(detection.item) >= config.settle_iou_min
                )
                track.still_frames = track.still_frames + 1 if still else 0
                track.item_box = detection.item
                track.hits += 1
                track.missed = 0
            else:
                track.missed += 1
                if track.missed > config.max_missed_frames:
                    if track.confirmed and track.zone is not None:
                        update.crossings.append(
                            ZoneCrossingSeen(track.track_id, track.zone, Direction.LEFT)
                        )
                    continue
            survivors.append(track)
        taken = set(assigned.values())
        for bi, detection in enumerate(detections):
            if bi not in taken:
                survivors.append(Track(str(self._next_id), detection.box, item_box=detection.item))
                self._next_id += 1
        self.tracks = survivors
        for track in self.tracks:
            if track.missed == 0:
                self._advance(track, update)

    def _advance(self, track: Track, update: TrackUpdate) -> None:
        """A matched (or new) track: confirm it and follow its zone."""
        config = self.config
        track.frames_seen += 1
        zone = self.zones.zone_at(*track.box.centre)
        if not track.confirmed:
            if track.hits >= config.confirm_frames:
                track.confirmed = True
                track.zone = zone
                update.confirmed.append(track)
                if zone is not None:
                    update.crossings.append(
                        ZoneCrossingSeen(track.track_id, zone, Direction.ENTERED)
                    )
                    update.entered_zone.append(track)
            return
        if zone == track.zone:
            track.candidate_zone, track.candidate_frames = None, 0
            return
        if zone == track.candidate_zone:
            track.candidate_frames += 1
        else:
            track.candidate_zone, track.candidate_frames = zone, 1
        if track.candidate_frames >= config.zone_confirm_frames:
            if track.zone is not None:
                update.crossings.append(
                    ZoneCrossingSeen(track.track_id, track.zone, Direction.LEFT)
                )
            track.zone = zone
            track.candidate_zone, track.candidate_frames = None, 0
            if zone is not None:
                update.crossings.append(ZoneCrossingSeen(track.track_id, zone, Direction.ENTERED))
                update.entered_zone.append(track)

    def _recount(self, update: TrackUpdate) -> None:
        counts = dict.fromkeys(self._counts, 0)
        for track in self.tracks:
            if track.confirmed and track.zone is not None:
                counts[track.zone] = counts.get(track.zone, 0) + 1
        for zone, count in counts.items():
            if count != self._counts.get(zone):
                update.counts.append(ZoneCountChanged(zone, count))
        self._counts = counts

    @property
    def counts(self) -> dict[Zone, int]:
        """Confirmed tracks per zone now."""
        return dict(self._counts)


def _assign_greedy(pairs: list[tuple[float, int, int]], assigned: dict[int, int]) -> None:
    """Take (cost, track, box) pairs best first while neither side is taken."""
    taken = set(assigned.values())
    for _, ti, bi in pairs:
        if ti not in assigned and bi not in taken:
            assigned[ti] = bi
            taken.add(bi)
