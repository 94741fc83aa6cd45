"""Barcode scanner driver: CR / CR LF / LF lines with AIM identifiers, or Magellan S08 framing."""

from __future__ import annotations

import asyncio
import logging

from lanesight.device.drivers.base import PeripheralDriver
from lanesight.device.protocols.barcodes import MarketLike, decode_barcode
from lanesight.device.protocols.framing import ParseError, parse_error
from lanesight.device.protocols.magellan import LABEL_IDS, MagellanParser
from lanesight.device.protocols.scanner import LineScannerParser, ScanFrame
from lanesight.device.readings import BarcodeScanned, DeviceKindName

log = logging.getLogger(__name__)


async def handle_scan(driver: PeripheralDriver, frame: ScanFrame, region: MarketLike) -> None:
    """Decode a framed label and record it; a failed check also records a parse error."""
    # A Magellan label id names the EAN/UPC form, so what follows the main code is its add-on.
    form = LABEL_IDS[frame.magellan_label_id][0] if frame.magellan_label_id else ""
    barcode = decode_barcode(frame.data, frame.symbology_identifier, region, symbology=form)
    if barcode.problem:
        raw = (frame.symbology_identifier + frame.data).encode("utf-8", "replace")
        await driver.report_errors([parse_error(frame.offset, raw, barcode.problem)])
    await driver.emit(BarcodeScanned(driver.device_id, barcode))


class ScannerDriver(PeripheralDriver):
    """Reads labels from a scanner; a partial label left after a quiet spell is an error."""

    def __init__(
        self,
        *args,
        protocol: str = "cr",
        region: MarketLike = "us",
        idle_flush_s: float = 0.5,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        if self.kind is not DeviceKindName.SCANNER:
            raise ValueError("ScannerDriver is for scanners")
        self.protocol = protocol
        self.region = region
        self.idle_flush_s = idle_flush_s
        self.labels_read = 0

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = MagellanParser() if self.protocol == "magellan" else LineScannerParser()
        # A scanner only talks when it reads a label: an open port is all we can check.
        await self.connected()
        while True:
            try:
                timeout = None if parser.idle else self.idle_flush_s
                data = await asyncio.wait_for(reader.read(4096), timeout=timeout)
            except TimeoutError:
                await self.report_errors(parser.flush())
                continue
            if not data:
                await self.report_errors(parser.flush())
                raise ConnectionError("the scanner closed the connection")
            for item in parser.feed(data):
                if isinstance(item, ParseError):
                    await self.report_errors([item])
                elif isinstance(item, ScanFrame):
                    self.labels_read += 1
                    await handle_scan(self, item, self.region)
                else:
                    log.debug("%s: ignoring a scale reply on a scanner port", self.device_id)
