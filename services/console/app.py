"""The console as a lanesight service: the common bootstrap (health, telemetry, SIGTERM)
around a uvicorn web server that serves the console's Starlette app.

The bootstrap's gRPC server carries only grpc.health.v1 for probes; the web app listens on
``console.http_host:http_port`` (HTTPS with tls.cert_file/key_file unless tls.mode is
plaintext) and prints one line ``lanesight console web on URL`` once it listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator, Sequence

import grpc
import uvicorn
from lanesight.common.app import ServiceApp
from lanesight.common.auth import TokenRegistry
from lanesight.common.config import LanesightConfig
from lanesight.console.hub import ConsoleHub
from lanesight.console.sessions import SessionStore
from lanesight.console.web import ConsoleWeb

log = logging.getLogger(__name__)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the service's own loop: signals stay with the lanesight bootstrap."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ConsoleError(Exception):
    """The console cannot start as configured."""


class ConsoleApp(ServiceApp):
    """The attendant console: hub (gRPC client of fusion and lane agents) plus web server."""

    name = "console"

    def __init__(self, config: LanesightConfig) -> None:
        self.config = config
        self.settings = config.console
        self.hub: ConsoleHub | None = None
        self.sessions: SessionStore | None = None
        self.url = ""
        self.http_port = 0
        self._server: _EmbeddedServer | None = None
        self._serve_task: asyncio.Task | None = None

    def service_names(self) -> Sequence[str]:
        return []

    def add_to_server(self, server: grpc.aio.Server) -> None:
        """The console serves no lanesight.v1 API; its gRPC server only answers health."""

    @property
    def https(self) -> bool:
        return self.config.tls.mode != "plaintext"

    async def start(self) -> None:
        tokens_file = self.config.auth.tokens_file
        if tokens_file is None:
            raise ConsoleError(
                "auth.tokens_file is required: attendants sign in to the console with a "
                "token listed there"
            )
        self.sessions = SessionStore(
            TokenRegistry(tokens_file),
            self.settings.session_max_age_s,
            self.settings.session_idle_s,
        )
        self.hub = ConsoleHub(self.config)
        secure = self.https if self.settings.secure_cookies is None else self.settings.secure_cookies
        web = ConsoleWeb(self.hub, self.sessions, secure).app()
        tls = self.config.tls
        server_config = uvicorn.Config(
            web,
            log_config=None,
            access_log=False,  # paths only, but the console logs what matters itself
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=max(1, int(self.config.server.grace_s)),
            ssl_certfile=str(tls.cert_file) if self.https and tls.cert_file else None,
            ssl_keyfile=str(tls.key_file) if self.https and tls.key_file else None,
        )
        # No access log at all: request lines are not needed and must never grow secrets.
        logging.getLogger("uvicorn.access").disabled = True
        family = socket.AF_INET6 if ":" in self.settings.http_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.settings.http_host, self.settings.http_port))
        except OSError as exc:
            sock.close()
            raise ConsoleError(
                f"console.http_port: cannot listen on "
                f"{self.settings.http_host}:{self.settings.http_port}: {exc.strerror}"
            ) from exc
        sock.listen(128)
        self.http_port = sock.getsockname()[1]
        await self.hub.start()
        self._server = _EmbeddedServer(server_config)
        self._serve_task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._serve_task.done():
                self._serve_task.result()
                raise ConsoleError("the console web server stopped while starting")
            await asyncio.sleep(0.01)
        host = self.settings.http_host
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{'https' if self.https else 'http'}://{shown}:{self.http_port}/"
        log.info("console web on %s for stores %s", self.url, ", ".join(self.hub.stores))
        # One machine-readable line on stdout, like the gRPC bootstrap's, for the demo.
        print(f"lanesight console web on {self.url}", flush=True)

    async def begin_shutdown(self) -> None:
        """End the live-update streams so open browsers let the web server stop."""
        if self.hub is not None:
            await self.hub.close_streams()
        if self._server is not None:
            self._server.should_exit = True

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._serve_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._serve_task
            self._serve_task = None
        if self.hub is not None:
            await self.hub.stop()
            self.hub = None


def create_app(config: LanesightConfig) -> ConsoleApp:
    """The console app for config."""
    return ConsoleApp(config)
