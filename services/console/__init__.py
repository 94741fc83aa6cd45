"""The lanesight attendant console: a web app for store staff, a client of the public API.

It serves no gRPC API of its own (only grpc.health.v1 for probes); the web server it
runs is configured in the [console] section.
"""

from lanesight.common.registry import ServiceSpec

SERVICE = ServiceSpec(
    name="console",
    # A web app: no lanesight.v1 service of its own, so no RPC roles and no retries.
    grpc_service="",
    config_model="lanesight.console.config:ConsoleConfig",
    create_app="lanesight.console.app:create_app",
    default_address="127.0.0.1:50065",
    cli=None,
)
