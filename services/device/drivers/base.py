"""The reconnect loop and health state every peripheral driver shares."""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from dataclasses import dataclass

from lanesight.common.channels import Backoff
from lanesight.device.drivers.transport import (
    DEFAULT_SETTINGS,
    LINK_ERRORS,
    SerialSettings,
    close_stream,
    open_byte_stream,
    redact,
)
from lanesight.device.protocols.framing import ParseError
from lanesight.device.readings import (
    DeviceKindName,
    HealthChanged,
    HealthState,
    ProtocolErrorReported,
    Reading,
    ReadingSink,
)

log = logging.getLogger(__name__)


class DeviceUnavailable(Exception):
    """The peripheral cannot do that right now (not connected, paper out, cover open)."""


class CommandNotSupported(Exception):
    """The peripheral's protocol has no such command."""


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """A peripheral's state for GetDeviceStatus."""

    device_id: str
    kind: DeviceKindName
    state: HealthState
    detail: str
    since_ns: int
    address: str


class HealthTracker:
    """Keeps a peripheral's state and records a health event on every change."""

    def __init__(self, device_id: str, kind: DeviceKindName, address: str, sink: ReadingSink):
        self.device_id = device_id
        self.kind = kind
        self.address = address
        self._sink = sink
        self.state = HealthState.UNKNOWN
        self.detail = ""
        self.since_ns = time.time_ns()

    async def set(self, state: HealthState, detail: str = "") -> None:
        """Change state; records a PeripheralHealthChanged event only when it changes."""
        if state is self.state:
            self.detail = detail or self.detail
            return
        self.state, self.detail, self.since_ns = state, detail, time.time_ns()
        await self._sink(HealthChanged(self.device_id, self.kind, state, detail))

    def snapshot(self) -> HealthSnapshot:
        """The current state."""
        return HealthSnapshot(
            self.device_id, self.kind, self.state, self.detail, self.since_ns, self.address
        )


class PeripheralDriver(abc.ABC):
    """Connects to one peripheral, runs a session, and reconnects with backoff.

    Subclasses implement ``session``; it returns or raises when the link is gone.
    Only the first failure in a row is logged at WARNING; retries log at DEBUG.
    """

    def __init__(
        self,
        device_id: str,
        kind: DeviceKindName,
        url: str,
        sink: ReadingSink,
        settings: SerialSettings = DEFAULT_SETTINGS,
        backoff: Backoff | None = None,
        open_timeout_s: float = 5.0,
    ) -> None:
        self.device_id = device_id
        self.kind = kind
        self.url = url
        self.settings = settings
        self._sink = sink
        self.health = HealthTracker(device_id, kind, redact(url), sink)
        self._backoff = backoff or Backoff()
        self._open_timeout_s = open_timeout_s
        self._writer: asyncio.StreamWriter | None = None
        self.parse_errors = 0

    async def emit(self, reading: Reading) -> None:
        """Send a reading to the recorder (returns once it is in the outbox)."""
        await self._sink(reading)

    async def report_errors(self, errors: list[ParseError]) -> None:
        """Record parse errors as events; the driver carries on."""
        for error in errors:
            self.parse_errors += 1
            log.info("%s: %s", self.device_id, error)
            await self.emit(ProtocolErrorReported(self.device_id, self.kind, error))

    async def run(self) -> None:
        """Connect, run sessions and reconnect until cancelled."""
        try:
            while True:
                try:
                    reader, writer = await open_byte_stream(
                        self.url, self.settings, self._open_timeout_s
                    )
                except LINK_ERRORS as exc:
                    await self._failed(exc, "cannot open")
                    continue
                self._writer = writer
                try:
                    await self.session(reader, writer)
                    raise ConnectionError("the device closed the connection")
                except LINK_ERRORS as exc:
                    await self._failed(exc, "lost")
                except Exception as exc:  # a bug must not end the lane's driver for good
                    log.exception("%s: driver error; restarting the session", self.device_id)
                    await self._failed(exc, "driver error", HealthState.ERROR)
                finally:
                    self._writer = None
                    await close_stream(writer)
        finally:
            # A cancelled driver is not a failed device: leave the last state alone.
            self._writer = None

    async def connected(self, detail: str = "") -> None:
        """Call from a session once the device has shown it is there."""
        if self._backoff.failures:
            log.info("%s: connected again at %s", self.device_id, redact(self.url))
        self._backoff.reset()
        await self.health.set(HealthState.CONNECTED, detail)

    async def _failed(
        self, exc: BaseException, what: str, state: HealthState = HealthState.DISCONNECTED
    ) -> None:
        detail = f"{what}: {type(exc).__name__}: {exc}".rstrip(": ")
        delay = self._backoff.next_delay()
        if self._backoff.first_failure:
            log.warning(
                "%s (%s) %s; retrying with backoff (further failures logged at DEBUG)",
                self.device_id,
                redact(self.url),
                detail,
            )
        else:
            log.debug("%s: %s; retry in %.2fs", self.device_id, detail, delay)
        await self.health.set(state, detail)
        await asyncio.sleep(delay)

    @abc.abstractmethod
    async def session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Talk to the connected device until the link fails."""
