"""Outbound gRPC channels and the reconnect backoff every link to a peer uses."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field

import grpc
from lanesight.common import registry
from lanesight.common.auth import bearer_token_interceptors, read_client_token
from lanesight.common.config import LanesightConfig, is_loopback_host

log = logging.getLogger(__name__)

# Retries only for idempotent unary calls on UNAVAILABLE (a retried write must be harmless); each
# service names its idempotent RPCs (ServiceSpec.retryable_methods).
_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": registry.retryable_methods(),
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


def channel_credentials(config: LanesightConfig) -> grpc.ChannelCredentials | None:
    """Client credentials for the configured TLS mode; None for plaintext."""
    tls = config.tls
    if tls.mode == "plaintext":
        return None
    ca = tls.ca_file.read_bytes() if tls.ca_file else None
    if tls.mode == "mtls":
        if tls.cert_file is None or tls.key_file is None:
            raise ValueError("tls.cert_file and tls.key_file are required for mtls")
        return grpc.ssl_channel_credentials(
            ca, tls.key_file.read_bytes(), tls.cert_file.read_bytes()
        )
    return grpc.ssl_channel_credentials(ca)


def open_channel(
    address: str,
    config: LanesightConfig,
    call_credentials: grpc.CallCredentials | None = None,
) -> grpc.aio.Channel:
    """An aio channel to a peer with keepalive, retry policy and the configured security.

    With auth.client_token_file set, every call carries that bearer token: as call
    credentials over TLS, by a metadata interceptor over plaintext (development only;
    gRPC will not attach call credentials to an insecure channel).
    """
    max_bytes = config.server.max_message_mb * 1024 * 1024
    options = [
        ("grpc.service_config", _SERVICE_CONFIG),
        ("grpc.enable_retries", 1),
        ("grpc.keepalive_time_ms", 20_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.max_receive_message_length", max_bytes),
        ("grpc.max_send_message_length", max_bytes),
    ]
    if config.tls.server_name:
        options.append(("grpc.ssl_target_name_override", config.tls.server_name))
    credentials = channel_credentials(config)
    token = read_client_token(config.auth)
    if credentials is None:
        if call_credentials is not None:
            raise ValueError("call credentials need tls.mode tls or mtls")
        if token is None:
            return grpc.aio.insecure_channel(address, options=options)
        if not is_loopback_host(address.rsplit(":", 1)[0].removeprefix("dns:///")):
            log.warning("sending a bearer token to %s over plaintext (tls.mode)", address)
        return grpc.aio.insecure_channel(
            address, options=options, interceptors=bearer_token_interceptors(token)
        )
    if token is not None:
        token_credentials = grpc.access_token_call_credentials(token)
        call_credentials = (
            token_credentials
            if call_credentials is None
            else grpc.composite_call_credentials(call_credentials, token_credentials)
        )
    if call_credentials is not None:
        credentials = grpc.composite_channel_credentials(credentials, call_credentials)
    return grpc.aio.secure_channel(address, credentials, options=options)


@dataclass
class Backoff:
    """Exponential backoff with full jitter for reconnect loops."""

    initial_s: float = 0.2
    max_s: float = 10.0
    multiplier: float = 2.0
    failures: int = field(default=0, init=False)

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before the next attempt."""
        ceiling = min(self.max_s, self.initial_s * self.multiplier**self.failures)
        self.failures += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Record a success."""
        self.failures = 0

    @property
    def first_failure(self) -> bool:
        """True when the last recorded failure was the first in a row (log only that one)."""
        return self.failures == 1
