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


@dataclass(frozen=True)
class _View:
    """One way to look at an image: a transformed copy, its scale, and zxing-cpp options."""

    name: str
    image: np.ndarray
    options: dict = field(default_factory=dict)


def _views(grey: np.ndarray) -> Iterator[_View]:
    """Independent looks at an image, cheapest and most trusted first.

    A misread is a chance event of one look (a ghost from a single scan line, a smudged
    digit at one scale); a real code reads the same in several. Votes across these
    views are what `read_barcodes_voted` accepts or rejects on.
    """
    yield _View("original", grey)
    longest = max(grey.shape)
    for factor in (1.5, 2.0, 0.75, 1.25, 0.5):
        if longest * factor > 2800 or min(grey.shape) * factor < 40:
            continue
        interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
        yield _View(
            f"x{factor}", cv2.resize(grey, None, fx=factor, fy=factor, interpolation=interpolation)
        )
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    yield _View("clahe", clahe.apply(grey))
    if longest * 1.5 <= 2800:
        yield _View(
            "x1.5-clahe",
            clahe.apply(cv2.resize(grey, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)),
        )
    blurred = cv2.GaussianBlur(grey, (0, 0), 3)
    yield _View("sharpened", cv2.addWeighted(grey, 1.5, blurred, -0.5, 0))
    yield _View("smoothed", cv2.GaussianBlur(grey, (0, 0), 1))
    yield _View("fixed-threshold", grey, options={"binarizer": zxingcpp.Binarizer.FixedThreshold})
    yield _View("global-histogram", grey, options={"binarizer": zxingcpp.Binarizer.GlobalHistogram})
    yield _View(
        "adaptive",
        cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 31, 5),
    )


# A read spanning fewer scan lines than this fraction of its width counts half a vote: a
# ghost read from one or two lines is the typical misread (see docs/vision.md).
THIN_READ_HEIGHT_FRACTION = 0.1
MIN_VOTES = 1.5
# A code is rejected when a conflicting code (overlapping it, or differing in at most half
# its digits) has more than 1/MAJORITY of its votes.
MAJORITY = 2.0


@dataclass
class _Candidate:
    code: DecodedBarcode
    votes: float = 0.0
    views: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class VotedRead:
    """What the voting made of one image: accepted codes and the candidates it rejected."""

    accepted: list[DecodedBarcode]
    rejected: list[DecodedBarcode]
    votes: dict[str, float]


def _vote_weight(result) -> float:
    """1 for a read spanning many scan lines, 0.5 for a thin one (its height is under
    THIN_READ_HEIGHT_FRACTION of its width, in any view's pixels)."""
    position = result.position
    top_left, top_right, bottom_left = position.top_left, position.top_right, position.bottom_left
    width = float(np.hypot(top_right.x - top_left.x, top_right.y - top_left.y))
    height = float(np.hypot(bottom_left.x - top_left.x, bottom_left.y - top_left.y))
    return 1.0 if height >= THIN_READ_HEIGHT_FRACTION * max(width, 1.0) else 0.5


def codes_conflict(a: str, b: str) -> bool:
    """Two codes that differ in at most half their digits: one is likely a misread of the other.

    Codes are compared as GTIN-14 when both are numeric retail codes. (Overlapping
    positions are no test: stacked codes such as a Japanese book's ISBN and price code sit
    a few scan lines apart.)
    """
    if a.isdigit() and b.isdigit():
        a, b = normalise_code(a).gtin or a, normalise_code(b).gtin or b
    return (
        a != b
        and len(a) == len(b)
        and sum(i != j for i, j in zip(a, b, strict=True)) <= len(a) // 2
    )


def _conflict(a: _Candidate, b: _Candidate) -> bool:
    return codes_conflict(a.code.gtin or a.code.data, b.code.gtin or b.code.data)


def read_barcodes_voted(image: np.ndarray, effort: str = "exhaustive") -> VotedRead:
    """Decode an image in many views and keep only codes that enough views agree on.

    A code is accepted when its votes reach ``MIN_VOTES`` (a thin, few-line read counts
    half) and it has a clear majority (``MAJORITY`` times the votes) over every
    conflicting code. zxing-cpp has already checked each read's check digit; what is left
    are misreads with a valid check digit, which these votes catch. ``effort="normal"``
    stops at the first view after which some code is accepted.
    """
    if image.size == 0:
        return VotedRead([], [], {})
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    candidates: dict[DecodedBarcode, _Candidate] = {}
    accepted: list[DecodedBarcode] = []
    for view in _views(grey):
        # zxing-cpp's stubs want BarcodeFormats; the AllRetail flag set is accepted as is.
        results = zxingcpp.read_barcodes(view.image, formats=RETAIL_FORMATS, **view.options)  # type: ignore[arg-type]
        seen_here: set[DecodedBarcode] = set()
        for result in results:
            code = _normalise(result)
            if code in seen_here:
                continue
            seen_here.add(code)
            weight = _vote_weight(result)
            candidate = candidates.setdefault(code, _Candidate(code))
            candidate.votes += weight
            candidate.views.append(view.name)
        accepted = _accepted(candidates)
        if effort == "normal" and accepted:
            break
    rejected = [code for code in candidates if code not in accepted]
    return VotedRead(accepted, rejected, {c.code.data: c.votes for c in candidates.values()})


def _accepted(candidates: dict[DecodedBarcode, _Candidate]) -> list[DecodedBarcode]:
    kept = []
    for candidate in candidates.values():
        if candidate.votes < MIN_VOTES:
            continue
        if any(
            other is not candidate
            and other.code.data != candidate.code.data
            and candidate.votes < MAJORITY * other.votes
            and _conflict(candidate, other)
            for other in candidates.values()
        ):
            continue
        kept.append(candidate.code)
    return kept


def decode_barcodes(image: np.ndarray, effort: str = "normal") -> list[DecodedBarcode]:
    """Retail barcodes in a BGR or grey image.

    ``effort``: "fast" looks once and returns every read (a lane confirms it across
    frames, see ``LaneAnalyzer``); "normal" looks in more views until some code is
    confirmed by the views so far; "exhaustive" tries every view and returns every code
    confirmed by all of them (an image may hold several, such as a price sticker next to
    the product code). Both return only codes with enough votes and a clear majority over
    any conflicting read.
    """
    if effort not in ("fast", "normal", "exhaustive"):
        raise ValueError(f"unknown effort {effort!r}")
    if image.size == 0:
        return []
    if effort == "fast":
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        results = zxingcpp.read_barcodes(grey, formats=RETAIL_FORMATS)  # type: ignore[arg-type]
        return list(dict.fromkeys(_normalise(result) for result in results))
    return read_barcodes_voted(image, effort).accepted


# -- `lanesight eval barcodes DIR` ------------------------------------------------------


@dataclass
class FolderScore:
    """Decode results of one folder."""

    images: int = 0
    decoded: int = 0
    wrong: int = 0
    rejected: int = 0
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
    """Decode every labelled image; scores per folder (relative to root) in sorted order.

    Per image: decoded (the expected code was accepted), wrong (not it, but another code
    was accepted: what would accuse a shopper), rejected (nothing accepted, but the
    voting turned down some read), or nothing read at all.
    """
    root = Path(root)
    scores: dict[str, FolderScore] = {}
    for image_path, expected_text in find_labelled_images(root):
        folder = str(image_path.parent.relative_to(root)) or "."
        score = scores.setdefault(folder, FolderScore())
        expected = normalise_code(expected_text)
        started = time.perf_counter()
        image = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
        read = read_barcodes_voted(image, effort) if image is not None else VotedRead([], [], {})
        score.seconds += time.perf_counter() - started
        score.images += 1
        if any(code.data == expected.data for code in read.accepted):
            score.decoded += 1
        else:
            score.misses.append(image_path.name)
            if read.accepted:
                score.wrong += 1
            elif read.rejected:
                score.rejected += 1
    return scores


def format_barcode_report(scores: dict[str, FolderScore]) -> str:
    """A table of decode rate per folder and in total."""
    lines = [
        f"{'folder':<24} {'images':>6} {'decoded':>7} {'rate':>7} {'wrong':>5} "
        f"{'rejected':>8} {'ms/img':>7}"
    ]
    total = FolderScore()
    for folder, score in scores.items():
        lines.append(_row(folder, score))
        total.images += score.images
        total.decoded += score.decoded
        total.wrong += score.wrong
        total.rejected += score.rejected
        total.seconds += score.seconds
    lines.append(_row("total", total))
    return "\n".join(lines)


def _row(name: str, score: FolderScore) -> str:
    ms = 1000 * score.seconds / score.images if score.images else 0.0
    return (
        f"{name:<24} {score.images:>6} {score.decoded:>7} {score.rate:>7.1%} "
        f"{score.wrong:>5} {score.rejected:>8} {ms:>7.1f}"
    )
