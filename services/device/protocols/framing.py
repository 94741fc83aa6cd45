"""Byte framing shared by the device parsers: parse errors with offsets, delimited frames."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

#: How many bytes of a bad frame are kept for the parse-error event.
MAX_RAW_KEPT = 64
#: The default longest frame any lane device sends; longer runs are garbage.
DEFAULT_MAX_FRAME_BYTES = 4096


@dataclass(frozen=True, slots=True)
class ParseError:
    """Bytes a parser could not make sense of; returned by ``feed``, never raised.

    ``offset`` is the position of the first bad byte among every byte fed to the
    parser since it was created (one connection). ``raw`` keeps at most
    ``MAX_RAW_KEPT`` bytes; ``raw_length`` counts them all.
    """

    offset: int
    raw: bytes
    raw_length: int
    reason: str

    @property
    def raw_hex(self) -> str:
        """The kept bytes as lowercase hex."""
        return self.raw.hex()

    def __str__(self) -> str:
        return f"{self.reason} at byte {self.offset}: {self.raw_hex} ({self.raw_length} bytes)"


def parse_error(offset: int, raw: bytes | bytearray, reason: str, length: int = -1) -> ParseError:
    """A ParseError keeping at most MAX_RAW_KEPT bytes of raw."""
    return ParseError(offset, bytes(raw[:MAX_RAW_KEPT]), len(raw) if length < 0 else length, reason)


@dataclass(frozen=True, slots=True)
class Frame:
    """One delimited frame: its payload without delimiters and where it started."""

    offset: int
    payload: bytes


class _Run:
    """A run of bytes being collected, keeping only the first MAX_RAW_KEPT for errors."""

    __slots__ = ("length", "offset", "head")

    def __init__(self, offset: int) -> None:
        self.offset = offset
        self.length = 0
        self.head = bytearray()

    def add(self, chunk: bytes) -> None:
        if len(self.head) < MAX_RAW_KEPT:
            self.head += chunk[: MAX_RAW_KEPT - len(self.head)]
        self.length += len(chunk)

    def error(self, reason: str) -> ParseError:
        return ParseError(self.offset, bytes(self.head), self.length, reason)


class DelimitedFrameReader:
    """Splits a byte stream into frames that end with a terminator byte.

    With a ``start`` byte, frames begin at it and anything between frames is
    garbage (reported as one ParseError per run). Without one, every byte belongs
    to a line and empty lines are ignored. A frame longer than ``max_frame_bytes``
    is reported once and skipped up to its terminator, so memory stays bounded
    whatever the device sends. Feeding the same bytes in any split gives the same
    result.
    """

    def __init__(
        self,
        *,
        terminators: bytes,
        start: bytes | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        restart_on_start: bool = False,
    ) -> None:
        if start is not None and len(start) != 1:
            raise ValueError("start must be one byte")
        if not terminators:
            raise ValueError("at least one terminator byte is needed")
        self._terminators = terminators
        self._start = start
        self._max = max_frame_bytes
        self._restart = restart_on_start and start is not None
        self._offset = 0  # stream offset of data[0] in the current feed
        self._frame: bytearray | None = None  # payload collected so far
        self._frame_offset = 0
        self._discarding: _Run | None = None  # an over-long frame being skipped
        self._garbage: _Run | None = None

    @property
    def bytes_fed(self) -> int:
        """How many bytes were fed so far."""
        return self._offset

    def _find_terminator(self, data: bytes, pos: int) -> int:
        best = -1
        for byte in self._terminators:
            idx = data.find(byte, pos)
            if idx != -1 and (best == -1 or idx < best):
                best = idx
        return best

    def _flush_garbage(self, out: list) -> None:
        if self._garbage is not None:
            if self._garbage.length <= self._max:  # longer runs were reported at the bound
                out.append(self._garbage.error("bytes outside a frame"))
            self._garbage = None

    def feed(self, data: bytes) -> list[Frame | ParseError]:
        """Consume bytes; return the complete frames and errors found, in order."""
        return self.feed_until(data)[0]

    def skip(self, count: int) -> None:
        """Count bytes that another decoder consumed, so offsets stay absolute."""
        self._offset += count

    def feed_until(
        self, data: bytes, stop_after: Callable[[Frame], bool] | None = None
    ) -> tuple[list[Frame | ParseError], int]:
        """Like feed, but stop right after a frame for which stop_after is true.

        Returns the items and how many bytes of data were consumed.
        """
        out: list[Frame | ParseError] = []
        pos, end = 0, len(data)
        base = self._offset
        while pos < end:
            if self._discarding is not None:
                idx = self._find_terminator(data, pos)
                if idx == -1:
                    self._discarding.add(data[pos:])
                    pos = end
                else:
                    self._discarding = None
                    pos = idx + 1
                continue
            if self._frame is None:
                if self._start is None:
                    self._frame = bytearray()
                    self._frame_offset = base + pos
                else:
                    idx = data.find(self._start, pos)
                    stop = end if idx == -1 else idx
                    if pos < stop:  # garbage: one error per run, reported by the bound
                        if self._garbage is None:
                            self._garbage = _Run(base + pos)
                        room = self._max + 1 - self._garbage.length
                        if 0 < room <= stop - pos:
                            self._garbage.add(data[pos : pos + room])
                            out.append(self._garbage.error("bytes outside a frame"))
                            pos += room
                        self._garbage.add(data[pos:stop])
                        pos = stop
                    if idx == -1:
                        break
                    self._flush_garbage(out)
                    self._frame = bytearray()
                    self._frame_offset = base + idx
                    pos = idx + 1
                    continue
            idx = self._find_terminator(data, pos)
            if self._restart:
                restart = data.find(self._start, pos, end if idx == -1 else idx)
                if restart != -1:
                    self._frame += data[pos:restart]
                    out.append(
                        parse_error(
                            self._frame_offset,
                            self._start + bytes(self._frame),
                            "truncated frame (a new frame began)",
                        )
                    )
                    self._frame = bytearray()
                    self._frame_offset = base + restart
                    pos = restart + 1
                    continue
            stop = end if idx == -1 else idx
            room = self._max - len(self._frame)
            if stop - pos > room:
                self._frame += data[pos : pos + room]
                run = _Run(self._frame_offset)
                run.add((self._start or b"") + bytes(self._frame))
                run.add(data[pos + room : pos + room + 1])
                out.append(run.error(f"frame longer than {self._max} bytes"))
                self._frame = None
                self._discarding = run
                pos = pos + room + 1
                continue
            self._frame += data[pos:stop]
            if idx == -1:
                pos = end
                continue
            payload = bytes(self._frame)
            self._frame = None
            pos = idx + 1
            if self._start is None and not payload:
                continue  # empty line, e.g. the LF of CR LF
            frame = Frame(self._frame_offset, payload)
            out.append(frame)
            if stop_after is not None and stop_after(frame):
                end = pos
        self._offset += end
        return out, end

    def flush(self) -> list[ParseError]:
        """Report a partial frame or garbage left over (the line went quiet or closed)."""
        out: list[ParseError] = []
        self._flush_garbage(out)
        if self._frame is not None:
            if self._frame or self._start is not None:
                out.append(
                    parse_error(
                        self._frame_offset,
                        (self._start or b"") + bytes(self._frame),
                        "truncated frame (no terminator)",
                    )
                )
            self._frame = None
        self._discarding = None
        return out

    @property
    def idle(self) -> bool:
        """True when no partial frame or garbage is pending."""
        return self._frame is None and self._garbage is None and self._discarding is None
