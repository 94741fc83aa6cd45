"""Simulation's subcommands: `lanesight simulate`, `lanesight eval fusion`, `simulate-devices`."""

from __future__ import annotations

import argparse
import json

from lanesight.simulation.robustness import cli as robustness
from lanesight.simulation.scenarios.scenario import Noise


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the simulation subcommands to the `lanesight` parser."""
    simulate = subparsers.add_parser(
        "simulate",
        help="run generated shoppers through the fusion engine and print detection quality",
    )
    _add_simulate_arguments(simulate)

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
    parser.set_defaults(handler=_simulate_devices)


def register_eval(which: argparse._SubParsersAction) -> None:
    """`lanesight eval fusion`: the same as `lanesight simulate`."""
    evaluate = which.add_parser(
        "fusion", help="detection quality per exception type on simulated shoppers"
    )
    _add_simulate_arguments(evaluate)
    robustness.add_arguments(evaluate)


def _add_simulate_arguments(simulate: argparse.ArgumentParser) -> None:
    simulate.add_argument("--lanes", type=int, default=8)
    simulate.add_argument("--transactions", type=int, default=60, help="per lane")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument("--loss-rate", type=float, default=0.3)
    defaults = Noise()
    simulate.add_argument("--confusion", type=float, default=defaults.vision_confusion)
    simulate.add_argument("--dropout", type=float, default=defaults.vision_dropout)
    simulate.add_argument("--scale-jitter-mg", type=int, default=defaults.scale_jitter_mg)
    simulate.add_argument("--event-jitter-ms", type=int, default=defaults.event_jitter_ms)
    simulate.add_argument("--duplicates", type=float, default=defaults.duplicate_rate)
    simulate.add_argument(
        "--sweep-confusion",
        action="store_true",
        help="also show how quality degrades as vision confusion grows from 0 to 30%%",
    )
    simulate.add_argument("--behaviours", action="store_true", help="recall per behaviour")
    simulate.add_argument("--config", help="config file whose [fusion] section to use")
    simulate.add_argument("--out", help="also write the events as JSONL for `replay`")
    simulate.add_argument("--truth", help="also write the staged losses as JSON")
    simulate.set_defaults(handler=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    if getattr(args, "robustness", False):
        return robustness.run(args)
    from lanesight.common.cli import load_config_or_exit
    from lanesight.fusion.catalog import DEMO_CATALOG, load_catalog_file
    from lanesight.fusion.replay import write_jsonl
    from lanesight.simulation.scenarios.quality import (
        evaluate,
        format_behaviours,
        format_report,
        format_sweep,
    )
    from lanesight.simulation.scenarios.scenario import lane_events
    from lanesight.simulation.scenarios.shoppers import generate_lanes

    config = load_config_or_exit(args.config).fusion
    items = load_catalog_file(DEMO_CATALOG)
    for path in config.catalog_files:
        items.extend(load_catalog_file(path))
    noise = Noise(
        scale_jitter_mg=args.scale_jitter_mg,
        vision_confusion=args.confusion,
        vision_dropout=args.dropout,
        event_jitter_ms=args.event_jitter_ms,
        duplicate_rate=args.duplicates,
    )
    report = evaluate(
        args.seed, args.lanes, args.transactions, items, config, noise, args.loss_rate
    )
    print(format_report(report))
    if args.behaviours:
        print()
        print(format_behaviours(report))
    if args.sweep_confusion:
        print()
        reports = {}
        for level in (0.0, 0.1, 0.2, 0.3):
            swept = Noise(**{**noise.__dict__, "vision_confusion": level})
            reports[level] = evaluate(
                args.seed, args.lanes, args.transactions, items, config, swept, args.loss_rate
            )
        print(format_sweep(reports))
    if args.out or args.truth:
        lanes = generate_lanes(
            args.seed, args.lanes, args.transactions, items, noise, args.loss_rate
        )
        if args.out:
            events = [
                e
                for index, scenarios in enumerate(lanes)
                for e in lane_events(scenarios, f"sim{args.seed}", noise, args.seed + index)
            ]
            count = write_jsonl(events, args.out)
            print(f"wrote {count} events to {args.out}")
        if args.truth:
            truth = [
                {
                    "store_id": sc.store_id,
                    "lane_id": sc.lane_id,
                    "transaction_id": sc.transaction_id,
                    "behaviour": sc.behaviour,
                    "faults": sc.faults,
                    "losses": [
                        {
                            "type": loss.type.rule_name,
                            "sku": loss.sku,
                            "description": loss.description,
                            "amount_minor": loss.amount_minor,
                            "at_ms": sc.start_ms + loss.at_ms,
                        }
                        for loss in sc.losses
                    ],
                }
                for scenarios in lanes
                for sc in scenarios
            ]
            with open(args.truth, "w", encoding="utf-8") as handle:
                json.dump(truth, handle, indent=1)
            print(f"wrote ground truth of {len(truth)} scenarios to {args.truth}")
    return 0


def _simulate_devices(args: argparse.Namespace) -> int:
    import asyncio

    from lanesight.common.logs import setup_logging
    from lanesight.simulation.devices.console import run

    setup_logging("WARNING" if not args.with_agent else "INFO", "text", "simulate-devices")
    return asyncio.run(run(args))
