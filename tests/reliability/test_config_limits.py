"""Config: files it names must exist, and every number has a maximum."""

from __future__ import annotations

import pytest
from lanesight.common import cli
from lanesight.common.config import ConfigError, load_config


def test_validate_config_names_missing_tls_files(tmp_path, capsys):
    config = tmp_path / "lanesight.toml"
    config.write_text(
        '[tls]\nmode = "mtls"\n'
        f'cert_file = "{tmp_path / "server.pem"}"\nkey_file = "{tmp_path / "server.key"}"\n'
        f'ca_file = "{tmp_path / "ca.pem"}"\n'
    )
    assert cli.main(["validate-config", str(config)]) == 2
    err = capsys.readouterr().err
    for key in ("tls.cert_file", "tls.key_file", "tls.ca_file"):
        assert f"{key}: " in err and "does not exist" in err
    (tmp_path / "server.pem").write_text("x")
    (tmp_path / "server.key").write_text("x")
    (tmp_path / "ca.pem").write_text("x")
    assert cli.main(["validate-config", str(config)]) == 0
    assert cli.main(["validate-config", "--offline", str(config)]) == 0


@pytest.mark.parametrize(
    ("variable", "value", "key"),
    [
        ("LANESIGHT_FUSION__FORWARD_QUEUE_MAX", "1e12", "forward_queue_max"),
        ("LANESIGHT_FUSION__WATCH_BUFFER", "100000000", "watch_buffer"),
        ("LANESIGHT_DEVICE__RECONNECT_MAX_S", "inf", "reconnect_max_s"),
        ("LANESIGHT_TELEMETRY__METRICS_INTERVAL_S", "1e300", "metrics_interval_s"),
    ],
)
def test_config_numbers_have_maxima(variable, value, key):
    with pytest.raises(ConfigError) as refused:
        load_config(None, environ={variable: value})
    assert key in str(refused.value)
