"""The zone tracker on synthetic lane frames made from real grocery photos."""

from __future__ import annotations

import pytest
from lanesight.simulation.camera import SyntheticLaneCamera, encode_jpeg
from lanesight.vision.analyzer import LaneAnalyzer
from lanesight.vision.config import TrackerConfig, VisionConfig
from lanesight.vision.observations import Direction, ZoneCountChanged, ZoneCrossingSeen
from lanesight.vision.tracker import Box, ZoneTracker
from lanesight.vision.zones import Zone, ZoneError, ZoneMap

from .conftest import zone_map_of


def run_tracker(camera: SyntheticLaneCamera, until_s: float, tracker: ZoneTracker | None = None):
    """Feed frames up to until_s; returns the tracker and (time, observation) pairs in order."""
    tracker = tracker or ZoneTracker(zone_map_of(camera), TrackerConfig())
    seen = []
    while camera.now_s < until_s:
        t_s = camera.now_s
        _, frame = camera.read()
        update = tracker.update(tracker.small_grey(frame))
        seen.extend((t_s, o) for o in [*update.crossings, *update.counts])
    return tracker, seen


def crossings(seen) -> list[tuple[str, Zone, Direction]]:
    return [(o.track_id, o.zone, o.direction) for _, o in seen if isinstance(o, ZoneCrossingSeen)]


@pytest.mark.parametrize("subtractor", ["mog2", "knn"])
def test_an_item_crossing_the_lane_enters_and_leaves_each_zone_in_order(camera, subtractor) -> None:
    camera.add_item("Granny-Smith", 1.0, "cart", "bagging", duration_s=4.0)
    tracker = ZoneTracker(zone_map_of(camera), TrackerConfig(subtractor=subtractor))
    tracker, seen = run_tracker(camera, 6.5, tracker)

    assert crossings(seen) == [
        ("1", Zone.CART, Direction.ENTERED),
        ("1", Zone.CART, Direction.LEFT),
        ("1", Zone.SCAN, Direction.ENTERED),
        ("1", Zone.SCAN, Direction.LEFT),
        ("1", Zone.BAGGING, Direction.ENTERED),
    ]
    counts = [(o.zone, o.count) for _, o in seen if isinstance(o, ZoneCountChanged)]
    assert counts == [
        (Zone.CART, 1),
        (Zone.CART, 0),
        (Zone.SCAN, 1),
        (Zone.SCAN, 0),
        (Zone.BAGGING, 1),
    ]
    assert tracker.counts == {Zone.CART: 0, Zone.SCAN: 0, Zone.BAGGING: 1}
    # Each event comes while the ground truth agrees, within the confirmation delay.
    for t_s, observation in seen:
        if isinstance(observation, ZoneCrossingSeen) and observation.direction is Direction.ENTERED:
            truth = camera.ground_truth(t_s)[0]
            assert truth.zone == observation.zone.value, (t_s, observation)


def test_counts_follow_several_items_and_removal(camera) -> None:
    camera.add_item("Banana", 0.8, "cart", "bagging", 2.5, lane_y=0.28, size_fraction=0.25)
    camera.add_item("Red-Bell-Pepper", 1.2, "cart", "bagging", 2.5, lane_y=0.72, size_fraction=0.25)
    # The third item is scanned, then picked up from the scan zone (leaves the picture).
    camera.add_item("Oatly-Natural-Oatghurt", 4.5, "cart", "scan", 1.5, leave_s=1.0)
    tracker, seen = run_tracker(camera, 9.0)

    bagging = [
        o.count for _, o in seen if isinstance(o, ZoneCountChanged) and o.zone is Zone.BAGGING
    ]
    assert bagging == [1, 2]
    assert tracker.counts == {Zone.CART: 0, Zone.SCAN: 0, Zone.BAGGING: 2}
    third = [c for c in crossings(seen) if c[0] not in {"1", "2"}]
    assert [c[1:] for c in third] == [
        (Zone.CART, Direction.ENTERED),
        (Zone.CART, Direction.LEFT),
        (Zone.SCAN, Direction.ENTERED),
        (Zone.SCAN, Direction.LEFT),
    ]


def test_a_lighting_change_moves_no_item(camera) -> None:
    camera.add_item("Lemon", 0.8, "cart", "bagging", 2.0)
    camera.lighting(4.0, 6.0, gain=0.65)
    camera.occlude(6.5, 7.0, zone="cart")
    tracker, seen = run_tracker(camera, 8.0)
    assert [c[1:] for c in crossings(seen) if c[0] == "1"][-1] == (Zone.BAGGING, Direction.ENTERED)
    assert tracker.counts[Zone.BAGGING] == 1


def test_the_analyzer_tracks_jpeg_frames_and_crops_each_zone_entry(camera) -> None:
    camera.add_item("Granny-Smith", 1.0, "cart", "bagging", duration_s=3.0)
    config = VisionConfig()
    analyzer = LaneAnalyzer(zone_map_of(camera), config)
    crops = []
    while camera.now_s < 8.0:
        t_s = camera.now_s
        _, frame = camera.read()
        result = analyzer.analyze_jpeg(encode_jpeg(frame), t_s)
        crops.extend((t_s, crop) for crop in result.crops)
    # One crop when each zone is entered...
    visits = [c.zone for i, (_, c) in enumerate(crops) if i == 0 or crops[i - 1][1].zone != c.zone]
    assert visits == [Zone.CART, Zone.SCAN, Zone.BAGGING]
    assert all(c.track_id == "1" for _, c in crops)
    # ...and, once it rests in the bagging area (from 4 s), when it has settled and while it
    # rests, bounded per zone visit.
    resting = [c for t_s, c in crops if t_s > 4.0]
    assert resting and all(c.settled and c.zone is Zone.BAGGING for c in resting)
    assert sum(1 for _, c in crops if c.zone is Zone.BAGGING) == config.zone_crops_max
    # The crop is the item's own box (the item is 108 px high), not the dilated blob's.
    truth_h = round(
        camera.ground_truth(5.0)[0].box[3] * 360 - camera.ground_truth(5.0)[0].box[1] * 360
    )
    for _, crop in crops:
        height, width = crop.crop_bgr.shape[:2]
        assert abs(height - truth_h) <= 8 and 80 <= width <= 140, crop.crop_bgr.shape


def test_zone_polygons_are_validated() -> None:
    with pytest.raises(ZoneError) as too_few:
        ZoneMap.from_points([(Zone.SCAN, [(0, 0), (1, 1)])])
    assert too_few.value.field == "zones[0].points"
    with pytest.raises(ZoneError) as outside:
        ZoneMap.from_points(
            [(Zone.SCAN, [(0, 0), (0.5, 0)]), (Zone.CART, [(0, 0), (1.2, 0), (1, 1)])]
        )
    assert outside.value.field in ("zones[0].points", "zones[1].points[1]")
    zones = ZoneMap.from_points([(Zone.CART, [(0, 0), (0.5, 0), (0.5, 1), (0, 1)])])
    assert zones.zone_at(0.25, 0.5) is Zone.CART
    assert zones.zone_at(0.75, 0.5) is None


def test_box_geometry() -> None:
    a = Box(0.0, 0.0, 0.5, 0.5)
    assert a.iou(a) == pytest.approx(1.0)
    assert a.iou(Box(0.5, 0.5, 1.0, 1.0)) == 0.0
    assert a.iou(Box(0.25, 0.0, 0.75, 0.5)) == pytest.approx(1 / 3)
    assert a.to_pixels(100, 50, pad_fraction=0.1) == (0, 0, 55, 28)
