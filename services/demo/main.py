"""The demo driver: a simulated store run end to end through the four real services.

1. Starts reporting, fusion and vision as `lanesight serve` processes on loopback ports.
2. Per lane: device simulators on real wire protocols (scanner on a pty, 7E1 scales and
   the ESC/POS printer on socket://), a lane agent process (`lanesight serve device`)
   connected to them and to a synthetic camera made from real grocery photos, and a POS
   that submits transactions to the agent over gRPC.
   Then the attendant console (`lanesight serve console`) over those lanes; its URL is
   printed, with a sign-in code for the store written to attendant.token.
3. Plays shoppers from the fusion simulator (honest baskets and loss behaviours) in real
   time, shows lanes and alerts live while a simulated attendant resolves them.
4. Prints a summary (staged / caught / false alerts / latency per exception type), writes
   the reporting service's HTML report, and stops every process cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from pathlib import Path

import grpc
from lanesight.common.auth import hash_token, mint_token
from lanesight.common.config import data_dir
from lanesight.common.logs import setup_logging
from lanesight.demo.attendant import Attendant
from lanesight.demo.camera import SCRIPT_ENV
from lanesight.demo.lanes import SimulatedLane
from lanesight.demo.plan import STORE_ID, build_lane_plans
from lanesight.demo.processes import ServiceGroup, ServiceProcess
from lanesight.demo.screen import DemoView, LaneView, live_screen
from lanesight.demo.summary import summarize
from lanesight.v1 import fusion_pb2_grpc, reporting_pb2, reporting_pb2_grpc

log = logging.getLogger(__name__)
CORE_SERVICES = ("reporting", "fusion", "vision")
GROCERY_DIR = data_dir("grocery", "dataset")


def free_port() -> int:
    """A currently free loopback TCP port."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_config(work_dir: Path, ports: dict[str, int]) -> str:
    """The TOML every demo service shares: loopback peers and state under work_dir."""
    peers = "\n".join(f'{name} = "127.0.0.1:{port}"' for name, port in ports.items())
    return (
        f'store_id = "{STORE_ID}"\n\n[server]\ngrace_s = 3.0\n\n[peers]\n{peers}\n\n'
        f'[reporting]\ndb_path = "{work_dir / "reporting.db"}"\n\n'
        f'[fusion]\nstore_path = "{work_dir / "fusion.sqlite"}"\n'
        # The demo's lanes sell the bundled demo catalog (off by default elsewhere).
        "demo_catalog = true\n"
    )


async def run_demo(args: argparse.Namespace) -> int:
    """Run the whole demo; returns the exit code."""
    work_dir = Path(args.work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*work_dir.glob("*.db*"), *work_dir.glob("*.sqlite*")]:
        stale.unlink()
    duration_s = args.minutes * 60
    if not GROCERY_DIR.is_dir():
        print(f"the grocery images are missing: {GROCERY_DIR}", file=sys.stderr)
        return 2
    plans = build_lane_plans(args.lanes, args.seed, duration_s)
    ports = {name: free_port() for name in ("device", "console", *CORE_SERVICES)}
    shared = base_config(work_dir, ports)
    config_path = work_dir / "lanesight.toml"
    config_path.write_text(shared, encoding="utf-8")
    view = DemoView(
        f"lanesight demo: {args.lanes} lanes, {duration_s:.0f}s, seed {args.seed}", duration_s
    )
    lanes = []
    for plan in plans:
        view.lanes[plan.lane_id] = LaneView(
            plan.lane_id, shopper="self-checkout" if plan.self_checkout else "staffed"
        )
        lanes.append(SimulatedLane(plan, view.lanes[plan.lane_id], work_dir))
    group = ServiceGroup(config_path, work_dir)
    tasks: list[asyncio.Task] = []
    attendant: Attendant | None = None
    channels: list[grpc.aio.Channel] = []
    started = time.monotonic()
    try:
        for name in CORE_SERVICES:
            service = await group.start(name)
            print(f"  {name:<10} healthy at {service.address}")
        for lane in lanes:
            await lane.start_simulators()
            lane.plan.write_camera_script(lane.camera_script, None, GROCERY_DIR)
            lane_ports = {**ports, "device": free_port()}
            agent_config = lane.write_agent_config(base_config(work_dir, lane_ports))
            agent = await group.start(
                f"device-{lane.plan.lane_id}",
                service="device",
                config_path=agent_config,
                env={SCRIPT_ENV: str(lane.camera_script)},
            )
            # The agent listens on the port its config names unless told otherwise.
            await lane.connect_pos(agent.address)
            await lane.wait_devices_connected(agent.address)
            print(f"  {lane.plan.lane_id} agent healthy at {agent.address}, devices connected")
        console = await start_console(group, work_dir, shared, lanes, args.console_port)
        print(f"  console    open {console.url} and sign in with the code in {work_dir / 'attendant.token'}")
        if args.attendant == "person":
            print("  attendant  none simulated: resolve the alerts in the console")
        print(f"everything is up in {time.monotonic() - started:.1f}s; shoppers arrive now")

        fusion_channel = grpc.aio.insecure_channel(group.services["fusion"].address)
        channels.append(fusion_channel)
        epoch = time.time() + 1.0
        for lane in lanes:
            lane.plan.write_camera_script(lane.camera_script, epoch, GROCERY_DIR)
        attendant = Attendant(
            fusion_pb2_grpc.FusionServiceStub(fusion_channel),
            view,
            {plan.lane_id: plan for plan in plans},
            epoch,
            resolves=args.attendant == "simulated",
        )
        tasks.append(asyncio.create_task(attendant.watch()))
        stop = asyncio.Event()
        view.started_at = time.monotonic() + 1.0
        players = [asyncio.create_task(lane.play(epoch, stop)) for lane in lanes]
        tasks.extend(players)
        tasks.extend(asyncio.create_task(lane.watch_suggestions()) for lane in lanes)
        screen = live_screen(view, enabled=not args.plain and sys.stdout.isatty())
        with screen if screen is not None else contextlib.nullcontext():
            done, _ = await asyncio.wait(players, timeout=duration_s + 2.0)
            stop.set()
            await asyncio.gather(*players, return_exceptions=True)
            # Late alerts (windows closing) and the attendant's last resolutions.
            await asyncio.sleep(6.0)
        ended_s = time.time() - epoch
        if args.plain or not sys.stdout.isatty():
            for line in reversed(view.alerts):
                print(
                    f"  alert {line.at:6.1f}s {line.lane_id} {line.kind:<28} {line.state:<9}"
                    f" {line.reason}"
                )
        summary = summarize(plans, attendant.alerts, ended_s)
        print("\nsummary")
        print(summary.format())
        lines = sum(lane.suggested_lines for lane in lanes)
        print(
            f"produce suggestions at the scale: {sum(lane.suggestion_sets for lane in lanes)} "
            f"offered; the weighed PLU rung up was in the top 3 for "
            f"{sum(lane.suggestion_hits for lane in lanes)} of {lines} lines"
        )
        report = await export_html(group.services["reporting"].address, work_dir)
        print(f"\nHTML report: {report}")
        errors = sum(lane.errors for lane in lanes)
        if errors:
            print(f"{errors} lane actions failed; see the logs in {work_dir}")
        return 0
    finally:
        if attendant is not None:
            await attendant.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for channel in channels:
            await channel.close()
        for lane in lanes:
            with contextlib.suppress(Exception):
                await lane.close()
        codes = await group.stop_all()
        print("stopped: " + ", ".join(f"{n} exit {c}" for n, c in codes.items()))


async def start_console(
    group: ServiceGroup, work_dir: Path, shared: str, lanes: list[SimulatedLane], port: int
) -> ServiceProcess:
    """Start the attendant console over the demo's lanes, with a sign-in code for the store.

    The demo's services run without tokens; the console still signs attendants in, with a
    store-scoped attendant token minted for this run (written to attendant.token, 0600).
    """
    token = mint_token()
    token_path = work_dir / "attendant.token"
    fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    tokens_path = work_dir / "console-tokens.yaml"
    tokens_path.write_text(
        "tokens:\n  - name: demo-attendant\n    role: attendant\n"
        f'    stores: ["{STORE_ID}"]\n    sha256: {hash_token(token)}\n',
        encoding="utf-8",
    )
    lane_tables = "".join(
        f'\n[[console.lanes]]\nstore_id = "{STORE_ID}"\nlane_id = "{lane.plan.lane_id}"\n'
        f'device = "{group.services[f"device-{lane.plan.lane_id}"].address}"\n'
        for lane in lanes
    )
    config_path = work_dir / "console.toml"
    config_path.write_text(
        shared
        + f'\n[auth]\ntokens_file = "{tokens_path}"\n'
        + f"\n[console]\nhttp_port = {port}\n"
        + lane_tables,
        encoding="utf-8",
    )
    return await group.start("console", config_path=config_path, health_service="")


async def export_html(address: str, work_dir: Path) -> Path:
    """Ask the reporting service for the HTML report and write it next to the logs."""
    path = work_dir / "report.html"
    async with grpc.aio.insecure_channel(address) as channel:
        stub = reporting_pb2_grpc.ReportingServiceStub(channel)
        request = reporting_pb2.ExportReportRequest(
            kind=reporting_pb2.REPORT_KIND_ALL, format=reporting_pb2.EXPORT_FORMAT_HTML
        )
        with path.open("wb") as sink:
            async for chunk in stub.ExportReport(request, timeout=60):
                sink.write(chunk.chunk)
    return path


def run_demo_cli(args: argparse.Namespace) -> int:
    """Entry point for `lanesight demo`."""
    setup_logging("WARNING", "text", "demo")
    try:
        return asyncio.run(run_demo(args))
    except KeyboardInterrupt:
        print("interrupted; every process was stopped", file=sys.stderr)
        return 130
    except RuntimeError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
