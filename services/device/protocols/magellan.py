"""Datalogic Magellan single-cable protocol: scanner labels (S08) and scale replies (S11, S14)."""

from __future__ import annotations

from decimal import Decimal

from lanesight.device.protocols.framing import DelimitedFrameReader, ParseError, parse_error
from lanesight.device.protocols.scale_types import (
    MG_PER_G,
    MG_PER_LB,
    ScaleFlag,
    ScaleObservation,
    ScaleStatus,
    to_mg,
)
from lanesight.device.protocols.scanner import ScanFrame, split_scan_text

DEFAULT_PREFIX = b"S"
DEFAULT_SUFFIX = b"\r"

#: Magellan label id -> (symbology name, the AIM identifier it corresponds to).
#: A, E, F, FF and R4 as Datalogic's Magellan "Data Format Requirements" tables give them
#: (UPC-E is number system + 6 digits + check, 8 in all; a 2/5-digit add-on or a Code 128
#: 8100-8102 supplement follows the main code). Label ids are configurable on the scanner.
LABEL_IDS: dict[str, tuple[str, str]] = {
    "FF": ("EAN-8", "]E4"),
    "B1": ("Code 39", "]A0"),
    "B2": ("ITF", "]I0"),
    "B3": ("Code 128", "]C0"),
    "R4": ("GS1 DataBar", "]e0"),
    "RX": ("GS1 DataBar Expanded", "]e0"),
    "A": ("UPC-A", "]E0"),
    "E": ("UPC-E", "]E0"),
    "F": ("EAN-13", "]E0"),
}
# Two-character ids first, so "FF" is not read as "F" + data "F...".
_LABEL_ORDER = sorted(LABEL_IDS, key=len, reverse=True)

_MONITOR = {
    "0": (ScaleStatus.NOT_ZEROED, ScaleFlag.CANNOT_FIND_ZERO),
    "1": (ScaleStatus.IN_MOTION, ScaleFlag.MOTION),
    "2": (ScaleStatus.OVER_CAPACITY, ScaleFlag.OVER_CAPACITY),
    "3": (ScaleStatus.ZERO, ScaleFlag.AT_ZERO),
    "5": (ScaleStatus.UNDER_ZERO, ScaleFlag.UNDER_ZERO),
}

MagellanItem = ScanFrame | ScaleObservation | ParseError


def weight_digits_to_mg(digits: str) -> int | None:
    """4 digits are hundredths of a pound, 5 digits are grams; anything else is None."""
    if not digits.isdigit() or not digits.isascii():
        return None
    if len(digits) == 4:
        return to_mg(Decimal(digits) / 100, MG_PER_LB)
    if len(digits) == 5:
        return to_mg(Decimal(digits), MG_PER_G)
    return None


def decode_message(offset: int, message: bytes, raw: bytes) -> MagellanItem:
    """Decode one message without its prefix and suffix, for example b"08A012345678905"."""
    if message.startswith(b"08"):
        label = split_scan_text(offset, message[2:])
        if isinstance(label, ParseError):
            return parse_error(offset, raw, label.reason)
        if label.symbology_identifier:
            return parse_error(offset, raw, "AIM identifier inside Magellan framing")
        for label_id in _LABEL_ORDER:
            if label.data.startswith(label_id) and len(label.data) > len(label_id):
                name, aim = LABEL_IDS[label_id]
                return ScanFrame(offset, label.data[len(label_id) :], aim, label_id)
        return parse_error(offset, raw, "unknown Magellan label id")
    try:
        text = message.decode("ascii")
    except UnicodeDecodeError:
        return parse_error(offset, raw, "scale reply is not ASCII")
    if text.startswith("11"):
        weight_mg = weight_digits_to_mg(text[2:])
        if weight_mg is None:
            return parse_error(offset, raw, "S11 weight must be 4 (0.01 lb) or 5 (g) digits")
        status = ScaleStatus.ZERO if weight_mg == 0 else ScaleStatus.STABLE
        return ScaleObservation(offset, status, weight_mg)
    if text.startswith("14") and len(text) >= 3:
        code, rest = text[2], text[3:]
        if code == "4":
            weight_mg = weight_digits_to_mg(rest)
            if weight_mg is None:
                return parse_error(offset, raw, "S144 weight must be 4 (0.01 lb) or 5 (g) digits")
            status = ScaleStatus.ZERO if weight_mg == 0 else ScaleStatus.STABLE
            return ScaleObservation(offset, status, weight_mg)
        if code in _MONITOR and not rest:
            status, flag = _MONITOR[code]
            weight = 0 if status is ScaleStatus.ZERO else None
            return ScaleObservation(offset, status, weight, False, frozenset({flag}))
        return parse_error(offset, raw, "unknown S14 scale monitor status")
    return parse_error(offset, raw, "unknown Magellan message")


class MagellanParser:
    """Parses a Magellan single-cable stream: labels and scale replies on one port."""

    def __init__(
        self,
        prefix: bytes = DEFAULT_PREFIX,
        suffix: bytes = DEFAULT_SUFFIX,
        max_frame_bytes: int = 4096,
    ) -> None:
        self._prefix = prefix
        self._suffix = suffix
        self._reader = DelimitedFrameReader(
            terminators=suffix, start=prefix, max_frame_bytes=max_frame_bytes
        )

    def feed(self, data: bytes) -> list[MagellanItem]:
        """Consume bytes; return labels, scale replies and errors in order."""
        out: list[MagellanItem] = []
        for item in self._reader.feed(data):
            if isinstance(item, ParseError):
                out.append(item)
            else:
                raw = self._prefix + item.payload + self._suffix
                out.append(decode_message(item.offset, item.payload, raw))
        return out

    def flush(self) -> list[ParseError]:
        """Report a partial frame left over."""
        return self._reader.flush()

    @property
    def idle(self) -> bool:
        """True when nothing partial is buffered."""
        return self._reader.idle


CMD_WEIGHT = b"S11\r"
CMD_MONITOR = b"S14\r"


def encode_label(label_id: str, data: str) -> bytes:
    """The bytes a Magellan scanner sends for a label (simulator and tests)."""
    return b"S08" + label_id.encode() + data.encode() + b"\r"


def encode_weight_digits(weight_mg: int, unit: str) -> str:
    """Weight as Magellan digits: 5 digits of grams, or 4 of hundredths of a pound."""
    if unit == "g":
        return f"{round(weight_mg / 1000):05d}"
    return f"{round(Decimal(weight_mg) / MG_PER_LB * 100):04d}"
