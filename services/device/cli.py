"""Registers `lanesight simulate-devices`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the device service's subcommands."""
    parser = subparsers.add_parser(
        "simulate-devices",
        help="run simulated scanner, scales and printer (real protocols over pty/socket)",
        description="Print the URL of each simulated device and the [[device.peripherals]] "
        "config that connects an agent to them; drive them with commands on stdin "
        "(scan, weight, condition, paper, cover, drawer, printer, status).",
    )
    parser.add_argument(
        "--scanner", choices=["pty", "socket", "none"], default="pty", help="default: pty"
    )
    parser.add_argument(
        "--scanner-framing", choices=["cr", "crlf", "magellan"], default="cr", help="default: cr"
    )
    parser.add_argument(
        "--scale",
        action="append",
        metavar="PROTOCOL[:TRANSPORT[:ROLE[:ID]]]",
        help="a scale to simulate, repeatable; PROTOCOL 8217, nci or magellan; TRANSPORT "
        "socket (7E1 scales need it) or pty; default: 8217:socket:bagging and "
        "nci:socket:produce; 'none' for no scales",
    )
    parser.add_argument(
        "--printer",
        choices=["socket", "tcp", "pty", "none"],
        default="socket",
        help="default: socket",
    )
    parser.add_argument("--drawer-open-level", choices=["high", "low"], default="high")
    parser.add_argument("--write-config", metavar="PATH", help="write the peripherals TOML here")
    parser.add_argument(
        "--with-agent",
        action="store_true",
        help="also run a lane agent (DeviceService) connected to the simulators",
    )
    parser.add_argument("--config", help="base config for --with-agent")
    parser.add_argument("--port", type=int, default=0, help="agent port for --with-agent (0: any)")
    parser.add_argument("--lane-id", help="lane id for --with-agent")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from lanesight.common.logs import setup_logging
    from lanesight.simulation.devices.console import run

    setup_logging("WARNING" if not args.with_agent else "INFO", "text", "simulate-devices")
    return asyncio.run(run(args))
