"""Simulated scanner, scales and printer speaking the real wire protocols over an Endpoint."""

from __future__ import annotations

import asyncio
import logging

from lanesight.device.protocols import escpos_status, magellan, mettler_8217, nci
from lanesight.device.protocols.escpos_status import PaperState
from lanesight.device.protocols.scale_types import ScaleFlag
from lanesight.device.protocols.scanner import frame_scan
from lanesight.simulation.devices.endpoints import Endpoint

log = logging.getLogger(__name__)

# AIM identifier -> Magellan label id, for scans sent through Magellan framing.
_LABEL_BY_AIM = {
    "]E4": "FF",
    "]A0": "B1",
    "]I0": "B2",
    "]I1": "B2",
    "]C0": "B3",
    "]C1": "B3",
    "]e0": "R4",  # Datalogic sends DataBar and DataBar Expanded under R4
}
# ]E3 data length -> the main code's length (the rest is a 2/5-digit add-on).
_E3_MAIN_LENGTH = {15: 13, 18: 13, 14: 12, 17: 12, 10: 8, 13: 8}


def magellan_label(data: str) -> tuple[str, str]:
    """(label id, data) for a scan written with an optional AIM prefix."""
    aim, body = (data[:3], data[3:]) if data.startswith("]") else ("", data)
    if aim in _LABEL_BY_AIM:
        return _LABEL_BY_AIM[aim], body
    if aim == "]E0" and len(body) == 8:
        return "E", body  # UPC-E: number system, 6 digits, check
    if aim == "]E3" and len(body) in _E3_MAIN_LENGTH:
        main = _E3_MAIN_LENGTH[len(body)]
        if main == 8:
            return "E", body
        if main == 12 or body.startswith("0"):
            return "A", body[-(12 + len(body) - main) :]
        return "F", body
    if len(body) == 13 and body.startswith("0"):
        return "A", body[1:]  # UPC-A travels as 12 digits
    if len(body) == 12:
        return "A", body
    if len(body) == 8:
        return "FF", body
    return "F", body


class _Device:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        endpoint.on_data = self._on_data

    @property
    def url(self) -> str:
        """The URL the agent's driver connects to."""
        return self.endpoint.url

    async def start(self) -> None:
        """Start listening."""
        await self.endpoint.start()

    async def stop(self) -> None:
        """Stop listening."""
        await self.endpoint.stop()

    def _on_data(self, data: bytes) -> None:
        pass

    async def send_raw(self, data: bytes) -> None:
        """Send arbitrary bytes (garbage, truncated frames) to the driver."""
        self.endpoint.write(data)
        await asyncio.sleep(0)


class SimulatedScanner(_Device):
    """A barcode scanner that sends labels framed with CR, CR LF or Magellan S08."""

    def __init__(self, endpoint: Endpoint, framing: str = "cr") -> None:
        super().__init__(endpoint)
        if framing not in ("cr", "crlf", "lf", "magellan"):
            raise ValueError(f"unknown scanner framing {framing!r}")
        self.framing = framing
        self.scans = 0

    def frame(self, data: str, label_id: str = "") -> bytes:
        """The bytes this scanner sends for data (an AIM prefix like ]E0 is kept as sent)."""
        if self.framing == "magellan":
            guessed, body = magellan_label(data)
            return magellan.encode_label(label_id or guessed, body)
        return frame_scan(data, self.framing)

    async def scan(self, data: str, label_id: str = "") -> bytes:
        """Send one label, for example "]E00012345678905"; returns the bytes sent."""
        frame = self.frame(data, label_id)
        self.scans += 1
        await self.send_raw(frame)
        return frame


class SimulatedScale(_Device):
    """A scale answering 8217, NCI or Magellan requests from its current state.

    ``set_weight`` changes the load; ``stable=False`` reports motion. Zero and tare
    commands from the driver act like a real scale. A Magellan scale also scans.
    """

    def __init__(self, endpoint: Endpoint, protocol: str = "8217", unit: str = "") -> None:
        super().__init__(endpoint)
        if protocol not in ("8217", "nci", "magellan"):
            raise ValueError(f"unknown scale protocol {protocol!r}")
        self.protocol = protocol
        self.unit = unit or {"8217": "kg", "nci": "lb", "magellan": "g"}[protocol]
        self.gross_mg = 0
        self.zero_offset_mg = 0
        self.tare_mg = 0
        self.stable = True
        self.flags: set[ScaleFlag] = set()
        self.responsive = True
        #: NCI: send "S" before the status bytes (False: the SCP-01 form without it).
        self.nci_status_prefix = True
        self.commands: list[bytes] = []
        self.requests = 0
        self._buffer = bytearray()
        self._echo = False

    # -- state the demo and tests drive -----------------------------------------------------

    def set_weight(self, weight_mg: int, stable: bool = True) -> None:
        """Put a load on the scale (gross, before zero and tare)."""
        self.gross_mg = weight_mg
        self.stable = stable

    def set_condition(
        self,
        *,
        over_capacity: bool = False,
        under_zero: bool = False,
        not_zeroed: bool = False,
    ) -> None:
        """Force a status condition (all False clears them)."""
        self.flags = set()
        if over_capacity:
            self.flags.add(ScaleFlag.OVER_CAPACITY)
        if under_zero:
            self.flags.add(ScaleFlag.UNDER_ZERO)
        if not_zeroed:
            self.flags.add(ScaleFlag.OUTSIDE_ZERO_RANGE)

    def set_responsive(self, responsive: bool) -> None:
        """False: the scale stops answering (cable pulled on a serial line)."""
        self.responsive = responsive

    @property
    def displayed_mg(self) -> int:
        """What the scale shows: gross minus the zero offset and the tare."""
        return self.gross_mg - self.zero_offset_mg - self.tare_mg

    async def scan(self, data: str, label_id: str = "") -> bytes:
        """Magellan scanner-scales also send labels on the same port."""
        if self.protocol != "magellan":
            raise ValueError("only a Magellan scanner-scale scans")
        guessed, body = magellan_label(data)
        frame = magellan.encode_label(label_id or guessed, body)
        await self.send_raw(frame)
        return frame

    # -- protocol ---------------------------------------------------------------------------

    def _current_flags(self) -> frozenset[ScaleFlag]:
        flags = set(self.flags)
        if not self.stable:
            flags.add(ScaleFlag.MOTION)
        if self.displayed_mg < 0:
            flags.add(ScaleFlag.UNDER_ZERO)
        return frozenset(flags)

    def _on_data(self, data: bytes) -> None:
        if self.protocol == "8217":
            self._on_8217(data)
            return
        self._buffer += data
        while b"\r" in self._buffer:
            line, _, rest = self._buffer.partition(b"\r")
            self._buffer = bytearray(rest)
            self.commands.append(bytes(line) + b"\r")
            if self.responsive:
                command = bytes(line)
                reply = (
                    self._nci_reply(command) if self.protocol == "nci" else self._magellan(command)
                )
                if reply:
                    self.endpoint.write(reply)

    def _on_8217(self, data: bytes) -> None:
        for value in data:
            byte = bytes([value])
            if self._echo:
                if byte == mettler_8217.CMD_END_ECHO:
                    self._echo = False
                    self.commands.append(byte)
                elif self.responsive:
                    self.endpoint.write(byte)
                continue
            self.commands.append(byte)
            if not self.responsive:
                continue
            if byte == mettler_8217.CMD_WEIGHT:
                self.requests += 1
                self.endpoint.write(self._8217_weight())
            elif byte == mettler_8217.CMD_ZERO:
                self.zero_offset_mg, self.tare_mg = self.gross_mg, 0
            elif byte == mettler_8217.CMD_TARE:
                self.tare_mg = self.gross_mg - self.zero_offset_mg
            elif byte == mettler_8217.CMD_CLEAR_TARE:
                self.tare_mg = 0
            elif byte == mettler_8217.CMD_ECHO:
                self._echo = True
                self.endpoint.write(b"\x02E\r")

    def _8217_weight(self) -> bytes:
        flags = self._current_flags()
        if flags:
            return mettler_8217.encode_status(flags)
        if self.displayed_mg == 0:
            return mettler_8217.encode_status(frozenset({ScaleFlag.CENTER_OF_ZERO}))
        return mettler_8217.encode_weight(self.displayed_mg, self.unit, net=self.tare_mg != 0)

    def _nci_reply(self, line: bytes) -> bytes:
        flags = set(self._current_flags())
        if line == b"Z":
            self.zero_offset_mg, self.tare_mg = self.gross_mg, 0
            line = b"S"
        if line not in (b"W", b"S"):
            return nci.UNKNOWN_COMMAND_REPLY
        self.requests += 1
        if self.displayed_mg == 0 and not flags:
            flags.add(ScaleFlag.AT_ZERO)
        net = self.tare_mg != 0
        prefix = self.nci_status_prefix
        if line == b"S" or flags:
            # NCI reports a zero it cannot capture as "initial zero error" (status byte 3).
            if ScaleFlag.OUTSIDE_ZERO_RANGE in flags:
                flags = (flags - {ScaleFlag.OUTSIDE_ZERO_RANGE}) | {ScaleFlag.CANNOT_FIND_ZERO}
            return nci.encode_reply(None, frozenset(flags), net=net, status_prefix=prefix)
        return nci.encode_reply(
            self.displayed_mg, frozenset(), self.unit, net=net, status_prefix=prefix
        )

    def _magellan(self, line: bytes) -> bytes:
        flags = self._current_flags()
        self.requests += 1
        unit = "g" if self.unit == "g" else "lb"
        if line == b"S11":
            if flags:
                return b""  # S11 is answered only when stable
            return b"S11" + magellan.encode_weight_digits(self.displayed_mg, unit).encode() + b"\r"
        if line == b"S14":
            if ScaleFlag.OVER_CAPACITY in flags:
                code = "2"
            elif ScaleFlag.UNDER_ZERO in flags:
                code = "5"
            elif ScaleFlag.OUTSIDE_ZERO_RANGE in flags:
                code = "0"
            elif ScaleFlag.MOTION in flags:
                code = "1"
            elif self.displayed_mg == 0:
                code = "3"
            else:
                digits = magellan.encode_weight_digits(self.displayed_mg, unit)
                return b"S144" + digits.encode() + b"\r"
            return b"S14" + code.encode() + b"\r"
        return b""


class SimulatedPrinter(_Device):
    """An ESC/POS receipt printer with a cash drawer: answers DLE EOT, records what it prints."""

    def __init__(self, endpoint: Endpoint, drawer_open_level: str = "high") -> None:
        super().__init__(endpoint)
        self.paper = PaperState.ADEQUATE
        self.cover_open = False
        self.offline = False
        self.error = False
        self.drawer_open = False
        self.drawer_open_level = drawer_open_level
        self.responsive = True
        self.printed = bytearray()
        self.documents = 0
        self.drawer_kicks: list[tuple[int, int, int]] = []
        self.status_queries = 0
        self._buffer = bytearray()

    def set_paper(self, paper: str | PaperState) -> None:
        """ "adequate", "near_end" or "out"."""
        self.paper = PaperState(paper)

    def set_cover_open(self, cover_open: bool) -> None:
        """Open or close the cover."""
        self.cover_open = cover_open

    def set_responsive(self, responsive: bool) -> None:
        """False: the printer stops answering status requests (switched off)."""
        self.responsive = responsive

    def close_drawer(self) -> None:
        """Someone pushed the drawer shut."""
        self.drawer_open = False

    def set_drawer_open(self, is_open: bool) -> None:
        """Open or close the drawer by hand."""
        self.drawer_open = is_open

    @property
    def pin3_high(self) -> bool:
        """The level the drawer switch puts on pin 3."""
        return self.drawer_open == (self.drawer_open_level == "high")

    def printed_text(self) -> str:
        """What was printed, with control bytes removed (for checks)."""
        return "".join(chr(b) for b in self.printed if b in (10,) or 32 <= b < 127)

    def _status(self, n: int) -> bytes:
        replies = escpos_status.encode_status_replies(
            offline=self.offline,
            cover_open=self.cover_open,
            paper=self.paper,
            drawer_pin3_high=self.pin3_high,
            error=self.error,
        )
        return bytes([replies[n]])

    def _on_data(self, data: bytes) -> None:
        self._buffer += data
        buf = self._buffer
        i = 0
        while i < len(buf):
            byte = buf[i]
            if byte == 0x10:  # DLE EOT n
                if len(buf) - i < 3:
                    break
                if buf[i + 1] == 0x04 and buf[i + 2] in (1, 2, 3, 4):
                    self.status_queries += 1
                    if self.responsive:
                        self.endpoint.write(self._status(buf[i + 2]))
                    i += 3
                    continue
            elif byte == 0x1B and i + 1 < len(buf) and buf[i + 1] == 0x70:  # ESC p m t1 t2
                if len(buf) - i < 5:
                    break
                self.drawer_kicks.append((buf[i + 2], buf[i + 3], buf[i + 4]))
                self.drawer_open = True
                i += 5
                continue
            elif byte == 0x1B and i + 1 >= len(buf):
                break
            elif byte == 0x1D and i + 1 < len(buf) and buf[i + 1] == 0x56:  # GS V m: cut
                if len(buf) - i < 3:
                    break
                self.documents += 1
                i += 3
                continue
            elif byte == 0x1D and i + 1 >= len(buf):
                break
            self.printed.append(byte)
            i += 1
        del buf[:i]
