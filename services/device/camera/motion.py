"""Edge motion gating: downscaled grey frames against a running average, inside the zones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class MotionResult:
    """What the gate decided for one frame."""

    motion: bool
    changed_fraction: float


def zone_mask(
    zones: Sequence[Sequence[tuple[float, float]]], width: int, height: int
) -> np.ndarray:
    """A uint8 mask (1 inside any zone) at the given size; the whole frame when no zones."""
    if not zones:
        return np.ones((height, width), np.uint8)
    mask = np.zeros((height, width), np.uint8)
    for points in zones:
        polygon = np.array(
            [[round(x * (width - 1)), round(y * (height - 1))] for x, y in points], np.int32
        )
        cv2.fillPoly(mask, [polygon], 1)
    return mask


class MotionGate:
    """Decides whether a frame shows motion inside the configured zones.

    Frames are shrunk to ``analysis_width``, turned grey and blurred, then compared
    with a running average (``alpha`` is how fast the background adapts). A pixel
    changed when it differs by more than ``pixel_threshold`` grey levels; the frame
    has motion when at least ``motion_threshold`` of the zone pixels changed. Runs in
    a worker thread (OpenCV releases the GIL); one gate per camera, not thread-safe.
    """

    def __init__(
        self,
        zones: Sequence[Sequence[tuple[float, float]]] = (),
        analysis_width: int = 96,
        pixel_threshold: int = 25,
        motion_threshold: float = 0.01,
        alpha: float = 0.1,
    ) -> None:
        self.zones = [list(points) for points in zones]
        self.analysis_width = analysis_width
        self.pixel_threshold = pixel_threshold
        self.motion_threshold = motion_threshold
        self.alpha = alpha
        self._average: np.ndarray | None = None
        self._mask: np.ndarray | None = None
        self._mask_pixels = 0

    def _prepare(self, frame_bgr: np.ndarray) -> np.ndarray:
        height, width = frame_bgr.shape[:2]
        small_height = max(1, round(height * self.analysis_width / width))
        small = cv2.resize(
            frame_bgr, (self.analysis_width, small_height), interpolation=cv2.INTER_AREA
        )
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        return cv2.GaussianBlur(grey, (5, 5), 0)

    def update(self, frame_bgr: np.ndarray) -> MotionResult:
        """Compare a frame with the background and fold it into the background."""
        grey = self._prepare(frame_bgr)
        if self._average is None or self._mask is None or self._average.shape != grey.shape:
            self._average = grey.astype(np.float32)
            self._mask = zone_mask(self.zones, grey.shape[1], grey.shape[0])
            self._mask_pixels = max(1, int(self._mask.sum()))
            return MotionResult(False, 0.0)
        difference = cv2.absdiff(grey, cv2.convertScaleAbs(self._average))
        changed = (difference > self.pixel_threshold) & (self._mask > 0)
        fraction = float(np.count_nonzero(changed)) / self._mask_pixels
        cv2.accumulateWeighted(grey.astype(np.float32), self._average, self.alpha)
        return MotionResult(fraction >= self.motion_threshold, fraction)


def encode_jpeg(frame_bgr: np.ndarray, quality: int = 80) -> bytes:
    """JPEG bytes of a BGR frame (runs in a worker thread)."""
    ok, buffer = cv2.imencode(".jpg", frame_bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()
