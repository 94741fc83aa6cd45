"""Config loading: types, unknown keys, environment overrides, --validate-config."""

from __future__ import annotations

import subprocess

import pytest
from lanesight.common.config import ConfigError, load_config

from tests.conftest import LANESIGHT, REPO_ROOT


def test_defaults_load_without_a_file():
    config = load_config(None, environ={})
    assert config.listen_port("fusion") == 50063
    assert config.tls.mode == "plaintext"
    assert config.telemetry.exporter == "none"


def test_toml_and_env_override(tmp_path):
    path = tmp_path / "lane.toml"
    path.write_text('store_id = "s-42"\n[server]\ngrace_s = 2.5\n')
    config = load_config(path, environ={"LANESIGHT_SERVER__PORT": "6001"})
    assert config.store_id == "s-42"
    assert config.server.grace_s == 2.5
    assert config.server.port == 6001
    assert config.listen_port("vision") == 6001


def test_yaml_file(tmp_path):
    path = tmp_path / "lane.yaml"
    path.write_text("store_id: s-7\nlogging:\n  level: DEBUG\n")
    config = load_config(path, environ={})
    assert (config.store_id, config.logging.level) == ("s-7", "DEBUG")


def test_every_error_is_reported_with_its_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[server]\nport = "abc"\nbogus = 1\n[telemetry]\nexporter = "zipkin"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={"LANESIGHT_SERVER__GRACE_S": "soon"})
    text = "\n".join(info.value.errors)
    assert "server.port: " in text and "'abc'" in text
    assert "server.bogus: unknown key" in text
    assert "telemetry.exporter: " in text
    assert "server.grace_s: " in text and "[from LANESIGHT_SERVER__GRACE_S]" in text
    assert len(info.value.errors) == 4


def test_wrong_type_is_not_coerced(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("store_id = 12\n")
    with pytest.raises(ConfigError, match="store_id"):
        load_config(path, environ={})


def test_unparsable_file_names_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[server\n")
    with pytest.raises(ConfigError, match="not valid toml"):
        load_config(path, environ={})


@pytest.mark.parametrize("service", ["device", "vision", "fusion", "reporting"])
def test_validate_config_cli_names_the_key(tmp_path, service):
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\ngrace_s = "long"\nunknown_knob = true\n')
    result = subprocess.run(
        [*LANESIGHT, "serve", service, "--config", str(bad), "--validate-config"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "server.grace_s" in result.stderr
    assert "server.unknown_knob: unknown key" in result.stderr


def test_validate_config_cli_accepts_a_good_file(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('store_id = "s-1"\n')
    result = subprocess.run(
        [*LANESIGHT, "validate-config", str(good)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_the_shipped_example_config_is_valid():
    config = load_config(REPO_ROOT / "examples" / "lanesight.toml", environ={})
    assert config.store_id == "store-1"
