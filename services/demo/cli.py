"""Registers `lanesight demo`."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `demo` subcommand."""
    parser = subparsers.add_parser(
        "demo", help="run a simulated store end to end: four services, lanes, live alerts"
    )
    parser.add_argument("--lanes", type=int, default=4, help="simulated lanes (default 4)")
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the run")
    parser.add_argument("--seed", type=int, default=7, help="seed for the shopper mix")
    parser.add_argument("--work-dir", default="var/demo", help="where logs, DBs and reports go")
    parser.add_argument("--plain", action="store_true", help="no live screen; print events")
    parser.add_argument(
        "--attendant",
        choices=("simulated", "person"),
        default="simulated",
        help="who resolves alerts: the simulated attendant, or a person in the console",
    )
    parser.add_argument(
        "--console-port", type=int, default=0, help="the console's web port (0: any free one)"
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from lanesight.demo.main import run_demo_cli

    return run_demo_cli(args)
