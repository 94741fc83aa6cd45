"""Every metric docs/telemetry.md lists is emitted, and only those; spans use current
semantic conventions and leave health checks and reflection out."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "telemetry.md"


def documented_metrics() -> set[str]:
    """The names in the tables of the "## Metrics" section."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(lanesight\.[a-z_.]+)` \|", section, re.MULTILINE))


@pytest.fixture(scope="module")
def probe(tmp_path_factory) -> dict:
    """All four services run in one process with in-memory telemetry (a subprocess: the
    global providers can be set once per process)."""
    work = tmp_path_factory.mktemp("probe")
    result = subprocess.run(
        [sys.executable, "-m", "tests.ops.telemetry_probe", str(work)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("PROBE-RESULT "))
    return json.loads(line.removeprefix("PROBE-RESULT "))


def test_the_docs_list_metrics_of_every_service():
    names = documented_metrics()
    for prefix in ("rpc", "device", "vision", "fusion", "reporting"):
        assert any(n.startswith(f"lanesight.{prefix}.") for n in names), prefix


def test_every_documented_metric_is_emitted_and_every_emitted_one_documented(probe):
    emitted = set(probe["metrics"])
    documented = documented_metrics()
    assert sorted(documented - emitted) == [], "documented but never emitted"
    assert sorted(emitted - documented) == [], "emitted but not in docs/telemetry.md"


def test_per_lane_metrics_carry_the_lane_and_nothing_personal(probe):
    pending = probe["attributes"]["lanesight.device.outbox.pending"]
    assert pending == [{"lanesight.store.id": "store-1", "lanesight.lane.id": "lane-1"}]
    fps = probe["attributes"]["lanesight.vision.stream.fps"]
    assert {"lanesight.store.id", "lanesight.lane.id", "lanesight.camera.id"} <= set(fps[0])
    forbidden = {"event_id", "alert_id", "transaction_id", "operator_id", "gtin"}
    for points in probe["attributes"].values():
        for attributes in points:
            assert not {key.rsplit(".", 1)[-1] for key in attributes} & forbidden


def test_spans_use_current_conventions_and_skip_probes_and_reflection(probe):
    spans = probe["spans"]
    names = {span["name"] for span in spans}
    assert "/lanesight.v1.DeviceService/SubmitPosEvents" in names
    # reporting's IngestRecords (a streaming handler that writes) is traced and still works
    assert "/lanesight.v1.ReportingService/IngestRecords" in names
    assert not [n for n in names if "grpc.health" in n or "grpc.reflection" in n]
    for span in spans:
        attributes = span["attributes"]
        assert not [key for key in attributes if key.startswith("net.")], span
        assert attributes["rpc.system"] == "grpc"
        assert attributes["client.address"] == attributes["network.peer.address"] == "127.0.0.1"
        assert isinstance(attributes["network.peer.port"], int)


def test_reflection_v1_lists_the_services(probe):
    assert {
        "lanesight.v1.DeviceService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    } == set(probe["reflection_v1_services"])


def test_peer_attributes_follow_the_conventions_for_ipv4_and_ipv6():
    from lanesight.common.telemetry import _peer_attributes

    assert _peer_attributes("ipv6:%5B::1%5D:5001") == {
        "network.transport": "tcp",
        "network.type": "ipv6",
        "network.peer.address": "::1",
        "client.address": "::1",
        "network.peer.port": 5001,
        "client.port": 5001,
    }
    assert _peer_attributes("ipv4:10.0.0.7:443,ipv4:10.0.0.8:443")["client.address"] == "10.0.0.7"
    assert _peer_attributes("unix:/tmp/socket") == {}
