"""The service registry: each service declares its RPCs, roles, retries and config section."""

from __future__ import annotations

import subprocess
import sys

import pytest
from google.protobuf import descriptor_pool
from lanesight.common import registry
from lanesight.common.auth import METHOD_ROLES
from lanesight.common.cli import build_parser, create_app
from lanesight.common.config import SERVICE_NAMES, ConfigError, LanesightConfig, load_config
from lanesight.v1 import device_pb2, fusion_pb2, reporting_pb2, vision_pb2  # noqa: F401 - pool

#: The services that serve a lanesight.v1 gRPC API (the console is a web app over them).
GRPC_SERVICES = tuple(name for name in SERVICE_NAMES if registry.service(name).grpc_service)


def test_the_five_services_are_installed():
    assert SERVICE_NAMES == ("console", "device", "fusion", "reporting", "vision")
    assert GRPC_SERVICES == ("device", "fusion", "reporting", "vision")


def test_the_console_serves_no_grpc_api_and_has_no_rpc_roles(tmp_path, monkeypatch):
    spec = registry.service("console")
    assert not spec.method_roles and not spec.retryable_methods
    monkeypatch.chdir(tmp_path)
    assert list(create_app("console", load_config(None, environ={})).service_names()) == []


@pytest.mark.parametrize("name", GRPC_SERVICES)
def test_a_service_declares_roles_for_exactly_its_rpcs(name):
    spec = registry.service(name)
    service = descriptor_pool.Default().FindServiceByName(spec.grpc_service)
    methods = {method.name: method for method in service.methods}
    assert set(spec.method_roles) == set(methods), f"{name}: roles for every RPC, no strays"
    for method in spec.retryable_methods:
        if method == "*":
            continue
        rpc = methods[method]
        assert not rpc.client_streaming and not rpc.server_streaming, f"{method} is a stream"


@pytest.mark.parametrize("name", GRPC_SERVICES)
def test_a_service_app_serves_its_declared_grpc_service(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative default paths land in tmp
    app = create_app(name, load_config(None, environ={}))
    assert list(app.service_names()) == [registry.service(name).grpc_service]
    assert app.name == name


def test_auth_table_is_the_union_of_the_declarations():
    assert METHOD_ROLES["/lanesight.v1.FusionService/Ingest"] == frozenset({"lane_agent"})
    assert len(METHOD_ROLES) == sum(
        len(spec.method_roles) for spec in registry.services().values()
    )


def test_config_sections_and_peers_come_from_the_services():
    config = LanesightConfig()
    for name in SERVICE_NAMES:
        model = registry.load_object(registry.service(name).config_model)
        assert isinstance(getattr(config, name), model)
        assert config.peers.address_of(name) == registry.service(name).default_address
    with pytest.raises(ConfigError) as raised:
        load_config(None, environ={"LANESIGHT_BILLING__X": "1", "LANESIGHT_PEERS__BILLING": "a:1"})
    assert "billing: unknown key" in raised.value.errors
    assert "peers.billing: unknown key [from LANESIGHT_PEERS__BILLING]" in raised.value.errors


def test_simulation_and_demo_add_their_subcommands():
    parser = build_parser()
    for argv in (["simulate", "--lanes", "1"], ["simulate-devices"], ["demo"], ["eval", "fusion"]):
        assert parser.parse_args(argv).handler is not None
    with pytest.raises(KeyError, match="installed: console, device, fusion, reporting, vision"):
        registry.service("billing")


@pytest.mark.parametrize("name", SERVICE_NAMES)
def test_a_service_module_imports_first_in_a_fresh_process(name):
    """The config is built from the services' declarations: importing a service module
    first (its package declares it, then its modules load the config) must not loop."""
    module = f"lanesight.{name}.app"
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
