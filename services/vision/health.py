"""Camera health from the picture: dark, blocked (low detail), frozen, or moved against a reference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from lanesight.vision.config import HealthConfig
from lanesight.vision.observations import Health, HealthChanged

# A normalised (x0, y0, x1, y1) box.
BoxLike = tuple[float, float, float, float]


@dataclass(frozen=True)
class HealthReading:
    """One frame's verdict and the measurement behind it."""

    health: Health
    reason: str


class CameraHealthMonitor:
    """Judges each frame and reports a health change once it held for ``confirm_s``."""

    def __init__(self, config: HealthConfig) -> None:
        self.config = config
        self.health: Health | None = None
        self._previous: np.ndarray | None = None
        self._previous_s = 0.0
        self._unchanged_since_s: float | None = None
        self._reference: np.ndarray | None = None
        self._reference_edges: np.ndarray | None = None
        self._window: np.ndarray | None = None
        self._candidate: HealthReading | None = None
        self._candidate_since_s = 0.0

    @property
    def has_reference(self) -> bool:
        return self._reference is not None

    def update(
        self, frame_bgr: np.ndarray, now_s: float, ignore: Sequence[BoxLike] = ()
    ) -> tuple[HealthReading, HealthChanged | None]:
        """Judge a frame captured at ``now_s``; returns the reading and a change to report, if any.

        ``ignore`` holds normalised (x0, y0, x1, y1) boxes of items in view, which the moved
        check leaves out so that items do not look like a moved camera.
        """
        reading = self.measure(frame_bgr, now_s, ignore)
        return reading, self._debounce(reading, now_s)

    def measure(
        self, frame_bgr: np.ndarray, now_s: float, ignore: Sequence[BoxLike] = ()
    ) -> HealthReading:
        """This frame's reading, without debouncing."""
        config = self.config
        grey = self._small_grey(frame_bgr)
        frozen = self._frozen(grey, now_s)
        luma = float(grey.mean())
        if luma < config.dark_luma_max:
            return HealthReading(
                Health.DARK, f"mean luminance {luma:.1f} < {config.dark_luma_max:g}"
            )
        laplacian_var = float(cv2.Laplacian(grey, cv2.CV_32F).var())
        edges = cv2.Canny(grey, 50, 150)
        edge_density = cv2.countNonZero(edges) / edges.size
        if (
            laplacian_var < config.blocked_laplacian_var_max
            and edge_density < config.blocked_edge_density_max
        ):
            return HealthReading(
                Health.BLOCKED,
                f"little detail: Laplacian variance {laplacian_var:.1f} < "
                f"{config.blocked_laplacian_var_max:g}, edge density {edge_density:.2%} < "
                f"{config.blocked_edge_density_max:.2%}",
            )
        if frozen is not None:
            return frozen
        if self._reference is None:
            self._set_reference(grey)
            return HealthReading(Health.OK, "reference captured")
        moved = self._moved(grey, ignore)
        if moved is not None:
            return moved
        return HealthReading(
            Health.OK,
            f"mean luminance {luma:.1f}, Laplacian variance {laplacian_var:.1f}, "
            f"edge density {edge_density:.2%}",
        )

    def _small_grey(self, frame_bgr: np.ndarray) -> np.ndarray:
        height, width = frame_bgr.shape[:2]
        target_width = min(self.config.analysis_width_px, width)
        target_height = max(8, round(height * target_width / width))
        small = cv2.resize(frame_bgr, (target_width, target_height), interpolation=cv2.INTER_AREA)
        return small if small.ndim == 2 else cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)

    def _frozen(self, grey: np.ndarray, now_s: float) -> HealthReading | None:
        previous, previous_s = self._previous, self._previous_s
        self._previous, self._previous_s = grey, now_s
        if previous is None or previous.shape != grey.shape:
            self._unchanged_since_s = None
            return None
        diff = float(cv2.absdiff(previous, grey).mean())
        if diff > self.config.frozen_diff_max:
            self._unchanged_since_s = None
            return None
        if self._unchanged_since_s is None:
            # The previous frame is the first of the identical run.
            self._unchanged_since_s = previous_s
        unchanged_s = now_s - self._unchanged_since_s
        if unchanged_s < self.config.frozen_after_s:
            return None
        return HealthReading(
            Health.FROZEN,
            f"picture unchanged for {unchanged_s:.1f} s (mean difference {diff:.2f} <= "
            f"{self.config.frozen_diff_max:g})",
        )

    def _set_reference(self, grey: np.ndarray) -> None:
        self._reference = grey.astype(np.float32)
        self._reference_edges = _edge_map(grey)
        self._window = cv2.createHanningWindow(grey.shape[::-1], cv2.CV_32F)

    def _moved(self, grey: np.ndarray, ignore: Sequence[BoxLike]) -> HealthReading | None:
        config = self.config
        reference, reference_edges = self._reference, self._reference_edges
        assert reference is not None and reference_edges is not None
        if grey.shape != reference.shape:
            return HealthReading(Health.MOVED, "picture size changed against the reference")
        current = grey.astype(np.float32)
        height, width = grey.shape
        for x0, y0, x1, y1 in ignore:
            # Where items are, pretend the picture equals the reference.
            c0, r0 = max(0, int(x0 * width) - 2), max(0, int(y0 * height) - 2)
            c1, r1 = min(width, int(x1 * width) + 3), min(height, int(y1 * height) + 3)
            current[r0:r1, c0:c1] = reference[r0:r1, c0:c1]
        current_edges = _edge_map(current)
        correlation = _correlation(reference_edges, current_edges)
        # phaseCorrelate windows its inputs in place (OpenCV 4.x): hand it copies.
        (dx, dy), _response = cv2.phaseCorrelate(reference.copy(), current.copy(), self._window)
        shift_fraction = float(np.hypot(dx, dy)) / width
        if shift_fraction >= config.moved_shift_fraction_min:
            # A real move lines the whole picture up again once shifted back; an item
            # moving over a still counter does not.
            matrix = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
            shifted = cv2.warpAffine(
                reference_edges, matrix, (width, height), borderMode=cv2.BORDER_REFLECT
            )
            aligned = _correlation(shifted, current_edges)
            if aligned > correlation + 0.1:
                return HealthReading(
                    Health.MOVED,
                    f"scene shifted by {shift_fraction:.1%} of the width ({dx:+.1f}, {dy:+.1f} px "
                    f"at {width} px) against the reference; edge correlation {correlation:.2f}, "
                    f"{aligned:.2f} once shifted back",
                )
        if correlation < config.moved_edge_correlation_min:
            return HealthReading(
                Health.MOVED,
                f"edge correlation with the reference {correlation:.2f} < "
                f"{config.moved_edge_correlation_min:g}",
            )
        return None

    def _debounce(self, reading: HealthReading, now_s: float) -> HealthChanged | None:
        if self.health is None and reading.health is Health.OK:
            # The first verdict needs no history.
            self.health = Health.OK
            self._candidate = None
            return HealthChanged(Health.OK, reading.reason)
        if reading.health is self.health:
            self._candidate = None
            return None
        if self._candidate is None or self._candidate.health is not reading.health:
            self._candidate, self._candidate_since_s = reading, now_s
        # Frozen already waited frozen_after_s; the others must hold for confirm_s.
        if (
            reading.health is not Health.FROZEN
            and now_s - self._candidate_since_s < self.config.confirm_s
        ):
            return None
        self.health = reading.health
        self._candidate = None
        return HealthChanged(reading.health, reading.reason)


def _edge_map(grey: np.ndarray) -> np.ndarray:
    """A blurred gradient-magnitude map: tolerant of noise and brightness, not of a moved view."""
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    magnitude = cv2.magnitude(gx, gy)
    return cv2.GaussianBlur(magnitude, (5, 5), 0)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two equally sized maps (-1..1)."""
    a = a - a.mean()
    b = b - b.mean()
    denominator = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0
