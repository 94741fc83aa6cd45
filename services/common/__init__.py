"""The bootstrap every lanesight service shares: config, logging, telemetry, gRPC server, CLI."""

from lanesight.common.app import ServiceApp, unimplemented
from lanesight.common.config import ConfigError, LanesightConfig, load_config

__all__ = ["ConfigError", "LanesightConfig", "ServiceApp", "load_config", "unimplemented"]
