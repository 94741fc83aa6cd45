"""Face blurring for evidence frames: OpenCV Haar cascades find faces, which are then destroyed.

Nothing identifying is kept: no face crops, no embeddings, no landmarks, only the count.
Detection runs on a downscaled, equalised grey copy; each (enlarged) face box of the full
frame is pixelated and Gaussian-blurred so that it cannot be restored.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

FRONTAL_CASCADE = "haarcascade_frontalface_alt2.xml"
PROFILE_CASCADE = "haarcascade_profileface.xml"


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A face box in full-frame pixels."""

    x: int
    y: int
    width: int
    height: int


def _load_cascade(name: str) -> cv2.CascadeClassifier:
    # cv2's bundled stubs omit the cv2.data module that ships the cascades.
    path = Path(cv2.data.haarcascades) / name  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise RuntimeError(f"cannot load the Haar cascade {path}")
    return cascade


class FaceBlurrer:
    """Finds frontal and profile faces and blurs them beyond recognition.

    The cascades are loaded once per instance. ``detect_width`` is the width the grey
    copy is shrunk to for detection (speed); ``margin`` enlarges each face box on
    every side (hair, ears, chin). Safe to share between threads (one lock).
    """

    def __init__(
        self,
        detect_width: int = 640,
        margin: float = 0.25,
        min_face_px: int = 20,
        min_neighbors: int = 4,
        profile_min_neighbors: int = 5,
        profiles: bool = True,
    ) -> None:
        self.detect_width = detect_width
        self.margin = margin
        self.min_face_px = min_face_px
        self.min_neighbors = min_neighbors
        self.profile_min_neighbors = profile_min_neighbors
        self._frontal = _load_cascade(FRONTAL_CASCADE)
        self._profile = _load_cascade(PROFILE_CASCADE) if profiles else None
        # CascadeClassifier instances are not documented as thread-safe.
        self._lock = threading.Lock()

    def detect(self, frame_bgr: np.ndarray) -> list[FaceBox]:
        """Face boxes (already enlarged by ``margin`` and clipped) in full-frame pixels."""
        height, width = frame_bgr.shape[:2]
        scale = min(1.0, self.detect_width / width) if width else 1.0
        grey = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY) if frame_bgr.ndim == 3 else frame_bgr
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        small_width = grey.shape[1]
        min_size = (self.min_face_px, self.min_face_px)
        found: list[tuple[int, int, int, int]] = []
        with self._lock:
            found += self._run(self._frontal, grey, min_size, self.min_neighbors)
            if self._profile is not None:
                neighbors = self.profile_min_neighbors
                found += self._run(self._profile, grey, min_size, neighbors)
                # The profile cascade knows one side only: look at the mirror image too.
                mirrored = cv2.flip(grey, 1)
                for x, y, w, h in self._run(self._profile, mirrored, min_size, neighbors):
                    found.append((small_width - x - w, y, w, h))
        return [self._to_frame(box, scale, width, height) for box in found]

    @staticmethod
    def _run(
        cascade: cv2.CascadeClassifier,
        grey: np.ndarray,
        min_size: tuple[int, int],
        min_neighbors: int,
    ) -> list[tuple[int, int, int, int]]:
        boxes = cascade.detectMultiScale(
            grey, scaleFactor=1.1, minNeighbors=min_neighbors, minSize=min_size
        )
        return [(int(x), int(y), int(w), int(h)) for x, y, w, h in boxes]

    def _to_frame(
        self, box: tuple[int, int, int, int], scale: float, width: int, height: int
    ) -> FaceBox:
        x, y, w, h = (v / scale for v in box)
        pad_x, pad_y = w * self.margin, h * self.margin
        left, top = max(0, int(x - pad_x)), max(0, int(y - pad_y))
        right, bottom = min(width, int(x + w + pad_x + 1)), min(height, int(y + h + pad_y + 1))
        return FaceBox(left, top, right - left, bottom - top)

    def blur_faces(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, int]:
        """The frame with every face destroyed, and how many faces were found.

        Without faces the input array itself is returned, unchanged; with faces a
        blurred copy is returned and the input is left as it was.
        """
        boxes = self.detect(frame_bgr)
        if not boxes:
            return frame_bgr, 0
        out = frame_bgr.copy()
        for box in boxes:
            region = out[box.y : box.y + box.height, box.x : box.x + box.width]
            if region.size:
                region[...] = obliterate(region)
        return out, len(boxes)


def obliterate(region: np.ndarray) -> np.ndarray:
    """Pixelate a region to a few blocks, then Gaussian-blur it: no facial detail survives."""
    height, width = region.shape[:2]
    blocks_x = max(1, min(6, width))
    blocks_y = max(1, min(6, height))
    tiny = cv2.resize(region, (blocks_x, blocks_y), interpolation=cv2.INTER_AREA)
    blocky = cv2.resize(tiny, (width, height), interpolation=cv2.INTER_NEAREST)
    # A sigma of most of a block melts the block edges too (they would outline features).
    sigma = max(1.0, 0.6 * max(width / blocks_x, height / blocks_y))
    return cv2.GaussianBlur(blocky, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
