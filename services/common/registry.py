"""The services and command-line providers installed with lanesight, found by entry points."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import Any

#: Entry-point group of ServiceSpec objects, one per service (pyproject.toml).
SERVICES_GROUP = "lanesight.services"
#: Entry-point group of modules that only add subcommands (simulation, demo).
CLI_GROUP = "lanesight.cli"


@dataclass(frozen=True)
class ServiceSpec:
    """What one service tells the common bootstrap about itself.

    Objects are named as "module:attribute" strings and imported on use, so declaring a
    service (its package's __init__) imports nothing heavy and nothing from common.
    """

    #: The service's name: its config section, its [peers] key, `lanesight serve NAME`.
    name: str
    #: The gRPC service it serves, e.g. "lanesight.v1.FusionService".
    grpc_service: str
    #: The pydantic model of its config section, "module:Class".
    config_model: str
    #: The factory create_app(config) -> ServiceApp, "module:function".
    create_app: str
    #: Where it listens unless [peers] says otherwise, host:port.
    default_address: str
    #: Which roles may call each of its RPCs (method name -> roles); a missing one is denied.
    method_roles: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Idempotent unary RPCs that clients retry on UNAVAILABLE; "*" for every method.
    retryable_methods: tuple[str, ...] = ()
    #: A module with register(subparsers) and/or register_eval(eval_targets), or None.
    cli: str | None = None


def load_object(reference: str) -> Any:
    """Import "module:attribute" and return the attribute."""
    module_name, _, attribute = reference.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


@cache
def services() -> dict[str, ServiceSpec]:
    """Every installed service by name, in name order."""
    found: dict[str, ServiceSpec] = {}
    for point in entry_points(group=SERVICES_GROUP):
        spec = point.load()
        if not isinstance(spec, ServiceSpec) or spec.name != point.name:
            raise TypeError(f"entry point {point.name} = {point.value} is not its ServiceSpec")
        found.setdefault(spec.name, spec)
    if not found:
        raise RuntimeError(
            f"no lanesight services are installed (entry points {SERVICES_GROUP!r}): "
            "install the package (make setup)"
        )
    return dict(sorted(found.items()))


def service(name: str) -> ServiceSpec:
    """One installed service; KeyError naming the installed ones if there is none."""
    specs = services()
    if name not in specs:
        raise KeyError(f"no service {name!r}; installed: {', '.join(specs)}")
    return specs[name]


@cache
def cli_modules() -> tuple[str, ...]:
    """Modules that add subcommands: each service's, then other providers', by name."""
    extra = sorted({(p.name, p.value) for p in entry_points(group=CLI_GROUP)})
    return (
        *(spec.cli for spec in services().values() if spec.cli),
        *(value for _, value in extra),
    )


def method_roles() -> dict[str, tuple[str, ...]]:
    """Roles per full method path ("/lanesight.v1.FusionService/Ingest") of every service."""
    return {
        f"/{spec.grpc_service}/{method}": roles
        for spec in services().values()
        for method, roles in spec.method_roles.items()
    }


def retryable_methods() -> list[dict[str, str]]:
    """The gRPC service-config "name" entries of every retryable method."""
    names: list[dict[str, str]] = []
    for spec in services().values():
        for method in spec.retryable_methods:
            entry = {"service": spec.grpc_service}
            if method != "*":
                entry["method"] = method
            names.append(entry)
    return names
