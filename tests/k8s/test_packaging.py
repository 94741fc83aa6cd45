"""The image recipe, the lane PC's systemd unit and the fusion shard mapping."""

from __future__ import annotations

import configparser
import importlib.util
import re
import shutil
import subprocess
from collections import Counter

import pytest
from lanesight.common.config import load_config

from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
#: fusion_shard("store-0042", "lane-0N", 3) for N = 1..8, pinned when the mapping shipped.
GOLDEN_SHARDS = {1: 0, 2: 1, 3: 1, 4: 0, 5: 1, 6: 0, 7: 0, 8: 2}


def _load_shard_module():
    spec = importlib.util.spec_from_file_location("fusion_shard", DEPLOY / "fusion_shard.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


fusion_shard = _load_shard_module()


def test_containerfile_builds_stubs_and_runs_unprivileged():
    text = (REPO_ROOT / "Containerfile").read_text()
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", text, flags=re.MULTILINE)
    assert [name for _, name in stages] == ["builder", "runtime"]
    builder, runtime = text.split("AS runtime", 1)
    assert "make stubs" in builder and "pip install ." in builder
    assert "COPY --from=builder /opt/lanesight /opt/lanesight" in runtime
    users = re.findall(r"^USER\s+(\S+)", runtime, flags=re.MULTILINE)
    assert users == ["10001:10001"]
    assert 'ENTRYPOINT ["lanesight"]' in runtime
    assert "-perm /6000" in runtime  # setuid/setgid bits stripped
    ignore = (REPO_ROOT / ".containerignore").read_text().splitlines()
    assert ignore[[line.strip() for line in ignore].index("*")] == "*"  # allow-list
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "constraints.txt",
        "setup.py",
        "README.md",
        "Makefile",
        "protos",
        "services",
    }
    # The image installs the versions the tests ran with.
    assert "pip install . -c constraints.txt" in builder


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read(DEPLOY / "systemd" / "lanesight-device.service")
    return parser


def test_systemd_unit_is_hardened_and_outlasts_the_grace_period():
    unit = _unit()
    service = unit["Service"]
    assert service["User"] == "lanesight" and "dialout" in service["SupplementaryGroups"]
    assert service["ExecStart"].split()[1:4] == ["serve", "device", "--config"]
    config = load_config(
        service["ExecStart"].split()[-1].replace("/etc/lanesight", str(DEPLOY / "systemd")),
        environ={},
    )
    assert int(service["TimeoutStopSec"]) >= config.server.grace_s + 5
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "DevicePolicy": "closed",
        "CapabilityBoundingSet": "",
        "RestrictSUIDSGID": "yes",
    }.items():
        assert service[key] == value, key
    assert config.tls.mode == "mtls" and config.auth.enabled
    assert config.server.host == "127.0.0.1"  # only the lane's POS, on this machine


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    text = (DEPLOY / "systemd" / "lanesight-device.service").read_text()
    # The venv does not exist here; verify everything else about the unit.
    unit = tmp_path / "lanesight-device.service"
    unit.write_text(
        text.replace("/opt/lanesight/bin/lanesight", shutil.which("true") or "/bin/true")
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if str(unit) in line or "lanesight-device" in line
    ]
    assert result.returncode == 0 and problems == [], result.stdout + result.stderr


def test_shard_mapping_is_stable_across_releases():
    # Golden values: changing them re-shards every lane of every chain.
    assert [fusion_shard.fusion_shard("store-0042", f"lane-{n:02d}", 3) for n in range(1, 9)] == [
        GOLDEN_SHARDS[n] for n in range(1, 9)
    ]
    assert fusion_shard.fusion_address("store-0042", "lane-08", 3) == (
        f"fusion-{GOLDEN_SHARDS[8]}.fusion-headless.lanesight.svc:50063"
    )


def test_shards_are_even_and_growing_moves_few_lanes():
    lanes = [(f"store-{s:04d}", f"lane-{n:02d}") for s in range(100) for n in range(1, 31)]
    counts = Counter(fusion_shard.fusion_shard(s, n, 4) for s, n in lanes)
    assert set(counts) == {0, 1, 2, 3}
    assert max(counts.values()) / min(counts.values()) < 1.15
    moved = [
        (s, n)
        for s, n in lanes
        if fusion_shard.fusion_shard(s, n, 4) != fusion_shard.fusion_shard(s, n, 5)
    ]
    # Going from 4 to 5 replicas moves about 1/5 of the lanes, all to the new replica.
    assert 0.17 < len(moved) / len(lanes) < 0.23
    assert {fusion_shard.fusion_shard(s, n, 5) for s, n in moved} == {4}
    assert all(fusion_shard.fusion_shard(s, n, 1) == 0 for s, n in lanes[:50])


def test_shard_cli_prints_lanes_and_moves(capsys):
    assert fusion_shard.main(["--replicas", "3", "store-0042/lane-08"]) == 0
    assert capsys.readouterr().out.split("\t")[:2] == ["store-0042/lane-08", str(GOLDEN_SHARDS[8])]
    assert fusion_shard.main(["--replicas", "3", "not-a-lane"]) == 2
