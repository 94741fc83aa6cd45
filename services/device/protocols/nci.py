"""NCI / Weigh-Tronix (NCR 67xx family) scale protocol: CR-terminated commands, LF...ETX replies."""

from __future__ import annotations

import re
from decimal import Decimal

from lanesight.device.protocols.framing import DelimitedFrameReader, ParseError, parse_error
from lanesight.device.protocols.scale_types import (
    MG_PER_G,
    MG_PER_KG,
    MG_PER_LB,
    MG_PER_OZ,
    ScaleFlag,
    ScaleObservation,
    ScaleStatus,
    UnknownCommand,
    contradiction,
    status_from_flags,
    to_mg,
)

LF = b"\n"
CR = b"\r"
ETX = b"\x03"

CMD_WEIGHT = b"W\r"
CMD_STATUS = b"S\r"
CMD_ZERO = b"Z\r"

_WEIGHT = re.compile(rb" *(\d+\.?\d*|\.\d+) *(LB|KG|OZ|G|lb|kg|oz|g)")
_UNITS = {b"LB": MG_PER_LB, b"KG": MG_PER_KG, b"OZ": MG_PER_OZ, b"G": MG_PER_G}
_BYTE1 = ((0x01, ScaleFlag.MOTION), (0x02, ScaleFlag.AT_ZERO))
_BYTE1_ERRORS = ((0x04, ScaleFlag.RAM_ERROR), (0x08, ScaleFlag.EEPROM_ERROR))
_BYTE2 = (
    (0x01, ScaleFlag.UNDER_ZERO),
    (0x02, ScaleFlag.OVER_CAPACITY),
    (0x04, ScaleFlag.ROM_ERROR),
    (0x08, ScaleFlag.CALIBRATION_ERROR),
)
_MORE_FOLLOWS = 0x40

NciItem = ScaleObservation | UnknownCommand | ParseError


def decode_status(chars: bytes) -> frozenset[ScaleFlag] | str:
    """The flags of the status bytes after "S"; a string says why they are malformed."""
    if len(chars) < 2:
        return "status needs two status bytes"
    expected = 3 if chars[1] & _MORE_FOLLOWS else 2
    if len(chars) != expected:
        return f"status has {len(chars)} bytes, byte 2 announces {expected}"
    flags = {flag for bit, flag in (*_BYTE1, *_BYTE1_ERRORS) if chars[0] & bit}
    flags |= {flag for bit, flag in _BYTE2 if chars[1] & bit}
    return frozenset(flags)


def decode_frame(offset: int, payload: bytes) -> NciItem:
    """Decode what is between LF and ETX."""
    raw = LF + payload + ETX
    if not payload.endswith(CR):
        return parse_error(offset, raw, "reply must end with CR ETX")
    lines = payload[:-1].split(CR + LF)
    if lines == [b"?"]:
        return UnknownCommand(offset)
    status_line = lines[-1]
    if len(lines) > 2 or not status_line.startswith(b"S"):
        return parse_error(offset, raw, "reply is not [weight CR LF] S status CR ETX")
    flags = decode_status(status_line[1:])
    if isinstance(flags, str):
        return parse_error(offset, raw, flags)
    problem = contradiction(flags)
    if problem:
        return parse_error(offset, raw, problem)
    if len(lines) == 1:
        # Status only: the weight is negative, moving, over capacity or not zeroed.
        if ScaleFlag.AT_ZERO in flags and len(flags) == 1:
            return ScaleObservation(offset, ScaleStatus.ZERO, 0, False, flags)
        status = status_from_flags(flags, None)
        if not flags:
            status = ScaleStatus.NOT_ZEROED
        return ScaleObservation(offset, status, None, False, flags)
    match = _WEIGHT.fullmatch(lines[0])
    if match is None:
        return parse_error(offset, raw, "weight is not a number followed by LB, KG, OZ or G")
    weight_mg = to_mg(Decimal(match.group(1).decode()), _UNITS[match.group(2).upper()])
    return ScaleObservation(offset, status_from_flags(flags, weight_mg), weight_mg, False, flags)


class NciParser:
    """Parses what an NCI scale sends; feed it bytes in any split."""

    def __init__(self, max_frame_bytes: int = 64) -> None:
        self._reader = DelimitedFrameReader(
            terminators=ETX, start=LF, max_frame_bytes=max_frame_bytes
        )

    def feed(self, data: bytes) -> list[NciItem]:
        """Consume bytes; return replies and errors in order."""
        return [
            item if isinstance(item, ParseError) else decode_frame(item.offset, item.payload)
            for item in self._reader.feed(data)
        ]

    def flush(self) -> list[ParseError]:
        """Report a partial frame left over."""
        return self._reader.flush()


def encode_status_chars(flags: frozenset[ScaleFlag]) -> bytes:
    """The two status bytes for flags, as ASCII digits like a real scale sends."""
    first = 0x30 | sum(bit for bit, flag in (*_BYTE1, *_BYTE1_ERRORS) if flag in flags)
    second = 0x30 | sum(bit for bit, flag in _BYTE2 if flag in flags)
    return bytes([first, second])


def encode_reply(weight_mg: int | None, flags: frozenset[ScaleFlag], unit: str = "lb") -> bytes:
    """The reply an NCI scale sends to W (simulator and tests)."""
    status = b"S" + encode_status_chars(flags) + CR
    if weight_mg is None:
        return LF + status + ETX
    if unit == "lb":
        text = f"{Decimal(weight_mg) / MG_PER_LB:06.3f}LB"
    else:
        text = f"{Decimal(weight_mg) / MG_PER_KG:06.3f}KG"
    return LF + text.encode() + CR + LF + status + ETX


UNKNOWN_COMMAND_REPLY = LF + b"?" + CR + ETX
