"""Barcode scanner framing: CR / CR LF / LF terminated lines with optional AIM identifiers."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lanesight.device.protocols.framing import (
    DEFAULT_MAX_FRAME_BYTES,
    DelimitedFrameReader,
    Frame,
    ParseError,
    parse_error,
)

# ISO/IEC 15424: "]" + symbology code character + modifier character.
_AIM = re.compile(r"\][A-Za-z][0-9A-Za-z]")
# Data a scanner sends is printable text plus GS (FNC1) and the ISO 15434 RS/EOT.
_ALLOWED_CONTROLS = {"\x1d", "\x1e", "\x04"}


@dataclass(frozen=True, slots=True)
class ScanFrame:
    """One label as the scanner framed it, before decoding."""

    offset: int
    data: str
    symbology_identifier: str = ""
    #: The Datalogic Magellan label id ("A", "FF", "B3", ...) when Magellan framing is used.
    magellan_label_id: str = ""


def split_scan_text(offset: int, payload: bytes) -> ScanFrame | ParseError:
    """Decode a frame's bytes and split off an AIM symbology identifier."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return parse_error(offset, payload, "scan data is not valid UTF-8")
    if any(ch < " " and ch not in _ALLOWED_CONTROLS for ch in text) or "\x7f" in text:
        return parse_error(offset, payload, "control character in scan data")
    if text.startswith("]"):
        if not _AIM.match(text):
            return parse_error(offset, payload, "malformed AIM symbology identifier")
        if len(text) == 3:
            return parse_error(offset, payload, "AIM symbology identifier without data")
        return ScanFrame(offset, text[3:], text[:3])
    return ScanFrame(offset, text)


class LineScannerParser:
    """Parses a scanner configured for CR, CR LF or LF terminators (all three accepted)."""

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        self._reader = DelimitedFrameReader(terminators=b"\r\n", max_frame_bytes=max_frame_bytes)

    def feed(self, data: bytes) -> list[ScanFrame | ParseError]:
        """Consume bytes; return the labels and errors found, in order."""
        return [self._decode(item) for item in self._reader.feed(data)]

    def flush(self) -> list[ParseError]:
        """Report a label left without its terminator."""
        return self._reader.flush()

    @property
    def idle(self) -> bool:
        """True when nothing partial is buffered."""
        return self._reader.idle

    @staticmethod
    def _decode(item: Frame | ParseError) -> ScanFrame | ParseError:
        if isinstance(item, ParseError):
            return item
        return split_scan_text(item.offset, item.payload)


def frame_scan(data: str, terminator: str = "cr") -> bytes:
    """The bytes a line scanner sends for data (used by the simulator and tests)."""
    ending = {"cr": b"\r", "crlf": b"\r\n", "lf": b"\n"}[terminator]
    return data.encode("utf-8") + ending
