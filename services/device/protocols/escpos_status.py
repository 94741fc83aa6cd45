"""ESC/POS real-time status (DLE EOT n) and paper/drawer status (GS r n), decoded by hand.

python-escpos returns status replies unchecked and calls a silent printer "adequate";
here every reply byte is checked and no answer means unknown.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

DLE_EOT = b"\x10\x04"
GS_R = b"\x1dr"

STATUS_PRINTER = 1
STATUS_OFFLINE_CAUSE = 2
STATUS_ERROR_CAUSE = 3
STATUS_ROLL_PAPER = 4
ALL_STATUS_QUERIES = (STATUS_PRINTER, STATUS_OFFLINE_CAUSE, STATUS_ERROR_CAUSE, STATUS_ROLL_PAPER)

# Every DLE EOT reply has the form 0xx1xx10: bits 0, 4, 7 are 0 and bits 1, 4 are 1.
_FIXED_MASK = 0b1001_0011
_FIXED_VALUE = 0b0001_0010


class PaperState(enum.Enum):
    """The paper roll as the printer reports it; UNKNOWN when it did not answer."""

    UNKNOWN = "unknown"
    ADEQUATE = "adequate"
    NEAR_END = "near_end"
    OUT = "out"


class DrawerOpenLevel(enum.Enum):
    """Which level of the drawer-kick connector's pin 3 means the drawer is open."""

    HIGH = "high"
    LOW = "low"


def status_query(n: int) -> bytes:
    """The DLE EOT n command."""
    if n not in ALL_STATUS_QUERIES:
        raise ValueError(f"DLE EOT n must be 1..4, got {n}")
    return DLE_EOT + bytes([n])


def is_status_reply(value: int) -> bool:
    """True when a byte has the fixed bits of a DLE EOT reply."""
    return value & _FIXED_MASK == _FIXED_VALUE


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    """The printer's state from DLE EOT 1..4; ``reachable`` False means everything is unknown."""

    reachable: bool
    offline: bool | None = None
    cover_open: bool | None = None
    paper: PaperState = PaperState.UNKNOWN
    error: bool | None = None
    drawer_pin3_high: bool | None = None
    feed_button: bool | None = None
    paper_end_stop: bool | None = None
    cutter_error: bool | None = None
    unrecoverable_error: bool | None = None
    auto_recoverable_error: bool | None = None
    detail: str = ""

    def drawer_open(self, open_level: DrawerOpenLevel) -> bool | None:
        """Whether the drawer is open, given which pin 3 level means open; None if unknown."""
        if self.drawer_pin3_high is None:
            return None
        return self.drawer_pin3_high == (open_level is DrawerOpenLevel.HIGH)


UNKNOWN = PrinterStatus(reachable=False, detail="no answer")


class StatusReplyError(ValueError):
    """A status reply byte that does not have the form 0xx1xx10."""


def _check(n: int, value: int) -> None:
    if not is_status_reply(value):
        raise StatusReplyError(f"DLE EOT {n} reply 0x{value:02x} is not of the form 0xx1xx10")


def decode_status_replies(replies: dict[int, int | None]) -> PrinterStatus:
    """Combine the replies to DLE EOT 1..4 (None = no answer) into one status.

    Any missing reply makes the whole status unknown: a printer that stops answering
    is not "fine". Raises StatusReplyError for a byte with the wrong fixed bits.
    """
    missing = [n for n in ALL_STATUS_QUERIES if replies.get(n) is None]
    if missing:
        return PrinterStatus(reachable=False, detail=f"no answer to DLE EOT {missing[0]}")
    printer, offline, errors, paper = (replies[n] for n in ALL_STATUS_QUERIES)
    assert printer is not None and offline is not None and errors is not None and paper is not None
    for n in ALL_STATUS_QUERIES:
        _check(n, replies[n])  # type: ignore[arg-type]  # present: missing returned above
    if paper & 0x60:
        paper_state = PaperState.OUT
    elif paper & 0x0C:
        paper_state = PaperState.NEAR_END
    else:
        paper_state = PaperState.ADEQUATE
    cutter, unrecoverable, auto = bool(errors & 0x08), bool(errors & 0x20), bool(errors & 0x40)
    return PrinterStatus(
        reachable=True,
        offline=bool(printer & 0x08),
        cover_open=bool(offline & 0x04),
        paper=paper_state,
        error=bool(offline & 0x40) or cutter or unrecoverable or auto,
        drawer_pin3_high=bool(printer & 0x04),
        feed_button=bool(offline & 0x08),
        paper_end_stop=bool(offline & 0x20),
        cutter_error=cutter,
        unrecoverable_error=unrecoverable,
        auto_recoverable_error=auto,
    )


def decode_gs_r_paper(value: int | None) -> PaperState:
    """The reply to GS r 1: 0x03 near end, 0x0C out; no answer is unknown."""
    if value is None:
        return PaperState.UNKNOWN
    if value & 0x0C:
        return PaperState.OUT
    if value & 0x03:
        return PaperState.NEAR_END
    return PaperState.ADEQUATE


def decode_gs_r_drawer(value: int | None) -> bool | None:
    """The reply to GS r 2: bit 0 is drawer pin 3 (True = high); no answer is unknown."""
    if value is None:
        return None
    return bool(value & 0x01)


def encode_status_replies(
    *,
    offline: bool = False,
    cover_open: bool = False,
    paper: PaperState = PaperState.ADEQUATE,
    drawer_pin3_high: bool = False,
    error: bool = False,
) -> dict[int, int]:
    """The reply bytes a printer in this state sends to DLE EOT 1..4 (simulator and tests)."""
    base = _FIXED_VALUE
    printer = base | (0x04 if drawer_pin3_high else 0) | (0x08 if offline or cover_open else 0)
    cause = base | (0x04 if cover_open else 0) | (0x20 if paper is PaperState.OUT else 0)
    cause |= 0x40 if error else 0
    errors = base | (0x40 if error else 0)
    roll = base | {PaperState.NEAR_END: 0x0C, PaperState.OUT: 0x60}.get(paper, 0)
    return {
        STATUS_PRINTER: printer,
        STATUS_OFFLINE_CAUSE: cause,
        STATUS_ERROR_CAUSE: errors,
        STATUS_ROLL_PAPER: roll,
    }
