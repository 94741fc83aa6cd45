"""Retail barcodes in camera images, decoded with zxing-cpp and normalised like a lane scanner."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import zxingcpp

RETAIL_FORMATS = zxingcpp.BarcodeFormat.AllRetail


@dataclass(frozen=True)
class DecodedBarcode:
    """One barcode: data with UPC-A as 12 digits and UPC-E as 8, and the GTIN-14 if any."""

    data: str
    symbology: str
    gtin: str


def normalise_code(text: str, symbology: str = "", upce: str = "") -> DecodedBarcode:
    """Normalise a decoded text: zxing-cpp reports UPC-A and UPC-E as 13 digits with a leading 0."""
    text = text.strip()
    if not text.isdigit():
        return DecodedBarcode(text, symbology, "")
    if symbology == "UPC-E" and len(upce) == 8:
        # The 13-digit text is the expanded UPC-A: it is the GTIN; the label shows 8 digits.
        return DecodedBarcode(upce, "UPC-E", text.zfill(14) if len(text) <= 14 else "")
    if len(text) == 13 and text[0] == "0":
        return DecodedBarcode(text[1:], "UPC-A", text.zfill(14))
    if len(text) in (8, 12, 13, 14):
        return DecodedBarcode(text, symbology, text.zfill(14))
    return DecodedBarcode(text, symbology, "")


def _normalise(result) -> DecodedBarcode:
    symbology = str(result.format)
    extra = result.extra if isinstance(result.extra, dict) else {}
    return normalise_code(result.text, symbology, str(extra.get("UPCE", "")))


def _attempts(grey: np.ndarray) -> Iterator[tuple[np.ndarray, dict]]:
    """Ways to look at an image, cheapest first; each later one rescued some ZXing test photos."""
    yield grey, {}
    if max(grey.shape) < 1400:
        yield cv2.resize(grey, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC), {}
        yield cv2.resize(grey, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC), {}
    yield cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(grey), {}
    blurred = cv2.GaussianBlur(grey, (0, 0), 3)
    yield cv2.addWeighted(grey, 1.5, blurred, -0.5, 0), {}
    yield grey, {"binarizer": zxingcpp.Binarizer.FixedThreshold}
    yield (
        cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 31, 5),
        {},
    )


def decode_barcodes(image: np.ndarray, effort: str = "normal") -> list[DecodedBarcode]:
    """Retail barcodes in a BGR or grey image.

    ``effort``: "fast" looks once; "normal" retries enhanced copies until something
    decodes; "exhaustive" tries every copy and returns everything found (an image may
    hold several codes, such as a price sticker next to the product code).
    """
    if effort not in ("fast", "normal", "exhaustive"):
        raise ValueError(f"unknown effort {effort!r}")
    if image.size == 0:
        return []
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    found: dict[DecodedBarcode, None] = {}
    for attempt, options in _attempts(grey):
        # zxing-cpp's stubs want BarcodeFormats; the AllRetail flag set is accepted as is.
        results = zxingcpp.read_barcodes(attempt, formats=RETAIL_FORMATS, **options)  # type: ignore[arg-type]
        found.update(dict.fromkeys(_normalise(result) for result in results))
        if effort == "fast" or (found and effort == "normal"):
            break
    return list(found)


# -- `lanesight eval barcodes DIR` ------------------------------------------------------


@dataclass
class FolderScore:
    """Decode results of one folder."""

    images: int = 0
    decoded: int = 0
    wrong: int = 0
    seconds: float = 0.0
    misses: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.decoded / self.images if self.images else 0.0


def find_labelled_images(root: Path) -> list[tuple[Path, str]]:
    """Every ``N.png`` with an ``N.txt`` beside it under root (recursively), sorted."""
    pairs = []
    for image_path in sorted(root.rglob("*.png")):
        text_path = image_path.with_suffix(".txt")
        if text_path.is_file():
            pairs.append((image_path, text_path.read_text(encoding="utf-8").strip()))
    return pairs


def evaluate_barcode_folder(root: Path, effort: str = "exhaustive") -> dict[str, FolderScore]:
    """Decode every labelled image; scores per folder (relative to root) in sorted order."""
    root = Path(root)
    scores: dict[str, FolderScore] = {}
    for image_path, expected_text in find_labelled_images(root):
        folder = str(image_path.parent.relative_to(root)) or "."
        score = scores.setdefault(folder, FolderScore())
        expected = normalise_code(expected_text)
        started = time.perf_counter()
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        found = decode_barcodes(image, effort) if image is not None else []
        score.seconds += time.perf_counter() - started
        score.images += 1
        if any(code.data == expected.data for code in found):
            score.decoded += 1
        else:
            score.misses.append(image_path.name)
            score.wrong += bool(found)
    return scores


def format_barcode_report(scores: dict[str, FolderScore]) -> str:
    """A table of decode rate per folder and in total."""
    lines = [f"{'folder':<24} {'images':>6} {'decoded':>7} {'rate':>7} {'wrong':>5} {'ms/img':>7}"]
    total = FolderScore()
    for folder, score in scores.items():
        lines.append(_row(folder, score))
        total.images += score.images
        total.decoded += score.decoded
        total.wrong += score.wrong
        total.seconds += score.seconds
    lines.append(_row("total", total))
    return "\n".join(lines)


def _row(name: str, score: FolderScore) -> str:
    ms = 1000 * score.seconds / score.images if score.images else 0.0
    return (
        f"{name:<24} {score.images:>6} {score.decoded:>7} {score.rate:>7.1%} "
        f"{score.wrong:>5} {ms:>7.1f}"
    )
