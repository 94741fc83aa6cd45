"""The contract between a service's package and the shared server bootstrap."""

from __future__ import annotations

import abc
from collections.abc import Sequence

import grpc


class ServiceApp(abc.ABC):
    """One lanesight service: its servicers plus what it starts and stops around them.

    The bootstrap calls, in order: ``add_to_server`` (before the port is bound),
    ``start`` (after the server started, before health reports SERVING) and, on
    shutdown: health NOT_SERVING, ``begin_shutdown`` (end long-lived streams),
    ``server.stop(grace)``, then ``stop`` (flush and close stores). ``stop`` must be
    idempotent.
    """

    #: Short name used in logs and telemetry, e.g. "fusion".
    name: str = ""

    @abc.abstractmethod
    def service_names(self) -> Sequence[str]:
        """Fully qualified gRPC service names, for health and reflection."""

    @abc.abstractmethod
    def add_to_server(self, server: grpc.aio.Server) -> None:
        """Register this service's servicers on the server."""

    def interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """Extra server interceptors this service needs; default none."""
        return []

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Start background work (links to peers, stores); default does nothing."""

    async def begin_shutdown(self) -> None:  # noqa: B027 - optional hook
        """Health is NOT_SERVING: end long-lived streams so server.stop(grace) can finish."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Stop background work and flush state; idempotent; default does nothing."""


async def unimplemented(context: grpc.aio.ServicerContext, rpc: str, issue: str) -> None:
    """Abort an RPC that a later issue implements, saying so rather than faking an answer."""
    await context.abort(
        grpc.StatusCode.UNIMPLEMENTED,
        f"{rpc} is not implemented yet (planned in {issue})",
    )
