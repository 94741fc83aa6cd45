"""Shared fixtures of the vision tests: the real data folders and a synthetic lane camera."""

from __future__ import annotations

from pathlib import Path

import pytest
from lanesight.simulation.camera import SyntheticLaneCamera
from lanesight.vision.zones import Zone, ZoneMap

from tests.conftest import SHARED_DATA

GROCERY_DIR = SHARED_DATA / "grocery" / "dataset"
BARCODES_DIR = SHARED_DATA / "barcodes"


@pytest.fixture
def grocery_dir() -> Path:
    assert GROCERY_DIR.is_dir(), f"GroceryStoreDataset missing at {GROCERY_DIR}"
    return GROCERY_DIR


@pytest.fixture
def camera(grocery_dir: Path) -> SyntheticLaneCamera:
    """A 640×360, 15 FPS lane with no items yet."""
    return SyntheticLaneCamera(background_seed=3, fps=15, grocery_dir=grocery_dir)


def zone_map_of(camera: SyntheticLaneCamera) -> ZoneMap:
    """The camera's zones as the service sees them."""
    return ZoneMap.from_points([(Zone(name), points) for name, points in camera.zones()])
