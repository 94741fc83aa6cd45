"""Camera health on synthetic lane frames: dark, covered, frozen, moved; healthy stays OK."""

from __future__ import annotations

import re

import pytest
from lanesight.simulation.camera import SyntheticLaneCamera
from lanesight.vision.config import HealthConfig
from lanesight.vision.health import CameraHealthMonitor
from lanesight.vision.observations import Health


def health_changes(camera: SyntheticLaneCamera, until_s: float, config: HealthConfig | None = None):
    """(time, change) for every health change up to until_s, judged frame by frame."""
    monitor = CameraHealthMonitor(config or HealthConfig())
    changes = []
    while camera.now_s < until_s:
        t_s = camera.now_s
        _, frame = camera.read()
        items = [truth.box for truth in camera.ground_truth(t_s)]
        _, change = monitor.update(frame, t_s, items)
        if change is not None:
            changes.append((round(t_s, 2), change))
    return changes


def test_a_busy_healthy_lane_stays_ok(camera) -> None:
    camera.add_item("Granny-Smith", 0.5, "cart", "bagging", 3.0, size_fraction=0.4)
    camera.add_item("Banana", 1.0, "cart", "scan", 2.0, lane_y=0.3, leave_s=1.0)
    camera.add_item("Oatly-Oat-Milk", 2.0, "cart", "bagging", 2.5, lane_y=0.7)
    camera.occlude(4.0, 5.0)
    camera.lighting(5.0, 6.5, gain=0.6)
    changes = health_changes(camera, 8.0)
    assert [(c.health, c.reason) for _, c in changes] == [(Health.OK, "reference captured")]


def test_dark_is_reported_with_the_luminance_and_recovers(camera) -> None:
    camera.darken(2.0, 5.0)
    changes = health_changes(camera, 7.0)
    assert [c.health for _, c in changes] == [Health.OK, Health.DARK, Health.OK]
    (t_dark, dark) = changes[1]
    assert 2.0 + HealthConfig().confirm_s <= t_dark <= 3.2
    luma = float(re.search(r"mean luminance ([\d.]+) <", dark.reason).group(1))
    assert luma < HealthConfig().dark_luma_max
    assert changes[2][0] >= 5.0


def test_a_covered_lens_is_blocked(camera) -> None:
    camera.add_item("Lemon", 0.5, "cart", "scan", 1.0)
    camera.cover(2.0, 4.0)
    changes = health_changes(camera, 6.0)
    assert [c.health for _, c in changes] == [Health.OK, Health.BLOCKED, Health.OK]
    assert "Laplacian variance" in changes[1][1].reason
    assert "edge density" in changes[1][1].reason


def test_identical_frames_are_frozen_only_after_the_configured_time(camera) -> None:
    config = HealthConfig(frozen_after_s=2.0)
    camera.freeze(1.0, 5.0)
    changes = health_changes(camera, 7.0, config)
    assert [c.health for _, c in changes] == [Health.OK, Health.FROZEN, Health.OK]
    t_frozen, frozen = changes[1]
    assert 3.0 <= t_frozen <= 3.2
    assert "unchanged for" in frozen.reason


@pytest.mark.parametrize("dx, dy", [(0.08, 0.0), (-0.05, 0.06)])
def test_a_knocked_camera_is_moved(camera, dx, dy) -> None:
    camera.add_item("Kiwi", 0.3, "cart", "bagging", 2.0)
    camera.move(3.0, dx, dy)
    changes = health_changes(camera, 5.0)
    assert [c.health for _, c in changes] == [Health.OK, Health.MOVED]
    assert changes[1][0] >= 3.0
    assert "shifted" in changes[1][1].reason or "correlation" in changes[1][1].reason


def test_a_camera_that_starts_covered_reports_blocked_first(camera) -> None:
    camera.cover(0.0, 3.0)
    changes = health_changes(camera, 5.0)
    assert [c.health for _, c in changes] == [Health.BLOCKED, Health.OK]
