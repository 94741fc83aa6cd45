"""Scale driver: polls an 8217, NCI or Magellan scale, decodes status, records changes.

The same driver serves the produce scale and the bagging-area scale (the role only
changes the event). A Magellan scanner-scale also delivers labels on the same port.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from lanesight.device.drivers.base import CommandNotSupported, DeviceUnavailable, PeripheralDriver
from lanesight.device.drivers.scanner import handle_scan
from lanesight.device.protocols import magellan, mettler_8217, nci
from lanesight.device.protocols.barcodes import MarketLike
from lanesight.device.protocols.framing import ParseError
from lanesight.device.protocols.scale_types import (
    EchoAck,
    EchoData,
    ScaleObservation,
    ScaleStatus,
    UnknownCommand,
)
from lanesight.device.protocols.scanner import ScanFrame
from lanesight.device.readings import DeviceKindName, ScaleReported

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScaleCommands:
    """The bytes of each command in one protocol; None when the protocol has none."""

    weight: bytes
    zero: bytes | None
    tare: bytes | None
    clear_tare: bytes | None


COMMANDS = {
    "8217": ScaleCommands(
        mettler_8217.CMD_WEIGHT,
        mettler_8217.CMD_ZERO,
        mettler_8217.CMD_TARE,
        mettler_8217.CMD_CLEAR_TARE,
    ),
    "nci": ScaleCommands(nci.CMD_WEIGHT, nci.CMD_ZERO, None, None),
    # S14 (scale monitor) always answers; S11 answers only when stable.
    "magellan": ScaleCommands(magellan.CMD_MONITOR, None, None, None),
}
_MISSED_REPLIES_BEFORE_LOST = 3


def _new_parser(protocol: str, nci_status_prefix: str = "auto"):
    if protocol == "8217":
        return mettler_8217.Mettler8217Parser()
    if protocol == "nci":
        prefix = {"auto": None, "S": True, "none": False}[nci_status_prefix]
        return nci.NciParser(status_prefix=prefix)
    return magellan.MagellanParser()


class ScaleDriver(PeripheralDriver):
    """Polls a scale and records a reading whenever its status or stable weight changes."""

    def __init__(
        self,
        *args,
        protocol: str,
        role: str,
        poll_interval_s: float = 0.2,
        response_timeout_s: float = 1.0,
        stable_change_mg: int = 0,
        region: MarketLike = "us",
        nci_status_prefix: str = "auto",
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.protocol = protocol
        self.role = role
        self.commands = COMMANDS[protocol]
        self.poll_interval_s = poll_interval_s
        self.response_timeout_s = response_timeout_s
        self.stable_change_mg = stable_change_mg
        self.region = region
        self.nci_status_prefix = nci_status_prefix
        self.last: ScaleObservation | None = None
        self._last_reported: tuple[ScaleStatus, int, bool] | None = None
        self._reply = asyncio.Event()
        self._io_lock = asyncio.Lock()
        self._echo = bytearray()
        self._echo_acked = False
        self._parser: Any = None  # the protocol's parser, new each session
        self.replies = 0

    @property
    def accepts_labels(self) -> bool:
        """True for a Magellan scanner-scale, which also reports labels."""
        return self.protocol == "magellan"

    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._parser = _new_parser(self.protocol, self.nci_status_prefix)
        self._last_reported = None
        read_task = asyncio.create_task(self._read_loop(reader), name=f"{self.device_id}-read")
        poll_task = asyncio.create_task(self._poll_loop(writer), name=f"{self.device_id}-poll")
        try:
            done, _ = await asyncio.wait(
                {read_task, poll_task}, return_when=asyncio.FIRST_EXCEPTION
            )
            for task in done:
                task.result()  # raises the link error that ended the session
        finally:
            for task in (read_task, poll_task):
                task.cancel()
            await asyncio.gather(read_task, poll_task, return_exceptions=True)

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        while True:
            data = await reader.read(4096)
            if not data:
                await self.report_errors(self._parser.flush())
                raise ConnectionError("the scale closed the connection")
            for item in self._parser.feed(data):
                await self._handle(item)

    async def _handle(self, item) -> None:
        if isinstance(item, ParseError):
            self._reply.set()
            await self.report_errors([item])
        elif isinstance(item, ScaleObservation):
            self.replies += 1
            self._reply.set()
            await self.connected()
            await self._observe(item)
        elif isinstance(item, EchoAck):
            self._echo_acked = True
            self._reply.set()
        elif isinstance(item, EchoData):
            self._echo += item.data
            self._reply.set()
        elif isinstance(item, UnknownCommand):
            self._reply.set()
            log.info("%s: the scale did not understand the last command", self.device_id)
        elif isinstance(item, ScanFrame):
            await handle_scan(self, item, self.region)

    async def _observe(self, observation: ScaleObservation) -> None:
        self.last = observation
        weight = observation.weight_mg or 0
        if observation.status not in (ScaleStatus.STABLE, ScaleStatus.ZERO):
            weight = 0
        key = (observation.status, weight, observation.net)
        previous = self._last_reported
        if key == previous:
            return
        if (
            previous is not None
            and previous[0] is ScaleStatus.STABLE
            and key[0] is ScaleStatus.STABLE
            and abs(previous[1] - weight) <= self.stable_change_mg
        ):
            return
        self._last_reported = key
        await self.emit(
            ScaleReported(self.device_id, self.role, observation.status, weight, observation.net)
        )

    async def _probe(self, writer: asyncio.StreamWriter) -> None:
        """8217 echo probe: E + token, expect STX E CR + the token echoed, then F."""
        token = secrets.token_hex(3).encode()
        self._echo.clear()
        self._echo_acked = False
        async with self._io_lock:
            writer.write(mettler_8217.CMD_ECHO + token)
            await writer.drain()
            deadline = asyncio.get_running_loop().time() + self.response_timeout_s
            while not (self._echo_acked and token in self._echo):
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                self._reply.clear()
                try:
                    await asyncio.wait_for(self._reply.wait(), remaining)
                except TimeoutError:
                    break
            writer.write(mettler_8217.CMD_END_ECHO)
            await writer.drain()
            self._parser.end_echo()
        if self._echo_acked and token in self._echo:
            await self.connected("echo probe answered")
        else:
            log.debug("%s: no answer to the echo probe; relying on weight replies", self.device_id)

    async def _poll_loop(self, writer: asyncio.StreamWriter) -> None:
        if self.protocol == "8217":
            await self._probe(writer)
        missed = 0
        while True:
            async with self._io_lock:
                self._reply.clear()
                writer.write(self.commands.weight)
                await writer.drain()
                try:
                    await asyncio.wait_for(self._reply.wait(), self.response_timeout_s)
                    missed = 0
                except TimeoutError:
                    missed += 1
                    await self.report_errors(self._parser.flush())
                    if missed >= _MISSED_REPLIES_BEFORE_LOST:
                        raise TimeoutError(
                            f"no reply to {missed} weight requests in a row"
                        ) from None
            await asyncio.sleep(self.poll_interval_s)

    async def _command(self, name: str, command: bytes | None) -> None:
        if command is None:
            raise CommandNotSupported(f"{self.protocol} scales have no {name} command")
        writer = self._writer
        if writer is None:
            raise DeviceUnavailable(f"{self.device_id} is not connected")
        async with self._io_lock:
            writer.write(command)
            await writer.drain()
        log.info("%s: sent %s", self.device_id, name)

    async def zero(self) -> None:
        """Zero the scale."""
        await self._command("zero", self.commands.zero)

    async def tare(self) -> None:
        """Tare the current load."""
        await self._command("tare", self.commands.tare)

    async def clear_tare(self) -> None:
        """Clear the tare."""
        await self._command("clear tare", self.commands.clear_tare)


def scale_kind(role: str) -> DeviceKindName:
    """The device kind of a scale in a role."""
    return DeviceKindName.BAGGING_SCALE if role == "bagging" else DeviceKindName.PRODUCE_SCALE
