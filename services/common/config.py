"""Typed lanesight configuration: one TOML/YAML file, LANESIGHT_* environment overrides."""

from __future__ import annotations

import ipaddress
import json
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from lanesight.common import registry
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

ENV_PREFIX = "LANESIGHT_"
#: The folder of real data (images, POSLog files, barcodes) that tests, benchmarks, the
#: demo and training read; not a config key (services never read it).
DATA_DIR_ENV = "LANESIGHT_DATA_DIR"
# A source checkout's root: services/common/config.py -> the folder above services/.
_REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir(*parts: str) -> Path:
    """The data folder ($LANESIGHT_DATA_DIR, default ../shared/data beside the repository),
    or a path inside it."""
    configured = os.environ.get(DATA_DIR_ENV)
    root = Path(configured) if configured else _REPO_ROOT.parent / "shared" / "data"
    return root.joinpath(*parts)
#: The installed services (entry points "lanesight.services"), each with its config section.
SERVICE_NAMES = tuple(registry.services())


#: The largest number any config value may hold (inf, nan and 1e300 are typos, not settings).
NUMBER_MAX = 1e12


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, values are immutable, and every
    number is finite and below NUMBER_MAX (fields add tighter maxima of their own)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _numbers_are_finite_and_bounded(self) -> Any:
        for name, value in self:
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if not math.isfinite(value) or abs(value) > NUMBER_MAX:
                raise ValueError(f"{name}: {value!r} is out of range (at most {NUMBER_MAX:g})")
        return self


class ServerConfig(StrictModel):
    """How the service's gRPC server listens."""

    host: str = "127.0.0.1"
    # None: take the port from this service's address under [peers].
    port: int | None = Field(default=None, ge=0, le=65535)
    grace_s: float = Field(default=5.0, gt=0, le=300)
    max_message_mb: int = Field(default=16, ge=1, le=256)


class TlsConfig(StrictModel):
    """Transport security; plaintext only when explicitly configured (local development)."""

    mode: Literal["plaintext", "tls", "mtls"] = "plaintext"
    cert_file: Path | None = None
    key_file: Path | None = None
    ca_file: Path | None = None
    # The host name clients expect in the server certificate (overrides the address).
    server_name: str = ""
    # A second, plaintext listener serving only grpc.health.v1 (kubelet gRPC probes cannot
    # speak TLS); None: no such listener.
    plaintext_health_port: int | None = Field(default=None, ge=0, le=65535)


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class AuthConfig(StrictModel):
    """Bearer-token authentication; tokens are read from a file, never from the config."""

    enabled: bool = False
    tokens_file: Path | None = None
    # The token this process presents to its peers, read from a file.
    client_token_file: Path | None = None

    @model_validator(mode="after")
    def _tokens_file_when_enabled(self) -> AuthConfig:
        if self.enabled and self.tokens_file is None:
            raise ValueError("auth.tokens_file is required when auth.enabled is true")
        return self


class TelemetryConfig(StrictModel):
    """OpenTelemetry tracing and metrics; off by default."""

    exporter: Literal["none", "console", "otlp"] = "none"
    otlp_endpoint: str = "http://127.0.0.1:4317"
    metrics_interval_s: float = Field(default=30.0, gt=0)


class LoggingConfig(StrictModel):
    """Log level and format."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class _Peers(StrictModel):
    """Where each service listens, as host:port; also the default listen port of each.

    One key per installed service (its ServiceSpec.default_address); see PeersConfig.
    """

    def address_of(self, service: str) -> str:
        """The configured address of a service by name."""
        return str(getattr(self, service))


class _Config(StrictModel):
    """The whole configuration; every service reads the sections it needs.

    The shared sections are declared here; each installed service adds its own section
    (ServiceSpec.config_model) in LanesightConfig below.
    """

    store_id: str = Field(default="store-1", min_length=1)
    server: ServerConfig = ServerConfig()
    tls: TlsConfig = Field(default=TlsConfig(), validate_default=True)
    auth: AuthConfig = AuthConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    logging: LoggingConfig = LoggingConfig()
    peers: _Peers = _Peers()

    @field_validator("tls")
    @classmethod
    def _plaintext_only_on_loopback_unless_explicit(
        cls, tls: TlsConfig, info: ValidationInfo
    ) -> TlsConfig:
        # Listening in plaintext beyond this machine must be a written decision.
        server = info.data.get("server")
        host = server.host if isinstance(server, ServerConfig) else "127.0.0.1"
        if tls.mode == "plaintext" and "mode" not in tls.model_fields_set:
            if not is_loopback_host(host):
                raise ValueError(
                    f"server.host {host!r} is not a loopback address: set tls.mode to "
                    '"tls" or "mtls", or to "plaintext" explicitly (local development only)'
                )
        return tls

    def listen_port(self, service: str) -> int:
        """The port the named service listens on: server.port, else its [peers] address."""
        if self.server.port is not None:
            return self.server.port
        return int(self.peers.address_of(service).rsplit(":", 1)[1])


if TYPE_CHECKING:
    # Service sections are added at run time, so a type checker sees them as Any.

    class PeersConfig(_Peers):
        def __getattr__(self, name: str) -> str: ...

    class LanesightConfig(_Config):
        peers: PeersConfig

        def __getattr__(self, name: str) -> Any: ...

else:

    def _service_sections() -> tuple[dict[str, Any], dict[str, Any]]:
        """The [peers] keys and the config sections the installed services declare."""
        peers: dict[str, Any] = {}
        sections: dict[str, Any] = {}
        for name, spec in registry.services().items():
            model = registry.load_object(spec.config_model)
            peers[name] = (str, spec.default_address)
            sections[name] = (model, model())
        return peers, sections

    _peer_fields, _section_fields = _service_sections()
    PeersConfig = create_model(
        "PeersConfig", __base__=_Peers, __module__=__name__, __doc__=_Peers.__doc__, **_peer_fields
    )
    LanesightConfig = create_model(
        "LanesightConfig",
        __base__=_Config,
        __module__=__name__,
        __doc__=_Config.__doc__,
        peers=(PeersConfig, PeersConfig()),
        **_section_fields,
    )


class ConfigError(Exception):
    """The configuration is invalid; ``errors`` holds one "key: problem" line per error."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"invalid configuration in {source}:\n  " + "\n  ".join(errors))


def missing_files(config: LanesightConfig) -> list[str]:
    """The "key: problem" lines for files the config names that cannot be read (checked
    when a service starts and by validate-config, not at load: manifests are checked on
    machines without the mounted secrets)."""
    tls, auth = config.tls, config.auth
    wanted: list[tuple[str, Path | None]] = []
    if tls.mode != "plaintext":
        wanted += [("tls.cert_file", tls.cert_file), ("tls.key_file", tls.key_file)]
    if tls.mode == "mtls" or tls.ca_file is not None:
        wanted.append(("tls.ca_file", tls.ca_file))
    if auth.enabled:
        wanted.append(("auth.tokens_file", auth.tokens_file))
    if auth.client_token_file is not None:
        wanted.append(("auth.client_token_file", auth.client_token_file))
    problems = []
    for key, path in wanted:
        if path is None:
            problems.append(f"{key}: is required with tls.mode = {tls.mode!r}")
        elif not path.is_file():
            problems.append(f"{key}: {str(path)!r} does not exist or is not a file")
        elif not os.access(path, os.R_OK):
            problems.append(f"{key}: {str(path)!r} is not readable")
    return problems


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"<file>: cannot read: {exc.strerror}"]) from exc
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(str(path), ["<file>: extension must be .toml, .yaml or .yml"])
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), [f"<file>: not valid {path.suffix[1:]}: {exc}"]) from exc
    if not isinstance(data, dict):
        raise ConfigError(str(path), ["<file>: the top level must be a table/mapping"])
    return data


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    """Merge LANESIGHT_SECTION__KEY=value overrides into data; returns key -> variable name."""
    origins: dict[str, str] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == DATA_DIR_ENV:
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split("__") if part]
        if not path:
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
        origins[".".join(path)] = name
    return origins


def load_config(
    path: str | Path | None, environ: Mapping[str, str] | None = None
) -> LanesightConfig:
    """Load and validate config from a file (or defaults) plus environment overrides.

    Raises ConfigError listing every problem with its dotted key.
    """
    source = str(path) if path else "<defaults>"
    data = _read_file(Path(path)) if path else {}
    origins = _apply_env(data, os.environ if environ is None else environ)
    try:
        # JSON mode + strict: "5" is not an int, but a string is a valid Path.
        return LanesightConfig.model_validate_json(json.dumps(data, default=str), strict=True)
    except ValidationError as exc:
        errors = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "<root>"
            problem = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            line = f"{key}: {problem}"
            if err["type"] != "extra_forbidden" and "input" in err:
                line += f" (got {err['input']!r})"
            if key in origins:
                line += f" [from {origins[key]}]"
            errors.append(line)
        raise ConfigError(source, errors) from None
