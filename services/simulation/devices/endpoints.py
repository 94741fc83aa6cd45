"""Where a simulated device listens: a pseudo-terminal (8N1 only) or a socket:// server."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import os
import tty
from collections.abc import Callable

log = logging.getLogger(__name__)


class Endpoint(abc.ABC):
    """A byte pipe between a simulated device and the driver that connects to it."""

    def __init__(self) -> None:
        #: Called with the bytes the driver sent.
        self.on_data: Callable[[bytes], None] = lambda data: None
        self.received = 0

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The URL a driver opens."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Start listening."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send bytes to the driver (dropped when no driver is connected, like a real line)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop; idempotent."""

    @property
    def connected(self) -> bool:
        """True when a driver is connected (a pty cannot tell: always True)."""
        return True


class PtyEndpoint(Endpoint):
    """A Linux pseudo-terminal; the driver opens the slave path. 8N1 only (kernel limit)."""

    def __init__(self) -> None:
        super().__init__()
        self._master = -1
        self._slave = -1
        self._path = ""
        self._pending = bytearray()

    @property
    def url(self) -> str:
        return self._path

    async def start(self) -> None:
        self._master, self._slave = os.openpty()
        # Raw from the start, so nothing is echoed or translated before the driver opens it.
        tty.setraw(self._slave)
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        self._path = os.ttyname(self._slave)
        asyncio.get_running_loop().add_reader(self._master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return  # no reader on the other side right now
        if data:
            self.received += len(data)
            self.on_data(data)

    def write(self, data: bytes) -> None:
        if self._master < 0:
            return
        self._pending += data
        self._flush()

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            written = os.write(self._master, self._pending)
        except (BlockingIOError, InterruptedError):
            written = 0
        del self._pending[:written]
        if self._pending:
            loop.add_writer(self._master, self._writable)

    def _writable(self) -> None:
        asyncio.get_running_loop().remove_writer(self._master)
        if self._pending:
            self._flush()

    async def stop(self) -> None:
        if self._master < 0:
            return
        loop = asyncio.get_running_loop()
        loop.remove_reader(self._master)
        loop.remove_writer(self._master)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1


class SocketEndpoint(Endpoint):
    """A TCP server playing the device; drivers connect with socket:// (or tcp://) URLs.

    One driver at a time: a new connection replaces the old one, like a serial line.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, scheme: str = "socket") -> None:
        super().__init__()
        self.host = host
        self.port = port
        self.scheme = scheme
        self._server: asyncio.AbstractServer | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._client_tasks: set[asyncio.Task] = set()
        self._client_writers: set[asyncio.StreamWriter] = set()
        self.connections = 0
        self.client_connected = asyncio.Event()

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._client_tasks.add(task)
        self._client_writers.add(writer)
        if self._writer is not None:
            self._writer.close()
        self._writer = writer
        self.connections += 1
        self.client_connected.set()
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                self.received += len(data)
                self.on_data(data)
        except (ConnectionError, OSError):
            pass
        finally:
            self._client_tasks.discard(task)
            self._client_writers.discard(writer)
            if self._writer is writer:
                self._writer = None
                self.client_connected.clear()
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @property
    def connected(self) -> bool:
        return self._writer is not None

    def write(self, data: bytes) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(data)

    async def wait_connected(self, timeout_s: float = 10.0) -> None:
        """Wait until a driver is connected."""
        await asyncio.wait_for(self.client_connected.wait(), timeout_s)

    def disconnect(self) -> None:
        """Drop the driver's connection (it should reconnect), like pulling the cable."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self.client_connected.clear()

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        self.disconnect()
        for writer in list(self._client_writers):
            writer.close()
        # Closed connections end their handlers; cancelling them would make asyncio log noise.
        if self._client_tasks:
            _, pending = await asyncio.wait(set(self._client_tasks), timeout=2.0)
            for task in pending:
                task.cancel()
        with contextlib.suppress(Exception):
            await self._server.wait_closed()
        self._server = None


def make_endpoint(transport: str, bytesize: int = 8, parity: str = "N") -> Endpoint:
    """A pty or socket endpoint; refuses a pty for anything but 8N1."""
    if transport == "pty":
        if bytesize != 8 or parity != "N":
            raise ValueError(
                f"a Linux pty carries 8N1 only; a {bytesize}{parity}1 device needs socket://"
            )
        return PtyEndpoint()
    if transport in ("socket", "tcp"):
        return SocketEndpoint(scheme=transport)
    raise ValueError(f"transport must be pty, socket or tcp, not {transport!r}")
