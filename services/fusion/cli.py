"""Fusion's subcommand: `lanesight replay` (simulation has `lanesight simulate`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

import grpc


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add fusion's subcommands to the `lanesight` parser."""
    replay = subparsers.add_parser(
        "replay", help="feed recorded lane events (JSONL) through fusion and print its alerts"
    )
    replay.add_argument("file", help="one LaneEvent per line in protobuf's JSON mapping")
    replay.add_argument("--fusion", help="fusion address host:port (default: peers.fusion)")
    replay.add_argument("--config", help="TOML or YAML config file (TLS, peers)")
    replay.add_argument("--batch", type=int, default=100, help="events per IngestRequest")
    replay.add_argument(
        "--settle-s", type=float, default=6.0, help="how long to wait for late alerts"
    )
    replay.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from lanesight.common.cli import load_config_or_exit
    from lanesight.fusion.replay import replay

    config = load_config_or_exit(args.config)
    address = args.fusion or config.peers.fusion
    try:
        summary = asyncio.run(
            replay(args.file, address, config, batch_size=args.batch, settle_s=args.settle_s)
        )
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    except grpc.aio.AioRpcError as exc:
        print(f"fusion at {address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(f"fusion at {address}: no answer", file=sys.stderr)
        return 1
    for line in summary.rejections:
        print(f"rejected: {line}")
    print(
        f"replayed {summary.events} events on {summary.lanes} lanes:"
        f" {len(summary.alerts)} alerts, {summary.commands} lane commands,"
        f" {summary.duplicates} duplicates, {len(summary.rejections)} rejected"
    )
    return 0
