"""Face blurring on real photos: a face is found and destroyed, the rest and face-free images stay."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from lanesight.device.privacy import FaceBlurrer, obliterate
from skimage import data as skimage_data


@pytest.fixture(scope="module")
def blurrer() -> FaceBlurrer:
    return FaceBlurrer()


@pytest.fixture(scope="module")
def astronaut_bgr() -> np.ndarray:
    """Eileen Collins' NASA portrait, bundled in the scikit-image wheel (public domain)."""
    return cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _sharpness(grey: np.ndarray) -> float:
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def test_the_face_in_a_real_photo_is_found_and_destroyed(blurrer, astronaut_bgr):
    original = astronaut_bgr.copy()
    boxes = blurrer.detect(astronaut_bgr)
    assert len(boxes) == 1
    face = boxes[0]
    # The portrait's face sits in the upper middle, about 100 px across at 512 px.
    assert 120 <= face.x + face.width / 2 <= 300 and 50 <= face.y + face.height / 2 <= 180
    assert 90 <= face.width <= 220

    blurred, faces = blurrer.blur_faces(astronaut_bgr)
    assert faces == 1
    assert np.array_equal(astronaut_bgr, original), "the input frame is not modified"
    inside = np.s_[face.y : face.y + face.height, face.x : face.x + face.width]
    before, after = _grey(original)[inside], _grey(blurred)[inside]
    assert _sharpness(before) > 300
    assert _sharpness(after) < _sharpness(before) / 50, "facial detail survived"
    assert np.abs(before.astype(int) - after.astype(int)).mean() > 15
    # Far from the face (the helmet, lower right) nothing changed at all.
    far = np.s_[380:, 380:]
    assert np.array_equal(blurred[far], original[far])
    # And the detector no longer finds a face there.
    centre = (face.x + face.width // 2, face.y + face.height // 2)
    for box in blurrer.detect(blurred):
        assert not (
            box.x <= centre[0] <= box.x + box.width and box.y <= centre[1] <= box.y + box.height
        )


def test_a_downscaled_detection_maps_back_to_full_resolution(blurrer, astronaut_bgr):
    big = cv2.resize(astronaut_bgr, (1536, 1536), interpolation=cv2.INTER_CUBIC)
    boxes = blurrer.detect(big)  # detection runs at 640 px wide
    assert len(boxes) == 1
    face = boxes[0]
    assert 360 <= face.x + face.width / 2 <= 900 and 270 <= face.width <= 660
    blurred, faces = blurrer.blur_faces(big)
    assert faces == 1
    # Back at the photo's own size, the face (inside the box's edge) has lost its detail.
    small = cv2.resize(blurred, (512, 512), interpolation=cv2.INTER_AREA)
    left, top = face.x // 3 + 3, face.y // 3 + 3
    right, bottom = (face.x + face.width) // 3 - 3, (face.y + face.height) // 3 - 3
    inside = np.s_[top:bottom, left:right]
    assert _sharpness(_grey(small)[inside]) < _sharpness(_grey(astronaut_bgr)[inside]) / 50


def test_a_grocery_photo_without_faces_is_returned_unchanged(blurrer, grocery_dir: Path):
    for name in (
        "train/Fruit/Banana/Banana_001.jpg",
        "train/Vegetables/Carrots/Carrots_001.jpg",
        "train/Packages/Milk/Arla-Standard-Milk/Arla-Standard-Milk_001.jpg",
    ):
        image = cv2.imread(str(grocery_dir / name))
        assert image is not None, name
        original = image.copy()
        result, faces = blurrer.blur_faces(image)
        assert faces == 0, name
        assert np.array_equal(result, original), name


def test_obliterate_leaves_no_detail():
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, (120, 100, 3), dtype=np.uint8)
    smeared = obliterate(noise)
    assert smeared.shape == noise.shape
    assert _sharpness(_grey(smeared)) < _sharpness(_grey(noise)) / 100
