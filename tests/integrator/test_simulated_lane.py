"""docs/integrating.md's POS test bench: `lanesight simulate-devices --with-agent` against
a real fusion, the Python example as the POS, and a scan typed into the simulator console."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time

import grpc
from lanesight.v1 import device_pb2, device_pb2_grpc, events_pb2

from tests.conftest import REPO_ROOT, start_service_process
from tests.integrator.test_api_packages import EXAMPLES, check_example_output


def _status(address: str) -> device_pb2.GetDeviceStatusResponse:
    with grpc.insecure_channel(address) as channel:
        stub = device_pb2_grpc.DeviceServiceStub(channel)
        return stub.GetDeviceStatus(device_pb2.GetDeviceStatusRequest(), timeout=5)


def test_a_pos_against_simulated_lane_hardware(tmp_path):
    fusion = start_service_process(
        "fusion", tmp_path, env={"LANESIGHT_FUSION__FORWARD_TO_REPORTING": "false"}
    )
    config = tmp_path / "lane.toml"
    config.write_text(
        f'store_id = "store-1"\n[peers]\nfusion = "{fusion.address}"\n'
        f'[device]\nlane_id = "lane-1"\nvision_link = false\n'
        f'[device.outbox]\npath = "{tmp_path / "outbox.db"}"\nsynchronous = "normal"\n',
        encoding="utf-8",
    )
    bench = subprocess.Popen(
        [sys.executable, "-m", "lanesight", "simulate-devices", "--with-agent"]
        + ["--config", str(config), "--port", "0"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert bench.stdout is not None and bench.stdin is not None
        seen: list[str] = []
        agent = None
        deadline = time.monotonic() + 60
        while agent is None and time.monotonic() < deadline:
            line = bench.stdout.readline()
            assert line, "".join(seen)
            seen.append(line)
            if match := re.search(r"lanesight device serving on [\d.]+:(\d+)", line):
                agent = f"127.0.0.1:{match.group(1)}"
        assert agent is not None, "".join(seen)
        # Keep reading its log, or a full pipe would stall the agent.
        threading.Thread(target=lambda: seen.extend(bench.stdout or ()), daemon=True).start()

        example = subprocess.run(
            [sys.executable, str(EXAMPLES / "pos_client.py"), "--lane", agent]
            + ["--fusion", fusion.address],
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert example.returncode == 0, example.stderr
        check_example_output(example.stdout)
        assert json.loads(example.stdout)["lane"] == "store-1/lane-1"

        # A label scanned at the simulated scanner reaches fusion like the POS's events.
        before = _status(agent).last_sequence
        bench.stdin.write("scan ]E05000112637922\n")
        bench.stdin.flush()
        deadline = time.monotonic() + 30
        while True:
            status = _status(agent)
            if status.last_sequence > before and status.acked_sequence == status.last_sequence:
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.1)
        scanner = {p.device_id: p for p in status.peripherals}["scanner-1"]
        assert scanner.state == events_pb2.PERIPHERAL_STATE_CONNECTED
    finally:
        bench.terminate()
        bench.wait(timeout=30)
        fusion.terminate()
