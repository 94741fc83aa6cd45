"""The bootstrap every lanesight service shares: config, logging, telemetry, gRPC server, CLI."""

from services.common.app import ServiceApp, unimplemented
from services.common.config import ConfigError, LanesightConfig, load_config

__all__ = ["ConfigError", "LanesightConfig", "ServiceApp", "load_config", "unimplemented"]
