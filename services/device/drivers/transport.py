"""Byte streams to peripherals: any pyserial URL through pyserial-asyncio, or plain TCP."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

import serial
import serial_asyncio

#: Exceptions that mean the link to a peripheral failed (not a bug in the agent).
LINK_ERRORS = (
    serial.SerialException,
    OSError,
    ConnectionError,
    TimeoutError,
    asyncio.IncompleteReadError,
    EOFError,
)


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Line settings; ignored by network transports."""

    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1


DEFAULT_SETTINGS = SerialSettings()


def redact(url: str) -> str:
    """The URL without any user:password part, for logs and status."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()


async def open_byte_stream(
    url: str, settings: SerialSettings = DEFAULT_SETTINGS, timeout_s: float = 5.0
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Open a peripheral: ``tcp://host:port`` as plain TCP, anything else as a pyserial URL.

    pyserial URLs include device paths (/dev/ttyUSB0, a pty), ``socket://host:port``
    and ``rfc2217://``. The port is opened in a worker thread (a socket:// connect or a
    slow USB adapter would otherwise block the event loop) and then driven by
    pyserial-asyncio's transport.
    """
    if url.startswith("tcp://"):
        parts = urlsplit(url)
        if not parts.hostname or not parts.port:
            raise ValueError(f"tcp URL needs host and port: {redact(url)}")
        return await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, parts.port), timeout=timeout_s
        )
    loop = asyncio.get_running_loop()
    port = await asyncio.wait_for(
        asyncio.to_thread(
            serial.serial_for_url,
            url,
            baudrate=settings.baudrate,
            bytesize=settings.bytesize,
            parity=settings.parity,
            stopbits=settings.stopbits,
            timeout=0,
        ),
        timeout=timeout_s,
    )
    reader = asyncio.StreamReader(loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    transport, _ = await serial_asyncio.connection_for_serial(loop, lambda: protocol, port)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    return reader, writer


async def close_stream(writer: asyncio.StreamWriter | None) -> None:
    """Close a stream and wait for it, ignoring errors of an already broken link."""
    if writer is None:
        return
    try:
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), timeout=2.0)
    except (*LINK_ERRORS, RuntimeError):
        pass
