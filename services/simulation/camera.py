"""A synthetic top-down lane camera: real grocery photos moving cart → scan → bagging, with effects.

Used by tests, the demo and the benchmark. Frames are BGR like ``cv2.VideoCapture``; time is
either the frame counter divided by fps or an injected clock, and any instant can be
rendered with ``at(t_s)``. Ground truth per frame comes from ``ground_truth(t_s)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# Three zones side by side, left to right: cart, scan, bagging (normalised x, y corners).
ZONE_POLYGONS: dict[str, tuple[tuple[float, float], ...]] = {
    "cart": ((0.02, 0.08), (0.31, 0.08), (0.31, 0.92), (0.02, 0.92)),
    "scan": ((0.35, 0.08), (0.65, 0.08), (0.65, 0.92), (0.35, 0.92)),
    "bagging": ((0.69, 0.08), (0.98, 0.08), (0.98, 0.92), (0.69, 0.92)),
}
_NOISE_BANK = 6
# The exposure time a carried, moving item is blurred over.
_EXPOSURE_S = 1 / 60


def zone_centre(zone: str) -> tuple[float, float]:
    """The centre of a zone's polygon (normalised)."""
    points = ZONE_POLYGONS[zone]
    return (
        sum(x for x, _ in points) / len(points),
        sum(y for _, y in points) / len(points),
    )


@dataclass(frozen=True)
class ItemTruth:
    """Where an item is at one instant: its box (normalised x0, y0, x1, y1) and zone."""

    item_id: int
    label: str
    zone: str | None
    box: tuple[float, float, float, float]
    moving: bool
    barcode: str


@dataclass
class _Item:
    item_id: int
    label: str
    image: np.ndarray
    start_s: float
    from_zone: str
    to_zone: str
    duration_s: float
    lane_y: float
    leave_s: float | None
    barcode: str
    carried: bool = False


@dataclass(frozen=True)
class _Effect:
    kind: str
    start_s: float
    end_s: float
    amount: tuple[float, ...] = ()

    def active(self, t_s: float) -> bool:
        return self.start_s <= t_s < self.end_s


class SyntheticLaneCamera:
    """Renders a lane camera's frames on a schedule of items and effects."""

    def __init__(
        self,
        background_seed: int = 0,
        fps: float = 15.0,
        *,
        width: int = 640,
        height: int = 360,
        grocery_dir: str | Path | None = None,
        clock: Callable[[], float] | None = None,
        noise_sigma: float = 2.0,
        duration_s: float | None = None,
    ) -> None:
        """``grocery_dir`` is a GroceryStoreDataset ``dataset`` folder, used to find images by label;
        ``clock`` (seconds) replaces the frame counter as the time ``read()`` renders at."""
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.fps = float(fps)
        self.width = width
        self.height = height
        self.grocery_dir = Path(grocery_dir) if grocery_dir else None
        self.duration_s = duration_s
        self._clock = clock
        self._frame_index = 0
        self._items: list[_Item] = []
        self._effects: list[_Effect] = []
        self._frozen: tuple[_Effect, np.ndarray] | None = None
        rng = np.random.default_rng(background_seed)
        self._background = _render_background(rng, width, height)
        self._noise = [
            rng.normal(0.0, noise_sigma, (height, width, 3)).astype(np.int16)
            for _ in range(_NOISE_BANK)
        ]

    # -- the scene --------------------------------------------------------------------

    @staticmethod
    def zones() -> list[tuple[str, list[tuple[float, float]]]]:
        """The zone polygons this camera draws, as (name, corners) in normalised coordinates."""
        return [(name, list(points)) for name, points in ZONE_POLYGONS.items()]

    def add_item(
        self,
        image: str | Path | np.ndarray,
        start_s: float,
        from_zone: str = "cart",
        to_zone: str = "bagging",
        duration_s: float = 3.0,
        *,
        size_fraction: float = 0.3,
        lane_y: float = 0.5,
        leave_s: float | None = None,
        barcode: str = "",
        label: str = "",
        carried: bool = False,
    ) -> int:
        """Place an item in ``from_zone`` at ``start_s`` and move it to ``to_zone`` in ``duration_s``.

        ``image`` is an image path, a BGR array or a class label (found under
        ``grocery_dir``). The item's height is ``size_fraction`` of the frame height,
        at vertical position ``lane_y``. It stays in ``to_zone`` until ``leave_s`` seconds
        after it arrived (forever when None). ``barcode`` (8, 12 or 13 digits) prints a
        label on the item. ``carried``: while it moves, a hand holds the item (drawn over
        its lower part) and it is motion-blurred as a camera exposing 1/60 s sees it; the
        hand lets go when it arrives. Returns the item id.
        """
        for zone in (from_zone, to_zone):
            if zone not in ZONE_POLYGONS:
                raise ValueError(f"unknown zone {zone!r}; zones are {list(ZONE_POLYGONS)}")
        picture, found_label = self._load_image(image)
        target_height = max(8, round(size_fraction * self.height))
        scale = target_height / picture.shape[0]
        target_width = max(8, round(picture.shape[1] * scale))
        picture = cv2.resize(picture, (target_width, target_height), interpolation=cv2.INTER_AREA)
        if barcode:
            picture = _print_barcode_label(picture, barcode)
        item = _Item(
            len(self._items) + 1,
            label or found_label,
            picture,
            start_s,
            from_zone,
            to_zone,
            max(duration_s, 1e-3),
            lane_y,
            leave_s,
            barcode,
            carried,
        )
        self._items.append(item)
        return item.item_id

    def cover(self, start_s: float, end_s: float) -> None:
        """Something over the lens (blocked): a blurred, nearly uniform picture."""
        self._effects.append(_Effect("cover", start_s, end_s))

    def darken(self, start_s: float, end_s: float, gain: float = 0.08) -> None:
        """The lights go out (dark): brightness times ``gain``."""
        self._effects.append(_Effect("light", start_s, end_s, (gain,)))

    def lighting(self, start_s: float, end_s: float, gain: float) -> None:
        """A lighting change: brightness times ``gain``."""
        self._effects.append(_Effect("light", start_s, end_s, (gain,)))

    def freeze(self, start_s: float, end_s: float) -> None:
        """The camera repeats the frame of ``start_s`` exactly (frozen)."""
        self._effects.append(_Effect("freeze", start_s, end_s))

    def move(
        self,
        start_s: float,
        dx_fraction: float = 0.1,
        dy_fraction: float = 0.05,
        end_s: float = math.inf,
    ) -> None:
        """The camera is knocked: the view shifts by a fraction of the frame (moved)."""
        self._effects.append(_Effect("move", start_s, end_s, (dx_fraction, dy_fraction)))

    def occlude(self, start_s: float, end_s: float, zone: str = "scan") -> None:
        """A hand-like blob passes over a zone."""
        self._effects.append(_Effect("hand", start_s, end_s, zone_centre(zone)))

    # -- time -------------------------------------------------------------------------

    @property
    def now_s(self) -> float:
        """The time the next ``read()`` renders at."""
        return self._clock() if self._clock is not None else self._frame_index / self.fps

    def seek(self, t_s: float) -> None:
        """Move the frame counter to ``t_s`` (no effect with an injected clock)."""
        self._frame_index = max(0, round(t_s * self.fps))

    def read(self) -> tuple[bool, np.ndarray | None]:
        """The next frame, like ``cv2.VideoCapture.read``; (False, None) after ``duration_s``."""
        t_s = self.now_s
        if self.duration_s is not None and t_s >= self.duration_s:
            return False, None
        self._frame_index += 1
        return True, self.at(t_s)

    # -- rendering --------------------------------------------------------------------

    def ground_truth(self, t_s: float) -> list[ItemTruth]:
        """The items in view at ``t_s``."""
        truths = []
        for item in self._items:
            placed = self._place(item, t_s)
            if placed is None:
                continue
            cx, cy, moving = placed
            half_w = item.image.shape[1] / self.width / 2
            half_h = item.image.shape[0] / self.height / 2
            truths.append(
                ItemTruth(
                    item.item_id,
                    item.label,
                    _zone_at(cx, cy),
                    (cx - half_w, cy - half_h, cx + half_w, cy + half_h),
                    moving,
                    item.barcode,
                )
            )
        return truths

    def at(self, t_s: float) -> np.ndarray:
        """Render the frame at ``t_s``."""
        freeze = next((e for e in self._effects if e.kind == "freeze" and e.active(t_s)), None)
        if freeze is not None:
            if self._frozen is None or self._frozen[0] is not freeze:
                self._frozen = (freeze, self._render(freeze.start_s))
            return self._frozen[1].copy()
        return self._render(t_s)

    def _render(self, t_s: float) -> np.ndarray:
        frame = self._background.copy()
        for truth, item in zip(self.ground_truth(t_s), self._visible_items(t_s), strict=True):
            if item.carried and truth.moving:
                blur_px = self._speed_px_s(item, t_s) * _EXPOSURE_S
                _paste(frame, _motion_blur(item.image, blur_px), truth.box, self.width, self.height)
                _draw_carrying_hand(frame, truth.box, item.from_zone, item.to_zone)
            else:
                _paste(frame, item.image, truth.box, self.width, self.height)
        for effect in self._effects:
            if effect.kind == "hand" and effect.active(t_s):
                _draw_hand(frame, effect.amount, t_s - effect.start_s)
        noisy = frame.astype(np.int16) + self._noise[round(t_s * self.fps) % _NOISE_BANK]
        frame = np.clip(noisy, 0, 255).astype(np.uint8)
        for effect in self._effects:
            if not effect.active(t_s):
                continue
            if effect.kind == "light":
                frame = cv2.convertScaleAbs(frame, alpha=effect.amount[0])
            elif effect.kind == "move":
                dx, dy = effect.amount[0] * self.width, effect.amount[1] * self.height
                matrix = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
                frame = cv2.warpAffine(
                    frame, matrix, (self.width, self.height), borderMode=cv2.BORDER_REFLECT
                )
            elif effect.kind == "cover":
                frame = _covered(frame, t_s)
        return frame

    def _visible_items(self, t_s: float) -> list[_Item]:
        return [item for item in self._items if self._place(item, t_s) is not None]

    def _place(self, item: _Item, t_s: float) -> tuple[float, float, bool] | None:
        if t_s < item.start_s:
            return None
        progress = (t_s - item.start_s) / item.duration_s
        if (
            item.leave_s is not None
            and progress > 1
            and t_s - item.start_s - item.duration_s > item.leave_s
        ):
            return None
        moving = progress < 1
        progress = min(progress, 1.0)
        eased = 0.5 - 0.5 * math.cos(math.pi * progress)
        (x0, _), (x1, _) = zone_centre(item.from_zone), zone_centre(item.to_zone)
        return x0 + (x1 - x0) * eased, item.lane_y, moving

    def _speed_px_s(self, item: _Item, t_s: float) -> float:
        """How fast a moving item crosses the picture at ``t_s`` (pixels per second)."""
        progress = min(max((t_s - item.start_s) / item.duration_s, 0.0), 1.0)
        (x0, _), (x1, _) = zone_centre(item.from_zone), zone_centre(item.to_zone)
        rate = 0.5 * math.pi * math.sin(math.pi * progress) / item.duration_s
        return abs(x1 - x0) * self.width * rate

    def _load_image(self, image: str | Path | np.ndarray) -> tuple[np.ndarray, str]:
        if isinstance(image, np.ndarray):
            return image, ""
        path = Path(image)
        if not path.is_file():
            path = self._find_by_label(str(image))
        picture = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if picture is None:
            raise FileNotFoundError(f"cannot read image {path}")
        return picture, path.parent.name

    def _find_by_label(self, label: str) -> Path:
        if self.grocery_dir is None:
            raise FileNotFoundError(f"{label!r} is not a file and no grocery_dir was given")
        for pattern in (
            f"train/**/{label}/*.jpg",
            f"iconic-images-and-descriptions/**/{label}_Iconic.jpg",
        ):
            found = sorted(self.grocery_dir.glob(pattern))
            if found:
                return found[0]
        raise FileNotFoundError(f"no image of {label!r} under {self.grocery_dir}")


def encode_jpeg(frame: np.ndarray, quality: int = 85) -> bytes:
    """JPEG bytes of a BGR frame."""
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def _zone_at(x: float, y: float) -> str | None:
    for name, points in ZONE_POLYGONS.items():
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        if min(xs) <= x <= max(xs) and min(ys) <= y <= max(ys):
            return name
    return None


def _render_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A counter top: mottled laminate, a scanner glass, a bagging platform, painted zone lines."""
    base = np.array([150, 160, 168], dtype=np.float32) + rng.normal(0, 8, 3).astype(np.float32)
    mottle = cv2.resize(
        rng.normal(0, 14, (height // 24 + 1, width // 24 + 1)).astype(np.float32),
        (width, height),
        interpolation=cv2.INTER_CUBIC,
    )
    grain = rng.normal(0, 5, (height, width)).astype(np.float32)
    frame = np.clip(base[None, None, :] + (mottle + grain)[..., None], 0, 255).astype(np.uint8)
    for _ in range(40):
        # Scratches and specks give the picture the detail a real counter has.
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        length, angle = rng.uniform(10, 60), rng.uniform(0, math.pi)
        end = (int(x + length * math.cos(angle)), int(y + length * math.sin(angle)))
        shade = int(rng.integers(90, 200))
        cv2.line(frame, (x, y), end, (shade, shade, shade), 1, cv2.LINE_AA)
    sx0, sx1 = zone_centre("scan")[0] - 0.08, zone_centre("scan")[0] + 0.08
    cv2.rectangle(
        frame,
        (int(sx0 * width), int(0.3 * height)),
        (int(sx1 * width), int(0.7 * height)),
        (60, 70, 60),
        -1,
    )
    bx = zone_centre("bagging")[0]
    cv2.rectangle(
        frame,
        (int((bx - 0.12) * width), int(0.15 * height)),
        (int((bx + 0.12) * width), int(0.85 * height)),
        (120, 120, 125),
        3,
    )
    for points in ZONE_POLYGONS.values():
        corners = np.array([[int(x * width), int(y * height)] for x, y in points], np.int32)
        cv2.polylines(frame, [corners], True, (40, 200, 230), 2, cv2.LINE_AA)
    return frame


def _paste(frame: np.ndarray, image: np.ndarray, box, width: int, height: int) -> None:
    x0 = round(box[0] * width)
    y0 = round(box[1] * height)
    h, w = image.shape[:2]
    fx0, fy0 = max(0, x0), max(0, y0)
    fx1, fy1 = min(width, x0 + w), min(height, y0 + h)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    frame[fy0:fy1, fx0:fx1] = image[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]


def _motion_blur(image: np.ndarray, length_px: float) -> np.ndarray:
    """The image smeared horizontally over ``length_px`` pixels."""
    size = round(length_px)
    if size < 2:
        return image
    kernel = np.full((1, size), 1.0 / size, dtype=np.float32)
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REPLICATE)


def _draw_carrying_hand(frame: np.ndarray, box, from_zone: str, to_zone: str) -> None:
    """A hand holding an item from below, its fingers over the item's lower third."""
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = (box[0] * width, box[1] * height, box[2] * width, box[3] * height)
    item_w, item_h = x1 - x0, y1 - y0
    # The hand trails the item: it pushes it towards the zone it goes to.
    trailing = -1 if zone_centre(to_zone)[0] >= zone_centre(from_zone)[0] else 1
    cx = int((x0 + x1) / 2 + trailing * 0.2 * item_w)
    cy = int(y1 + 0.05 * item_h)
    skin = (120, 150, 200)
    palm = (max(4, int(0.35 * item_w)), max(4, int(0.25 * item_h)))
    cv2.ellipse(frame, (cx, cy), palm, 0, 0, 360, skin, -1)
    finger = (max(2, int(0.06 * item_w)), max(3, int(0.18 * item_h)))
    for index in range(4):
        fx = int(cx - 0.27 * item_w + index * 0.18 * item_w)
        cv2.ellipse(frame, (fx, int(cy - 0.3 * item_h)), finger, 0, 0, 360, skin, -1)


def _draw_hand(frame: np.ndarray, centre: tuple[float, ...], elapsed_s: float) -> None:
    height, width = frame.shape[:2]
    cx = int((centre[0] + 0.05 * math.sin(elapsed_s * 3)) * width)
    cy = int(centre[1] * height)
    skin = (120, 150, 200)
    cv2.ellipse(frame, (cx, cy), (width // 14, height // 7), 15, 0, 360, skin, -1)
    for finger in range(4):
        fx = cx - width // 28 + finger * width // 50
        cv2.ellipse(
            frame, (fx, cy - height // 6), (width // 110, height // 14), 0, 0, 360, skin, -1
        )


def _covered(frame: np.ndarray, t_s: float) -> np.ndarray:
    """A palm or cloth over the lens: the mean colour, heavily blurred, a little noise."""
    tint = frame.reshape(-1, 3).mean(axis=0) * 0.5 + np.array([40, 45, 60])
    covered = np.empty_like(frame)
    covered[:] = np.clip(tint, 0, 255).astype(np.uint8)
    rng = np.random.default_rng(int(t_s * 1000))
    speckle = rng.normal(0, 1.0, frame.shape[:2]).astype(np.float32)
    return np.clip(covered.astype(np.float32) + speckle[..., None], 0, 255).astype(np.uint8)


def _print_barcode_label(image: np.ndarray, code: str) -> np.ndarray:
    """A white label with the code's barcode, printed over the middle of the item."""
    import zxingcpp

    formats = {
        8: zxingcpp.BarcodeFormat.EAN8,
        12: zxingcpp.BarcodeFormat.UPCA,
        13: zxingcpp.BarcodeFormat.EAN13,
    }
    if len(code) not in formats or not code.isdigit():
        raise ValueError("barcode must be 8, 12 or 13 digits")
    symbol = np.asarray(zxingcpp.create_barcode(code, formats[len(code)]).to_image(scale=1))
    height, width = image.shape[:2]
    label_width = int(width * 0.9)
    module_px = max(1, label_width // (symbol.shape[1] + 10))
    bars = cv2.resize(
        symbol,
        (symbol.shape[1] * module_px, max(symbol.shape[0], 30) * module_px // 2),
        interpolation=cv2.INTER_NEAREST,
    )
    out = image.copy()
    label_h = min(height, bars.shape[0] + 2 * module_px * 3)
    label_w = min(width, bars.shape[1] + 2 * module_px * 5)
    y0, x0 = (height - label_h) // 2, (width - label_w) // 2
    out[y0 : y0 + label_h, x0 : x0 + label_w] = 255
    by0 = y0 + (label_h - bars.shape[0]) // 2
    bx0 = x0 + (label_w - bars.shape[1]) // 2
    bh, bw = min(bars.shape[0], height - by0), min(bars.shape[1], width - bx0)
    out[by0 : by0 + bh, bx0 : bx0 + bw] = bars[:bh, :bw, None]
    return out
