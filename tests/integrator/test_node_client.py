"""An integrator's proof: a Node gRPC client (not Python) loads protos/ and calls every service."""

from __future__ import annotations

import json
import shutil
import subprocess

import grpc
import pytest

from tests.conftest import REPO_ROOT, running_services

NODE_MODULES = REPO_ROOT / "node_modules" / "@grpc" / "grpc-js"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_client_calls_health_and_one_real_rpc_per_service(tmp_path):
    assert NODE_MODULES.exists(), "run `make setup` (npm install) first"
    services = ["device", "vision", "fusion", "reporting"]
    with running_services(services, cwd=tmp_path) as procs:
        args = [f"{name}={proc.address}" for name, proc in procs.items()]
        result = subprocess.run(
            ["node", str(REPO_ROOT / "tests" / "integrator" / "client.js"), *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    for name in services:
        assert out[name]["health"] == "SERVING"
    assert out["device"]["rpc"]["lane"]["lane_id"]
    assert "CPUExecutionProvider" in out["vision"]["rpc"]["providers"]
    assert out["fusion"]["rpc"]["inserted"] + 0 >= 0
    assert out["fusion"]["rpc"]["invalid"]["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "currency_code" in out["fusion"]["rpc"]["invalid"]["details"]
    assert out["fusion"]["rpc"]["acked"] == "1"
    assert out["fusion"]["rpc"]["lane"] == {"store_id": "node-store", "lane_id": "lane-1"}
    assert out["fusion"]["rpc"]["transaction_id"] == "node-tx-1"
    assert out["reporting"]["rpc"]["alerts"] == 0
    assert out["reporting"]["rpc"]["invalid"]["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
