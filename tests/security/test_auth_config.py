"""The tokens file, token minting, the role table and the config rules around security."""

from __future__ import annotations

import os

import grpc
import pytest
import yaml
from lanesight.common.auth import (
    METHOD_ROLES,
    ROLES,
    TokenRegistry,
    TokensFileError,
    _main,
    hash_token,
    load_tokens,
    read_client_token,
)
from lanesight.common.channels import open_channel
from lanesight.common.config import AuthConfig, ConfigError, load_config
from lanesight.v1 import device_pb2, fusion_pb2, reporting_pb2, vision_pb2

DIGEST = hash_token("lst_example")


def test_every_rpc_of_the_api_has_roles_and_the_table_has_no_strays():
    """A new RPC is denied to everyone until it is added to METHOD_ROLES: this says so."""
    methods = {
        f"/{service.full_name}/{method.name}"
        for module in (device_pb2, vision_pb2, fusion_pb2, reporting_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert methods - set(METHOD_ROLES) == set(), "add these RPCs to auth.METHOD_ROLES"
    assert set(METHOD_ROLES) - methods == set(), "these METHOD_ROLES entries name no RPC"
    assert all(roles and roles <= set(ROLES) for roles in METHOD_ROLES.values())


def test_role_table_keeps_the_flows_of_the_design():
    def may(role: str, method: str) -> bool:
        return role in METHOD_ROLES[f"/lanesight.v1.{method}"]

    assert may("lane_agent", "FusionService/Ingest")
    assert may("lane_agent", "VisionService/Analyze")
    assert may("service", "ReportingService/IngestRecords")
    assert may("attendant", "FusionService/ResolveAlert")
    assert may("manager", "ReportingService/GetShrinkReport")
    assert may("pos", "DeviceService/SubmitPosEvents")
    assert not may("attendant", "ReportingService/GetShrinkReport")
    assert not may("lane_agent", "ReportingService/IngestRecords")
    assert not may("manager", "FusionService/Ingest")
    assert not may("pos", "FusionService/ResolveAlert")


def test_yaml_and_toml_tokens_files_load(tmp_path):
    yaml_file = tmp_path / "tokens.yaml"
    yaml_file.write_text(
        f"tokens:\n  - {{name: a, role: attendant, stores: [s1, s2], sha256: {DIGEST}}}\n"
    )
    toml_file = tmp_path / "tokens.toml"
    toml_file.write_text(
        f'[[tokens]]\nname = "a"\nrole = "attendant"\nstores = ["s1", "s2"]\nsha256 = "{DIGEST}"\n'
    )
    for path in (yaml_file, toml_file):
        [(digest, identity)] = load_tokens(path)
        assert digest == bytes.fromhex(DIGEST)
        assert (identity.name, identity.role, identity.stores) == (
            "a",
            "attendant",
            frozenset({"s1", "s2"}),
        )
        assert identity.may_access_store("s2") and not identity.may_access_store("s3")
        assert not identity.may_access_store("")


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"name": "a", "role": "janitor", "stores": ["s"], "sha256": DIGEST}, "role"),
        ({"name": "a", "role": "pos", "stores": ["*", "s"], "sha256": DIGEST}, "only entry"),
        ({"name": "a", "role": "pos", "stores": [], "sha256": DIGEST}, "stores"),
        ({"name": "a", "role": "pos", "stores": ["s"], "sha256": "lst_plain"}, "sha256"),
        ({"name": "a", "role": "pos", "stores": ["s"], "token": "x", "sha256": DIGEST}, "token"),
    ],
    ids=["unknown-role", "star-and-ids", "no-stores", "plaintext-not-digest", "extra-key"],
)
def test_invalid_entries_are_refused_naming_the_problem(tmp_path, entry, problem):
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": [entry]}))
    with pytest.raises(TokensFileError, match=problem):
        load_tokens(path)


def test_the_same_token_twice_is_refused(tmp_path):
    path = tmp_path / "tokens.yaml"
    entry = {"role": "pos", "stores": ["s"], "sha256": DIGEST}
    path.write_text(yaml.safe_dump({"tokens": [{"name": "a", **entry}, {"name": "b", **entry}]}))
    with pytest.raises(TokensFileError, match="listed twice"):
        load_tokens(path)


def test_registry_picks_up_a_rotated_file_and_keeps_the_old_one_if_broken(tmp_path):
    path = tmp_path / "tokens.yaml"
    old, new = "lst_old-token", "lst_new-token"

    def write(secret: str, bump_ns: int) -> None:
        entry = {"name": secret, "role": "pos", "stores": ["s"], "sha256": hash_token(secret)}
        path.write_text(yaml.safe_dump({"tokens": [entry]}))
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + bump_ns))

    write(old, 0)
    registry = TokenRegistry(path, recheck_interval_s=0)
    assert registry.lookup(old).name == old and registry.lookup(new) is None
    write(new, 1_000_000_000)
    assert registry.lookup(new).name == new and registry.lookup(old) is None
    path.write_text("tokens: [{name: broken}]\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert registry.lookup(new).name == new


def test_mint_prints_a_token_whose_digest_is_the_entry(tmp_path, capsys):
    token_file = tmp_path / "lane.token"
    assert (
        _main(
            [
                "mint",
                "--name",
                "s42-lanes",
                "--role",
                "lane_agent",
                "--stores",
                "s42",
                "--token-out",
                str(token_file),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    secret = token_file.read_text().strip()
    assert secret.startswith("lst_") and len(secret) > 40
    assert secret not in out
    assert token_file.stat().st_mode & 0o077 == 0
    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.write_text(out)
    [(digest, identity)] = load_tokens(tokens_file)
    assert digest.hex() == hash_token(secret)
    assert (identity.name, identity.role, identity.stores) == (
        "s42-lanes",
        "lane_agent",
        frozenset({"s42"}),
    )
    assert _main(["check", str(tokens_file)]) == 0


def test_plaintext_beyond_loopback_must_be_explicit(tmp_path):
    with pytest.raises(ConfigError, match=r"tls: .*not a loopback address"):
        load_config(None, environ={"LANESIGHT_SERVER__HOST": "0.0.0.0"})
    explicit = load_config(
        None, environ={"LANESIGHT_SERVER__HOST": "0.0.0.0", "LANESIGHT_TLS__MODE": "plaintext"}
    )
    assert explicit.tls.mode == "plaintext"
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert load_config(None, environ={"LANESIGHT_SERVER__HOST": host}).server.host == host
    path = tmp_path / "edge.toml"
    path.write_text(
        '[server]\nhost = "0.0.0.0"\n[tls]\nmode = "mtls"\ncert_file = "/c"\nkey_file = "/k"\n'
    )
    assert load_config(path, environ={}).tls.mode == "mtls"


def test_auth_enabled_needs_a_tokens_file():
    with pytest.raises(ConfigError, match="auth.tokens_file is required"):
        load_config(None, environ={"LANESIGHT_AUTH__ENABLED": "true"})


def test_client_token_file_must_hold_one_token(tmp_path):
    path = tmp_path / "client-token"
    path.write_text("lst_abc\n")
    assert read_client_token(AuthConfig(client_token_file=path)) == "lst_abc"
    assert read_client_token(AuthConfig()) is None
    for bad in ("", "two tokens\n"):
        path.write_text(bad)
        with pytest.raises(TokensFileError, match="exactly one token"):
            read_client_token(AuthConfig(client_token_file=path))
    with pytest.raises(TokensFileError, match="cannot read"):
        read_client_token(AuthConfig(client_token_file=tmp_path / "missing"))


def test_plaintext_channels_refuse_explicit_call_credentials():
    config = load_config(None, environ={})
    with pytest.raises(ValueError, match="need tls"):
        open_channel("127.0.0.1:1", config, grpc.access_token_call_credentials("lst_x"))
