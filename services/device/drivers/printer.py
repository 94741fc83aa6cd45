"""Receipt printer and cash drawer: documents and drawer kicks rendered with python-escpos,
real-time status (DLE EOT 1..4) read and decoded by our own code."""

from __future__ import annotations

import asyncio
import logging

from escpos.printer import Dummy
from lanesight.device.drivers.base import DeviceUnavailable, HealthTracker, PeripheralDriver
from lanesight.device.protocols import escpos_status
from lanesight.device.protocols.escpos_status import (
    DrawerOpenLevel,
    PrinterStatus,
    StatusReplyError,
)
from lanesight.device.protocols.framing import parse_error
from lanesight.device.readings import (
    DeviceKindName,
    DocumentPrinted,
    DrawerReported,
    HealthState,
    PrinterReported,
)

log = logging.getLogger(__name__)


def render_document(lines: list[str], title: str = "", cut: bool = True) -> bytes:
    """ESC/POS bytes for a simple text document (receipt or audit slip)."""
    printer = Dummy()
    if title:
        printer.set(bold=True, double_height=True)
        printer.textln(title)
        printer.set(bold=False, double_height=False, normal_textsize=True)
    for line in lines:
        printer.textln(line)
    if cut:
        printer.cut()
    return printer.output


def render_drawer_kick(pin: int) -> bytes:
    """ESC p for drawer pin 2 or 5 (python-escpos cashdraw)."""
    if pin not in (2, 5):
        raise ValueError("the drawer pin must be 2 or 5")
    printer = Dummy()
    printer.cashdraw(pin)
    return printer.output


class PrinterDriver(PeripheralDriver):
    """Talks ESC/POS to a serial or network (port 9100) printer with a drawer behind it."""

    def __init__(
        self,
        *args,
        drawer_id: str = "",
        drawer_open_level: DrawerOpenLevel = DrawerOpenLevel.HIGH,
        poll_interval_s: float = 2.0,
        response_timeout_s: float = 0.5,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.drawer_id = drawer_id
        self.drawer_open_level = drawer_open_level
        self.poll_interval_s = poll_interval_s
        self.response_timeout_s = response_timeout_s
        self.status: PrinterStatus = escpos_status.UNKNOWN
        self._reported: PrinterStatus | None = None
        self.drawer_open: bool | None = None
        self._drawer_reported = False
        self.drawer_health = (
            HealthTracker(drawer_id, DeviceKindName.CASH_DRAWER, self.health.address, self._sink)
            if drawer_id
            else None
        )
        self._reader: asyncio.StreamReader | None = None
        self._bytes_read = 0
        self._io_lock = asyncio.Lock()
        self._status_now = asyncio.Event()

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._bytes_read = 0
        self._reported = None
        self._drawer_reported = False
        try:
            await self.connected()
            while True:
                await self.refresh_status()
                self._status_now.clear()
                try:
                    await asyncio.wait_for(self._status_now.wait(), self.poll_interval_s)
                except TimeoutError:
                    pass
        finally:
            self._reader = None
            self.status = escpos_status.UNKNOWN

    async def _read_reply(self, reader: asyncio.StreamReader) -> int | None:
        try:
            data = await asyncio.wait_for(reader.read(1), self.response_timeout_s)
        except TimeoutError:
            return None
        if not data:
            raise ConnectionError("the printer closed the connection")
        self._bytes_read += 1
        return data[0]

    async def _drain_stale(self, reader: asyncio.StreamReader) -> None:
        """Discard bytes that arrived unasked (late replies, automatic status back)."""
        # StreamReader has no public peek; its buffer holds what already arrived.
        while reader._buffer:  # type: ignore[attr-defined]  # private: no public peek
            self._bytes_read += len(await reader.read(len(reader._buffer)))  # type: ignore[attr-defined]

    async def query_status(self) -> PrinterStatus:
        """Ask DLE EOT 1..4 and decode; any missing answer makes the status unknown."""
        reader, writer = self._reader, self._writer
        if reader is None or writer is None:
            return escpos_status.UNKNOWN
        replies: dict[int, int | None] = {}
        async with self._io_lock:
            await self._drain_stale(reader)
            offset = self._bytes_read
            for n in escpos_status.ALL_STATUS_QUERIES:
                writer.write(escpos_status.status_query(n))
                await writer.drain()
                replies[n] = await self._read_reply(reader)
                if replies[n] is None:
                    break
        try:
            return escpos_status.decode_status_replies(replies)
        except StatusReplyError as exc:
            raw = bytes(v for v in replies.values() if v is not None)
            await self.report_errors([parse_error(offset, raw, str(exc))])
            return PrinterStatus(reachable=False, detail=str(exc))

    async def refresh_status(self) -> PrinterStatus:
        """Read the status now and record what changed."""
        status = await self.query_status()
        self.status = status
        if status.reachable:
            await self.health.set(HealthState.CONNECTED)
        else:
            await self.health.set(HealthState.ERROR, f"status unknown: {status.detail}")
        if status != self._reported:
            self._reported = status
            await self.emit(PrinterReported(self.device_id, status))
        await self._update_drawer(status)
        return status

    async def _update_drawer(self, status: PrinterStatus) -> None:
        if not self.drawer_id or self.drawer_health is None:
            return
        is_open = status.drawer_open(self.drawer_open_level)
        if is_open is None:
            await self.drawer_health.set(HealthState.ERROR, "drawer state unknown")
        else:
            await self.drawer_health.set(HealthState.CONNECTED, "open" if is_open else "closed")
        if is_open != self.drawer_open or not self._drawer_reported:
            self.drawer_open = is_open
            self._drawer_reported = True
            await self.emit(DrawerReported(self.drawer_id, is_open))

    async def _send(self, data: bytes) -> None:
        writer = self._writer
        if writer is None:
            raise DeviceUnavailable(f"{self.device_id} is not connected")
        async with self._io_lock:
            writer.write(data)
            await writer.drain()

    async def print_document(
        self, lines: list[str], kind: str = "receipt", title: str = ""
    ) -> None:
        """Print a receipt or an audit slip; refuses when the printer reports no paper."""
        if self.status.reachable and self.status.paper is escpos_status.PaperState.OUT:
            raise DeviceUnavailable(f"{self.device_id}: paper out")
        if self.status.reachable and self.status.cover_open:
            raise DeviceUnavailable(f"{self.device_id}: cover open")
        await self._send(render_document(lines, title))
        await self.emit(DocumentPrinted(self.device_id, kind))
        self._status_now.set()

    async def kick_drawer(self, pin: int = 2) -> None:
        """Pulse the drawer kick connector (pin 2 or 5)."""
        await self._send(render_drawer_kick(pin))
        log.info("%s: drawer kick on pin %d", self.device_id, pin)
        self._status_now.set()
