"""The demo driver: start the four services, check them, and stop them cleanly."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from pathlib import Path

from services.common.logs import setup_logging
from services.demo.processes import ServiceGroup

log = logging.getLogger(__name__)
SERVICE_ORDER = ("reporting", "fusion", "vision", "device")


def free_port() -> int:
    """A currently free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_config(work_dir: Path, ports: dict[str, int]) -> Path:
    """The TOML config all demo services share: loopback peers, state under work_dir."""
    peers = "\n".join(f'{name} = "127.0.0.1:{port}"' for name, port in ports.items())
    path = work_dir / "lanesight.toml"
    path.write_text(
        f'store_id = "demo-store"\n\n[server]\ngrace_s = 3.0\n\n[peers]\n{peers}\n',
        encoding="utf-8",
    )
    return path


async def run_demo(args: argparse.Namespace) -> int:
    """Start every service, report health and addresses, stop them; returns the exit code."""
    work_dir = Path(args.work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in SERVICE_ORDER}
    config_path = write_config(work_dir, ports)
    group = ServiceGroup(config_path, work_dir)
    try:
        for name in SERVICE_ORDER:
            service = await group.start(name)
            print(f"  {name:<10} healthy at {service.address}   (log: {service.log_path})")
        print("all four services are healthy")
        return 0
    finally:
        codes = await group.stop_all()
        print("stopped: " + ", ".join(f"{n} exit {c}" for n, c in codes.items()))


def run_demo_cli(args: argparse.Namespace) -> int:
    """Entry point for `lanesight demo`."""
    setup_logging("WARNING", "text", "demo")
    try:
        return asyncio.run(run_demo(args))
    except KeyboardInterrupt:
        print("interrupted; services stopped", file=sys.stderr)
        return 130
