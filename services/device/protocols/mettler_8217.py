"""Mettler Toledo 8217 (Datalogic "SASI") scale protocol: single-byte commands, STX frames."""

from __future__ import annotations

import re
from decimal import Decimal

from lanesight.device.protocols.framing import (
    DelimitedFrameReader,
    Frame,
    ParseError,
    parse_error,
)
from lanesight.device.protocols.scale_types import (
    MG_PER_KG,
    MG_PER_LB,
    EchoAck,
    EchoData,
    ScaleFlag,
    ScaleObservation,
    contradiction,
    status_from_flags,
    to_mg,
)

STX = b"\x02"
CR = b"\r"

# Commands are single bytes with no terminator.
CMD_WEIGHT = b"W"
CMD_ZERO = b"Z"
CMD_TARE = b"T"
CMD_CLEAR_TARE = b"C"
CMD_ECHO = b"E"
CMD_END_ECHO = b"F"

# Mettler Toledo DIVA service manual, 8217 command tables: pounds "WW.WW" (5 characters)
# or "0WW.WW" (6), kilograms "WW.WWW"; an "N" after the weight marks net.
_POUNDS = re.compile(rb"0?\d\d\.\d\d")
_KILOGRAMS = re.compile(rb"\d\d\.\d\d\d")
# Decide the conditions on byte & 0x1F only (protocols.md); bit 5 is net weight and
# bit 6 always 1 (DIVA service manual, "Scale Status Byte Bit Definitions").
_STATUS_NET = 0x20
_STATUS_BITS = (
    (0x01, ScaleFlag.MOTION),
    (0x02, ScaleFlag.OVER_CAPACITY),
    (0x04, ScaleFlag.UNDER_ZERO),
    (0x08, ScaleFlag.OUTSIDE_ZERO_RANGE),
    (0x10, ScaleFlag.CENTER_OF_ZERO),
)

Mettler8217Item = ScaleObservation | EchoAck | EchoData | ParseError


def decode_status_byte(status: int) -> frozenset[ScaleFlag]:
    """The flags of an 8217 status byte (only the low five bits count)."""
    return frozenset(flag for bit, flag in _STATUS_BITS if status & bit)


def decode_frame(offset: int, payload: bytes) -> Mettler8217Item:
    """Decode the payload between STX and CR."""
    raw = STX + payload + CR
    if payload == b"E":
        return EchoAck(offset)
    if payload.startswith(b"?"):
        if len(payload) != 2:
            return parse_error(offset, raw, "status reply must carry exactly one status byte")
        flags = decode_status_byte(payload[1])
        problem = contradiction(flags)
        if problem:
            return parse_error(offset, raw, problem)
        net = bool(payload[1] & _STATUS_NET)
        return ScaleObservation(offset, status_from_flags(flags, None), None, net, flags)
    net = payload.endswith(b"N")
    weight = payload[:-1] if net else payload
    if _KILOGRAMS.fullmatch(weight):
        weight_mg = to_mg(Decimal(weight.decode()), MG_PER_KG)
    elif _POUNDS.fullmatch(weight):
        weight_mg = to_mg(Decimal(weight.decode()), MG_PER_LB)
    else:
        return parse_error(offset, raw, "weight reply is neither dd.ddd kg nor dd.dd / 0dd.dd lb")
    return ScaleObservation(offset, status_from_flags(frozenset(), weight_mg), weight_mg, net)


class Mettler8217Parser:
    """Parses what an 8217 scale sends; feed it bytes in any split.

    After the echo acknowledgement (``STX E CR``) the scale echoes every byte back
    until the driver sends ``F`` and calls ``end_echo``; those bytes come out as
    EchoData instead of garbage.
    """

    def __init__(self, max_frame_bytes: int = 64) -> None:
        self._reader = DelimitedFrameReader(
            terminators=CR, start=STX, max_frame_bytes=max_frame_bytes, restart_on_start=True
        )
        self._echo = False

    def end_echo(self) -> None:
        """The driver sent F: bytes are frames again."""
        self._echo = False

    def feed(self, data: bytes) -> list[Mettler8217Item]:
        """Consume bytes; return replies and errors in order."""
        out: list[Mettler8217Item] = []
        while data:
            if self._echo:
                out.append(EchoData(self._reader.bytes_fed, bytes(data)))
                self._reader.skip(len(data))
                return out
            items, used = self._reader.feed_until(data, lambda frame: frame.payload == b"E")
            for item in items:
                decoded = item if isinstance(item, ParseError) else self._decode(item)
                out.append(decoded)
                if isinstance(decoded, EchoAck):
                    self._echo = True
            data = data[used:]
        return out

    def flush(self) -> list[ParseError]:
        """Report a partial frame left over."""
        return self._reader.flush()

    @staticmethod
    def _decode(frame: Frame) -> Mettler8217Item:
        return decode_frame(frame.offset, frame.payload)


def encode_weight(weight_mg: int, unit: str = "kg", net: bool = False) -> bytes:
    """The weight reply an 8217 scale sends (simulator and tests).

    ``unit``: "kg" (WW.WWW), "lb" (0WW.WW) or "lb5" (the 5-character WW.WW field).
    """
    if unit == "kg":
        text = f"{Decimal(weight_mg) / MG_PER_KG:06.3f}"
    elif unit == "lb5":
        text = f"{Decimal(weight_mg) / MG_PER_LB:05.2f}"
    else:
        text = f"{Decimal(weight_mg) / MG_PER_LB:06.2f}"
    return STX + text.encode() + (b"N" if net else b"") + CR


def encode_status(flags: frozenset[ScaleFlag]) -> bytes:
    """The status reply an 8217 scale sends (the byte has bit 6 set, like a real scale)."""
    value = 0x40
    for bit, flag in _STATUS_BITS:
        if flag in flags:
            value |= bit
    return STX + b"?" + bytes([value]) + CR
