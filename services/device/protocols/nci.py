"""NCI / Weigh-Tronix (NCR 67xx family) scale protocol: CR-terminated commands, LF...ETX replies."""

from __future__ import annotations

import re
from dataclasses import dataclass
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

# Weight and unit; SCP-01 sends ANSI units ("lb", "kg"), NCR-style scales upper case.
_WEIGHT = re.compile(rb" *(-?) *(\d+\.?\d*|\.\d+) *(LB|KG|OZ|G|lb|kg|oz|g)")
# SCP-01 pounds-ounces: <LF>xxlb<SP>xx.xoz<CR>, e.g. "1LB 04.5OZ".
_LB_OZ = re.compile(rb" *(\d+) *(?:LB|lb) +(\d+\.?\d*|\.\d+) *(?:OZ|oz)")
# What a display shows instead of a weight: upper bars (over capacity), lower bars
# (under capacity), middle bars (zeroing error); the status bytes say which.
_NO_WEIGHT = re.compile(rb"[ ^_\-]+(LB|KG|OZ|G|lb|kg|oz|g)?")
_UNITS = {b"LB": MG_PER_LB, b"KG": MG_PER_KG, b"OZ": MG_PER_OZ, b"G": MG_PER_G}
# Status bits (Weigh-Tronix SCP-01 8408-14788-01 as quoted in docs/device.md).
_BYTE1 = ((0x01, ScaleFlag.MOTION), (0x02, ScaleFlag.AT_ZERO))
_BYTE1_ERRORS = ((0x04, ScaleFlag.RAM_ERROR), (0x08, ScaleFlag.EEPROM_ERROR))
_BYTE2 = (
    (0x01, ScaleFlag.UNDER_ZERO),
    (0x02, ScaleFlag.OVER_CAPACITY),
    (0x04, ScaleFlag.ROM_ERROR),
    (0x08, ScaleFlag.CALIBRATION_ERROR),
)
# Byte 3: bits 0-1 the range (low/high), bit 2 net weight, bit 3 initial zero error.
_BYTE3_NET = 0x04
_BYTE3_INITIAL_ZERO_ERROR = 0x08
_MORE_FOLLOWS = 0x40  # bit 6 of byte 2 and later: another status byte follows
_ALWAYS_SET = 0x30  # bits 4 and 5 of every status byte
_STATUS_PREFIX = ord("S")

NciItem = ScaleObservation | UnknownCommand | ParseError


@dataclass(frozen=True, slots=True)
class NciStatus:
    """The decoded status bytes: the flags and whether the weight is net."""

    flags: frozenset[ScaleFlag]
    net: bool = False


def decode_status_bytes(chars: bytes) -> NciStatus | str:
    """Decode two or more status bytes; a string says why they are malformed.

    There are at least two; bit 6 of the second and every later byte announces one
    more. Bit 7 is parity on 7-bit lines and is ignored.
    """
    if len(chars) < 2:
        return "status needs at least two status bytes"
    values = [byte & 0x7F for byte in chars]
    for index, value in enumerate(values):
        if value & _ALWAYS_SET != _ALWAYS_SET:
            return f"status byte {index + 1} (0x{chars[index]:02x}) lacks bits 4 and 5"
    expected = 2
    while expected <= len(values) and values[expected - 1] & _MORE_FOLLOWS:
        expected += 1
    if len(values) != expected:
        return f"status has {len(values)} bytes, the bytes announce {expected}"
    first, second = values[0], values[1]
    flags = {flag for bit, flag in (*_BYTE1, *_BYTE1_ERRORS) if first & bit}
    flags |= {flag for bit, flag in _BYTE2 if second & bit}
    net = False
    if len(values) >= 3:
        net = bool(values[2] & _BYTE3_NET)
        if values[2] & _BYTE3_INITIAL_ZERO_ERROR:
            flags.add(ScaleFlag.CANNOT_FIND_ZERO)
    return NciStatus(frozenset(flags), net)


def decode_status(chars: bytes) -> frozenset[ScaleFlag] | str:
    """The flags of the status bytes; a string says why they are malformed."""
    status = decode_status_bytes(chars)
    return status if isinstance(status, str) else status.flags


def _status_chars(line: bytes, prefix: bool | None) -> bytes | str:
    """The status bytes of a status line, with or without the "S" prefix.

    "S" (0x53) has bit 5 clear, so it is never a status byte: detection is exact.
    """
    has_prefix = line[:1] == b"S"
    if prefix is None or prefix == has_prefix:
        return line[1:] if has_prefix else line
    return "status line must start with S" if prefix else "status line must not start with S"


def _weight_mg(line: bytes) -> int | None | str:
    """Milligrams of a weight line; None when the display shows bars; a string when bad."""
    match = _WEIGHT.fullmatch(line)
    if match is not None:
        if match.group(1):
            return None  # negative: the status bytes carry under zero
        return to_mg(Decimal(match.group(2).decode()), _UNITS[match.group(3).upper()])
    match = _LB_OZ.fullmatch(line)
    if match is not None:
        pounds, ounces = Decimal(match.group(1).decode()), Decimal(match.group(2).decode())
        if ounces >= 16:
            return "ounces of a lb-oz weight must be below 16"
        return to_mg(pounds * 16 + ounces, MG_PER_OZ)
    if _NO_WEIGHT.fullmatch(line):
        return None
    return "weight is not a number followed by LB, KG, OZ or G, nor lb-oz"


def decode_frame(offset: int, payload: bytes, status_prefix: bool | None = None) -> NciItem:
    """Decode what is between LF and ETX.

    ``status_prefix``: True for the "S"-prefixed status line, False for SCP-01 without
    it, None to accept both.
    """
    raw = LF + payload + ETX
    if not payload.endswith(CR):
        return parse_error(offset, raw, "reply must end with CR ETX")
    lines = payload[:-1].split(CR + LF)
    if lines == [b"?"]:
        return UnknownCommand(offset)
    if len(lines) > 2:
        return parse_error(offset, raw, "reply is not [weight CR LF] status CR ETX")
    chars = _status_chars(lines[-1], status_prefix)
    if isinstance(chars, str):
        return parse_error(offset, raw, chars)
    status = decode_status_bytes(chars)
    if isinstance(status, str):
        return parse_error(offset, raw, status)
    flags = status.flags
    problem = contradiction(flags)
    if problem:
        return parse_error(offset, raw, problem)
    weight_mg: int | None = None
    if len(lines) == 2:
        weight = _weight_mg(lines[0])
        if isinstance(weight, str):
            return parse_error(offset, raw, weight)
        weight_mg = weight
    if weight_mg is None:
        # Status only: the weight is negative, moving, over capacity or not zeroed.
        if ScaleFlag.AT_ZERO in flags and len(flags) == 1:
            return ScaleObservation(offset, ScaleStatus.ZERO, 0, status.net, flags)
        state = status_from_flags(flags, None) if flags else ScaleStatus.NOT_ZEROED
        return ScaleObservation(offset, state, None, status.net, flags)
    return ScaleObservation(
        offset, status_from_flags(flags, weight_mg), weight_mg, status.net, flags
    )


class NciParser:
    """Parses what an NCI scale sends; feed it bytes in any split."""

    def __init__(self, max_frame_bytes: int = 64, status_prefix: bool | None = None) -> None:
        self._reader = DelimitedFrameReader(
            terminators=ETX, start=LF, max_frame_bytes=max_frame_bytes
        )
        self._status_prefix = status_prefix

    def feed(self, data: bytes) -> list[NciItem]:
        """Consume bytes; return replies and errors in order."""
        return [
            item
            if isinstance(item, ParseError)
            else decode_frame(item.offset, item.payload, self._status_prefix)
            for item in self._reader.feed(data)
        ]

    def flush(self) -> list[ParseError]:
        """Report a partial frame left over."""
        return self._reader.flush()


def encode_status_chars(flags: frozenset[ScaleFlag], net: bool = False) -> bytes:
    """The status bytes for flags, as a real scale sends them (a third byte when needed)."""
    first = 0x30 | sum(bit for bit, flag in (*_BYTE1, *_BYTE1_ERRORS) if flag in flags)
    second = 0x30 | sum(bit for bit, flag in _BYTE2 if flag in flags)
    third = 0x30 | (_BYTE3_NET if net else 0)
    if ScaleFlag.CANNOT_FIND_ZERO in flags:
        third |= _BYTE3_INITIAL_ZERO_ERROR
    if third == 0x30:
        return bytes([first, second])
    return bytes([first, second | _MORE_FOLLOWS, third])


def encode_weight_text(weight_mg: int, unit: str = "lb") -> bytes:
    """A weight field: "lb" and "kg" with three decimals, "lb-oz" as SCP-01 sends it."""
    if unit == "lb-oz":
        ounces = (Decimal(weight_mg) / MG_PER_OZ).quantize(Decimal("0.1"))
        pounds, rest = divmod(ounces, 16)
        return f"{int(pounds)}LB {rest:04.1f}OZ".encode()
    if unit == "lb":
        return f"{Decimal(weight_mg) / MG_PER_LB:06.3f}LB".encode()
    return f"{Decimal(weight_mg) / MG_PER_KG:06.3f}KG".encode()


def encode_reply(
    weight_mg: int | None,
    flags: frozenset[ScaleFlag],
    unit: str = "lb",
    *,
    net: bool = False,
    status_prefix: bool = True,
) -> bytes:
    """The reply an NCI scale sends to W (simulator and tests); SCP-01 omits the "S"."""
    status = (b"S" if status_prefix else b"") + encode_status_chars(flags, net) + CR
    if weight_mg is None:
        return LF + status + ETX
    return LF + encode_weight_text(weight_mg, unit) + CR + LF + status + ETX


UNKNOWN_COMMAND_REPLY = LF + b"?" + CR + ETX
