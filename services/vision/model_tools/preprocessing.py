"""Image preprocessing shared by training, export checks and run time (numpy and OpenCV only)."""

from __future__ import annotations

import cv2
import numpy as np

# EfficientNet-Lite was trained on RGB scaled as (x - 127) / 128.
INPUT_MEAN = 127.0
INPUT_SCALE = 128.0


def resize_shorter_side_center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Resize so the shorter side is `size` pixels, then cut the central size×size square."""
    height, width = image.shape[:2]
    scale = size / min(height, width)
    new_width = max(size, round(width * scale))
    new_height = max(size, round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_width, new_height), interpolation=interpolation)
    top = (new_height - size) // 2
    left = (new_width - size) // 2
    return resized[top : top + size, left : left + size]


def bgr_to_rgb_square(image_bgr: np.ndarray, size: int) -> np.ndarray:
    """Turn an OpenCV BGR (or grey, or BGRA) image into a size×size×3 RGB uint8 crop."""
    if image_bgr.ndim == 2:
        image_rgb = cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2RGB)
    elif image_bgr.shape[2] == 4:
        image_rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGRA2RGB)
    else:
        image_rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    return resize_shorter_side_center_crop(image_rgb, size)


def to_model_input(crops_rgb: np.ndarray) -> np.ndarray:
    """Turn N×H×W×3 uint8 RGB crops into the N×3×H×W float32 tensor the network expects."""
    batch = crops_rgb.astype(np.float32).transpose(0, 3, 1, 2)
    return np.ascontiguousarray((batch - INPUT_MEAN) / INPUT_SCALE)
