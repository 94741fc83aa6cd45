"""`lanesight eval fusion --robustness`: the robustness matrix on the command line."""

from __future__ import annotations

import argparse
import sys
import time


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a whole number of at least 1")
    return value


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be a share between 0 and 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options `--robustness` adds to `lanesight eval fusion`."""
    parser.add_argument(
        "--robustness",
        action="store_true",
        help="run the independent corpus under each perturbation and print the matrix "
        "(real model labels, then stress mode); --transactions is per lane (8 lanes)",
    )
    parser.add_argument(
        "--seeds", type=_positive, default=2, help="with --robustness: seeds to run"
    )
    parser.add_argument(
        "--grpc",
        action="store_true",
        help="with --robustness: send events through a real FusionService.Ingest stream",
    )
    parser.add_argument(
        "--only",
        metavar="WORDS",
        help="with --robustness: only the perturbations whose names contain one of these "
        "comma-separated words (e.g. 'none,bags,all')",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="with --robustness: print Markdown tables"
    )
    parser.add_argument(
        "--beyond",
        action="store_true",
        help="with --robustness: the rows past the tuned ranges instead (twice the losses, "
        "longer delays, slower shoppers, more tracker faults)",
    )
    parser.add_argument(
        "--stress",
        type=_share,
        default=0.1,
        help="with --robustness: share of confident wrong labels in the stress table (0 skips it)",
    )


def run(args: argparse.Namespace) -> int:
    """Print the matrix for the real model's labels and for stress mode."""
    from lanesight.common.cli import load_config_or_exit
    from lanesight.simulation.robustness.labels import LabelSampler, load_val_outputs
    from lanesight.simulation.robustness.matrix import (
        format_false_alerts,
        format_markdown,
        format_matrix,
        run_matrix,
        summary,
    )
    from lanesight.simulation.robustness.scoring import run_in_process
    from lanesight.simulation.robustness.service import run_over_grpc

    config = load_config_or_exit(args.config).fusion
    try:
        sampler = LabelSampler(load_val_outputs())
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    from lanesight.simulation.robustness.perturb import BEYOND, PERTURBATIONS

    table = BEYOND if args.beyond else PERTURBATIONS
    rows = table
    if args.only:
        words = [w.strip() for w in args.only.split(",") if w.strip()]
        rows = {name: f for name, f in table.items() if any(w in name for w in words)}
        if not rows:
            names = ", ".join(table)
            print(f"--only {args.only!r} matches none of: {names}", file=sys.stderr)
            return 2
    runner = run_over_grpc if args.grpc else run_in_process
    modes = [0.0] + ([args.stress] if args.stress else [])
    for stress in modes:
        started = time.perf_counter()
        matrix = run_matrix(
            args.seeds,
            args.transactions,
            stress,
            config,
            perturbations=rows,
            runner=runner,
            sampler=sampler,
            first_seed=args.seed,
        )
        if args.markdown:
            print(format_matrix(matrix).splitlines()[0] + "\n")
            print(format_markdown(matrix))
            print()
            print(summary(matrix))
        else:
            print(format_matrix(matrix))
        print()
        # Where the plain row's false alerts come from, and the worst row's when another.
        first = next(iter(matrix.rows), "none")
        print(format_false_alerts(matrix, first))
        worst = max(matrix.rows, key=lambda r: matrix.rows[r].false_per_100_honest, default=first)
        if worst != first:
            print(format_false_alerts(matrix, worst))
        print(f"({time.perf_counter() - started:.0f} s{', over gRPC' if args.grpc else ''})")
        print()
    return 0
