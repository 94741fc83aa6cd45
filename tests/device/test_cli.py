"""`lanesight simulate-devices`: one command runs the simulators and an agent against them."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys

import grpc
from lanesight.common.cli import build_parser
from lanesight.v1 import device_pb2, device_pb2_grpc, events_pb2

from tests.conftest import REPO_ROOT, assert_eventually


def test_simulate_devices_is_registered():
    args = build_parser().parse_args(
        ["simulate-devices", "--scale", "nci:socket:produce", "--printer", "none"]
    )
    assert args.scale == ["nci:socket:produce"] and callable(args.handler)


async def test_simulators_and_agent_from_one_command(tmp_path):
    config = tmp_path / "lane.toml"
    config.write_text(
        f'store_id = "s1"\n[device]\nlane_id = "lane-9"\nfusion_link = false\n'
        f'fusion_commands = false\n[device.outbox]\npath = "{tmp_path / "o.db"}"\n',
        encoding="utf-8",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "lanesight",
        "simulate-devices",
        "--scale",
        "8217:socket:bagging",
        "--with-agent",
        "--config",
        str(config),
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    lines: list[str] = []
    urls: dict[str, str] = {}
    port = None
    try:
        while port is None:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "".join(lines)
            lines.append(line)
            if match := re.match(r"simulator (\S+) (\S+) (\S+)", line):
                urls[match.group(1)] = match.group(3)
            if match := re.search(r"lanesight device serving on [\d.]+:(\d+)", line):
                port = int(match.group(1))
        assert set(urls) == {"scanner-1", "scale-bagging", "printer-1"}
        assert urls["scale-bagging"].startswith("socket://")
        assert urls["scanner-1"].startswith("/dev/pts/")
        assert any('protocol = "8217"' in line for line in lines)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        stub = device_pb2_grpc.DeviceServiceStub(channel)

        async def states():
            status = await stub.GetDeviceStatus(device_pb2.GetDeviceStatusRequest(), timeout=5)
            return {p.device_id: p.state for p in status.peripherals}

        connected = events_pb2.PERIPHERAL_STATE_CONNECTED
        await assert_eventually(
            lambda: _all_connected(
                states(), ["scanner-1", "scale-bagging", "printer-1"], connected
            ),
            30,
        )
        process.stdin.write(b"weight scale-bagging 1250000\nstatus\n")
        await process.stdin.drain()
        reply = (await asyncio.wait_for(process.stdout.readline(), 10)).decode()
        assert reply.startswith("ok scale-bagging 1250000")
        status = await stub.GetDeviceStatus(device_pb2.GetDeviceStatusRequest(), timeout=5)
        assert status.lane.lane_id == "lane-9" and status.lane.store_id == "s1"
        await assert_eventually(lambda: _last_sequence_grows(stub, status.last_sequence), 10)
        await channel.close()
    finally:
        if process.returncode is None:
            process.terminate()
        assert await asyncio.wait_for(process.wait(), 20) == 0


async def _all_connected(states, ids, connected) -> bool:
    current = await states
    return all(current.get(device_id) == connected for device_id in ids)


async def _last_sequence_grows(stub, before: int) -> bool:
    status = await stub.GetDeviceStatus(device_pb2.GetDeviceStatusRequest(), timeout=5)
    return status.last_sequence > before
