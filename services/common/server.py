"""The one gRPC server bootstrap: health, reflection, telemetry, TLS, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import signal
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc
from lanesight.common.app import ServiceApp
from lanesight.common.auth import AuthInterceptor
from lanesight.common.config import LanesightConfig, TlsConfig, is_loopback_host
from lanesight.common.telemetry import Telemetry, setup_telemetry

log = logging.getLogger(__name__)
#: Seconds past the drain after which a stop still running dumps every thread's stack.
_STOP_STACKS_AFTER_S = 8.0
#: Seconds past the drain a stop may take before the process gives up on it and exits.
_STOP_LIMIT_S = 10.0


def server_credentials(tls: TlsConfig) -> grpc.ServerCredentials | None:
    """Server credentials for the configured TLS mode; None for plaintext."""
    if tls.mode == "plaintext":
        return None
    if tls.cert_file is None or tls.key_file is None:
        raise ValueError("tls.cert_file and tls.key_file are required unless tls.mode is plaintext")
    if tls.mode == "mtls" and tls.ca_file is None:
        raise ValueError("tls.ca_file is required when tls.mode is mtls")
    ca = tls.ca_file.read_bytes() if tls.ca_file else None
    return grpc.ssl_server_credentials(
        [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
        root_certificates=ca,
        require_client_auth=tls.mode == "mtls",
    )


#: grpc.reflection.v1, which current grpcurl and Postman ask for first. grpcio-reflection
#: serves only v1alpha (grpc/grpc#38576); v1's messages are v1alpha's, field for field.
REFLECTION_V1_SERVICE = "grpc.reflection.v1.ServerReflection"


def enable_reflection(service_names: list[str], server: grpc.aio.Server) -> None:
    """Serve server reflection as grpc.reflection.v1 and v1alpha, listing both."""
    names = [*service_names, REFLECTION_V1_SERVICE, reflection.SERVICE_NAME]
    servicer = reflection.aio.ReflectionServicer(names)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                REFLECTION_V1_SERVICE,
                {
                    "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                        servicer.ServerReflectionInfo,
                        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                    )
                },
            ),
        )
    )


def _auth_interceptors(config: LanesightConfig) -> list[grpc.aio.ServerInterceptor]:
    """The bearer-token interceptor when auth is on (fails start-up if the tokens file is bad)."""
    if not config.auth.enabled:
        return []
    if config.tls.mode == "plaintext" and not is_loopback_host(config.server.host):
        log.warning(
            "auth is on but tls.mode is plaintext: bearer tokens cross the network in the clear"
        )
    return [AuthInterceptor.from_config(config.auth)]


def _health_only_server(
    health_servicer: health.aio.HealthServicer, config: LanesightConfig
) -> tuple[grpc.aio.Server | None, int | None]:
    """A plaintext server with only grpc.health.v1, for kubelet gRPC probes (no TLS there)."""
    if config.tls.plaintext_health_port is None:
        return None, None
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = f"{config.server.host}:{config.tls.plaintext_health_port}"
    bound = server.add_insecure_port(address)
    if bound == 0:
        raise OSError(f"cannot listen on {address} (tls.plaintext_health_port)")
    return server, bound


@dataclass
class RunningServer:
    """A started service: its server, health servicer and bound port."""

    app: ServiceApp
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int
    grace_s: float
    telemetry: Telemetry
    _stopped: bool = False
    # The plaintext health-only listener for kubelet probes (tls.plaintext_health_port).
    health_server: grpc.aio.Server | None = None
    health_port: int | None = None

    async def stop(self) -> None:
        """Health NOT_SERVING, let in-flight RPCs finish within the grace, stop the app."""
        if self._stopped:
            return
        self._stopped = True
        await self.health.enter_graceful_shutdown()
        await self.app.begin_shutdown()
        await self.server.stop(self.grace_s)
        if self.health_server is not None:
            await self.health_server.stop(None)
        try:
            await self.app.stop()
        finally:
            self.telemetry.shutdown()
        log.info("%s stopped", self.app.name)


async def start_server(
    app: ServiceApp,
    config: LanesightConfig,
    port: int | None = None,
    interceptors: list[grpc.aio.ServerInterceptor] | None = None,
) -> RunningServer:
    """Build, bind and start the server for app; health reports SERVING once app.start() ran."""
    telemetry = setup_telemetry(config.telemetry, app.name, config.store_id)
    max_bytes = config.server.max_message_mb * 1024 * 1024
    server = grpc.aio.server(
        interceptors=[
            *telemetry.server_interceptors,
            *_auth_interceptors(config),
            *app.interceptors(),
            *(interceptors or []),
        ],
        options=[
            ("grpc.max_receive_message_length", max_bytes),
            ("grpc.max_send_message_length", max_bytes),
            # Two processes on one port must fail loudly, not share connections.
            ("grpc.so_reuseport", 0),
            # Accept the clients' keepalive pings (channels.py pings every 20 s, also idle).
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_ping_strikes", 0),
        ],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    app.add_to_server(server)
    names = list(app.service_names())
    enable_reflection([*names, health.SERVICE_NAME], server)
    listen_port = config.listen_port(app.name) if port is None else port
    address = f"{config.server.host}:{listen_port}"
    credentials = server_credentials(config.tls)
    if credentials is None:
        bound = server.add_insecure_port(address)
    else:
        bound = server.add_secure_port(address, credentials)
    if bound == 0:
        raise OSError(f"cannot listen on {address}")
    health_server, health_port = _health_only_server(health_servicer, config)
    await server.start()
    running = RunningServer(app, server, health_servicer, bound, config.server.grace_s, telemetry)
    if health_server is not None:
        await health_server.start()
        running.health_server, running.health_port = health_server, health_port
    try:
        await app.start()
    except BaseException:
        await running.stop()
        raise
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("%s serving on %s:%d (%s)", app.name, config.server.host, bound, config.tls.mode)
    return running


async def serve_forever(app: ServiceApp, config: LanesightConfig, port: int | None = None) -> int:
    """Run app until SIGTERM/SIGINT, then shut down gracefully; returns the exit code."""
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_requested.set)
    running = await start_server(app, config, port)
    # One machine-readable line on stdout so supervisors (and the demo) learn the port.
    print(f"lanesight {app.name} serving on {config.server.host}:{running.port}", flush=True)
    try:
        await stop_requested.wait()
        log.info("%s: shutdown requested, draining for up to %.1fs", app.name, running.grace_s)
        # A stop that outlives the drain by far is a bug (a task that ignores cancellation, a
        # thread the interpreter waits for at exit): the stack of every thread goes to stderr
        # then, so a supervisor that has to kill the process has its cause in the log.
        faulthandler.dump_traceback_later(running.grace_s + _STOP_STACKS_AFTER_S, exit=False)
    finally:
        try:
            await asyncio.wait_for(running.stop(), running.grace_s + _STOP_LIMIT_S)
        except TimeoutError:
            log.error(
                "%s did not stop within %.0fs; exiting anyway",
                app.name,
                running.grace_s + _STOP_LIMIT_S,
            )
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0
