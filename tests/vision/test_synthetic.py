"""The synthetic lane camera: time, zones, ground truth, effects, barcode labels."""

from __future__ import annotations

import numpy as np
import pytest
from lanesight.simulation.camera import SyntheticLaneCamera, encode_jpeg
from lanesight.vision.barcodes import decode_barcodes


def test_read_advances_one_frame_at_a_time_like_video_capture(grocery_dir) -> None:
    camera = SyntheticLaneCamera(background_seed=1, fps=10, grocery_dir=grocery_dir, duration_s=0.5)
    frames = []
    while True:
        ok, frame = camera.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 5
    assert frames[0].shape == (360, 640, 3) and frames[0].dtype == np.uint8
    # Sensor noise: consecutive frames of a still scene are not identical.
    assert not np.array_equal(frames[0], frames[1])
    assert np.abs(frames[0].astype(int) - frames[1].astype(int)).mean() < 4


def test_an_injected_clock_drives_read(grocery_dir) -> None:
    now = [0.0]
    camera = SyntheticLaneCamera(grocery_dir=grocery_dir, clock=lambda: now[0])
    camera.add_item("Banana", 1.0, "cart", "bagging", 2.0)
    now[0] = 0.5
    assert camera.ground_truth(camera.now_s) == []
    now[0] = 2.0
    _, frame = camera.read()
    assert np.array_equal(frame, camera.at(2.0))
    assert [t.zone for t in camera.ground_truth(2.0)] == ["scan"]


def test_items_move_from_zone_to_zone_on_schedule(camera) -> None:
    camera.add_item("Granny-Smith", 1.0, "cart", "bagging", duration_s=4.0, leave_s=1.0)
    zones = [
        (t, truth[0].zone if (truth := camera.ground_truth(t)) else "-")
        for t in (0.5, 1.2, 3.0, 4.8, 5.5, 6.5)
    ]
    assert zones == [
        (0.5, "-"),
        (1.2, "cart"),
        (3.0, "scan"),
        (4.8, "bagging"),
        (5.5, "bagging"),
        (6.5, "-"),
    ]
    truth = camera.ground_truth(3.0)[0]
    assert truth.label == "Granny-Smith" and truth.moving
    assert not camera.ground_truth(5.5)[0].moving
    names = [name for name, _ in camera.zones()]
    assert names == ["cart", "scan", "bagging"]
    for _, points in camera.zones():
        assert len(points) >= 3 and all(0 <= v <= 1 for p in points for v in p)


def test_effects_change_the_picture(camera) -> None:
    camera.darken(1.0, 2.0)
    camera.cover(2.0, 3.0)
    camera.freeze(3.0, 4.0)
    normal = camera.at(0.5)
    assert normal.mean() > 100
    assert camera.at(1.5).mean() < 20
    covered = camera.at(2.5)
    assert covered.reshape(-1, 3).std(axis=0).max() < 3
    assert np.array_equal(camera.at(3.1), camera.at(3.9))


def test_unknown_zone_or_image_is_an_error(camera) -> None:
    with pytest.raises(ValueError, match="unknown zone"):
        camera.add_item("Banana", 0, "cart", "exit")
    with pytest.raises(FileNotFoundError):
        camera.add_item("No-Such-Product", 0)


def test_a_barcode_label_on_an_item_decodes_from_the_jpeg(grocery_dir) -> None:
    camera = SyntheticLaneCamera(width=960, height=540, grocery_dir=grocery_dir)
    camera.add_item(
        "Arla-Standard-Milk", 0.0, "scan", "scan", size_fraction=0.5, barcode="036602301467"
    )
    x0, y0, x1, y1 = camera.ground_truth(1.0)[0].box
    frame = camera.at(1.0)
    crop = frame[int(y0 * 540) : int(y1 * 540), int(x0 * 960) : int(x1 * 960)]
    decoded = decode_barcodes(crop, effort="fast")
    assert [c.data for c in decoded] == ["036602301467"]
    assert encode_jpeg(frame)[:2] == b"\xff\xd8"
