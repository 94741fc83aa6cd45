"""`lanesight simulate-devices`: run lane device simulators (and optionally an agent) until stopped.

Commands on stdin, one per line, drive the devices from a script or a terminal:

    scan [DEVICE] DATA             send a label, e.g. "scan ]E00012345678905"
    weight DEVICE MG [moving]      put a load on a scale
    condition DEVICE over|under|not_zeroed|clear
    paper adequate|near_end|out    printer paper
    cover open|closed              printer cover
    drawer open|closed             cash drawer switch
    printer on|off                 printer answers status requests or not
    status                         print every simulator's state
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from lanesight.simulation.devices.lane import LaneSimulators, ScaleSpec, peripherals_toml

log = logging.getLogger(__name__)


def _scale_specs(texts: list[str] | None) -> list[ScaleSpec]:
    texts = texts if texts is not None else ["8217:socket:bagging", "nci:socket:produce"]
    return [ScaleSpec.parse(text, index) for index, text in enumerate(texts) if text != "none"]


def apply_command(sims: LaneSimulators, line: str) -> str:
    """Carry out one console command synchronously where possible; returns a reply line."""
    words = line.split()
    if not words:
        return ""
    verb, args = words[0].lower(), words[1:]
    if verb == "weight" and len(args) >= 2:
        sims.scale(args[0]).set_weight(int(args[1]), stable="moving" not in args[2:])
        return f"ok {args[0]} {args[1]} mg"
    if verb == "condition" and len(args) == 2:
        condition = args[1]
        sims.scale(args[0]).set_condition(
            over_capacity=condition == "over",
            under_zero=condition == "under",
            not_zeroed=condition == "not_zeroed",
        )
        return f"ok {args[0]} {condition}"
    if sims.printer is not None:
        if verb == "paper" and args:
            sims.printer.set_paper(args[0])
            return f"ok paper {args[0]}"
        if verb == "cover" and args:
            sims.printer.set_cover_open(args[0] == "open")
            return f"ok cover {args[0]}"
        if verb == "drawer" and args:
            sims.printer.set_drawer_open(args[0] == "open")
            return f"ok drawer {args[0]}"
        if verb == "printer" and args:
            sims.printer.set_responsive(args[0] == "on")
            return f"ok printer {args[0]}"
    if verb == "status":
        return status_text(sims)
    return f"error: unknown command {line.strip()!r}"


async def run_command(sims: LaneSimulators, line: str) -> str:
    """Carry out one console command (scans are async)."""
    words = line.split()
    if words and words[0].lower() == "scan" and len(words) >= 2:
        if len(words) >= 3 and words[1] in sims.scales:
            await sims.scale(words[1]).scan(words[2])
            return f"ok scanned {words[2]} on {words[1]}"
        if sims.scanner is None:
            return "error: no scanner simulator"
        await sims.scanner.scan(words[-1])
        return f"ok scanned {words[-1]}"
    try:
        return apply_command(sims, line)
    except (KeyError, ValueError) as exc:
        return f"error: {exc}"


def status_text(sims: LaneSimulators) -> str:
    """Every simulator's state on a few lines."""
    lines = []
    for device_id, scale in sims.scales.items():
        lines.append(
            f"{device_id}: {scale.protocol} {scale.displayed_mg} mg "
            f"{'stable' if scale.stable else 'moving'} flags={sorted(f.value for f in scale.flags)}"
            f" requests={scale.requests}"
        )
    if sims.printer is not None:
        printer = sims.printer
        lines.append(
            f"printer: paper={printer.paper.value} cover_open={printer.cover_open} "
            f"drawer_open={printer.drawer_open} documents={printer.documents} "
            f"kicks={len(printer.drawer_kicks)}"
        )
    if sims.scanner is not None:
        lines.append(f"scanner: {sims.scanner.scans} labels sent")
    return "\n".join(lines)


async def _read_stdin(sims: LaneSimulators) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    try:
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    except (ValueError, OSError):
        return  # stdin is not a pipe or terminal (e.g. /dev/null): no console
    while True:
        line = await reader.readline()
        if not line:
            return
        text = line.decode(errors="replace").strip()
        if text in ("quit", "exit"):
            raise SystemExit(0)
        if text:
            print(await run_command(sims, text), flush=True)


async def run(args: argparse.Namespace) -> int:
    """Start the simulators (and the agent when asked) and run until SIGTERM/SIGINT."""
    sims = await LaneSimulators.start(
        scanner=None if args.scanner == "none" else args.scanner,
        scanner_framing=args.scanner_framing,
        scales=_scale_specs(args.scale),
        printer=None if args.printer == "none" else args.printer,
        drawer_open_level=args.drawer_open_level,
    )
    running = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        peripherals = sims.peripherals()
        for peripheral in peripherals:
            print(f"simulator {peripheral.id} {peripheral.kind} {peripheral.url}", flush=True)
        snippet = peripherals_toml(peripherals)
        if args.write_config:
            Path(args.write_config).write_text(snippet, encoding="utf-8")
            print(f"wrote {args.write_config}", flush=True)
        else:
            print(snippet, flush=True)
        if args.with_agent:
            running = await _start_agent(args, peripherals)
        console = asyncio.create_task(_read_stdin(sims))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({console, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if console.done() and console.exception() is None:
            await waiter  # stdin closed: keep serving until a signal
        for task in (console, waiter):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SystemExit):
            await console
    finally:
        if running is not None:
            await running.stop()
        await sims.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    return 0


async def _start_agent(args: argparse.Namespace, peripherals):
    from lanesight.common.cli import load_config_or_exit
    from lanesight.common.server import start_server
    from lanesight.device.app import create_app

    config = load_config_or_exit(args.config)
    device = config.device.model_copy(
        update={
            "peripherals": [*config.device.peripherals, *peripherals],
            **({"lane_id": args.lane_id} if args.lane_id else {}),
        }
    )
    config = config.model_copy(update={"device": device})
    running = await start_server(create_app(config), config, args.port)
    print(f"lanesight device serving on {config.server.host}:{running.port}", flush=True)
    return running
