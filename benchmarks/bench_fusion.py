"""Fusion speed: in-process events/s, gRPC ingest vs a bare grpc.aio stream, alert latency.

Run: .venv/bin/python benchmarks/bench_fusion.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lanesight.common.config import load_config  # noqa: E402
from lanesight.common.server import start_server  # noqa: E402
from lanesight.fusion.app import create_app  # noqa: E402
from lanesight.fusion.catalog import DEMO_CATALOG, CatalogBook, load_catalog_file  # noqa: E402
from lanesight.fusion.convert import event_to_pb, events_from_pb, set_ms  # noqa: E402
from lanesight.fusion.engine import FusionEngine  # noqa: E402
from lanesight.simulation.scenarios.scenario import Noise, lane_events  # noqa: E402
from lanesight.simulation.scenarios.shoppers import generate_lanes  # noqa: E402
from lanesight.v1 import fusion_pb2, fusion_pb2_grpc, reporting_pb2, reporting_pb2_grpc  # noqa: E402

BATCH = 100
GRPC_ROUNDS = 3


def lane_streams(lanes: int, transactions: int, seed: int = 5, loss_rate: float = 0.3):
    items = load_catalog_file(DEMO_CATALOG)
    generated = generate_lanes(seed, lanes, transactions, items, Noise(), loss_rate)
    return items, [lane_events(s, f"b{seed}", Noise(), seed + i) for i, s in enumerate(generated)]


# ---- 1. in-process ------------------------------------------------------------------


def bench_in_process(items, streams) -> list[tuple[str, float]]:
    catalog = CatalogBook()
    catalog.upsert("", items)
    rows = []
    engine = FusionEngine(catalog=catalog)
    count = sum(len(s) for s in streams)
    started = time.process_time()
    for stream in streams:
        for start in range(0, len(stream), 32):
            engine.ingest(stream[start : start + 32])
        engine.take_outputs()
    engine.flush()
    rows.append(("engine, domain events", count / (time.process_time() - started)))
    messages = [[event_to_pb(e) for e in stream] for stream in streams]
    engine = FusionEngine(catalog=catalog)
    started = time.process_time()
    for stream in messages:
        for start in range(0, len(stream), 32):
            engine.ingest(events_from_pb(stream[start : start + 32]))
        engine.take_outputs()
    rows.append(("engine + protobuf decode", count / (time.process_time() - started)))
    return rows


# ---- 2. gRPC ingest against a bare stream -------------------------------------------


class BareIngest(fusion_pb2_grpc.FusionServiceServicer):
    """The baseline: a grpc.aio bidi stream that only acknowledges each batch."""

    async def Ingest(self, request_iterator, context):
        async for request in request_iterator:
            last = request.events[-1]
            yield fusion_pb2.IngestResponse(
                store_id=last.store_id, lane_id=last.lane_id, acked_sequence=last.sequence
            )


class DecodeOnlyIngest(fusion_pb2_grpc.FusionServiceServicer):
    """The bare stream plus fusion's protobuf -> domain decode of every event, no rules:
    what Ingest could reach with rules that cost nothing."""

    async def Ingest(self, request_iterator, context):
        async for request in request_iterator:
            last = events_from_pb(request.events)[-1]
            yield fusion_pb2.IngestResponse(
                store_id=last.store_id, lane_id=last.lane_id, acked_sequence=last.sequence
            )


class SinkReporting(reporting_pb2_grpc.ReportingServiceServicer):
    """A reporting peer that acknowledges every batch of records and keeps nothing."""

    def __init__(self) -> None:
        self.acked_upto = 0
        self.progress = asyncio.Event()

    async def IngestRecords(self, request_iterator, context):
        async for request in request_iterator:
            self.acked_upto = request.records[-1].record_sequence
            self.progress.set()
            yield reporting_pb2.IngestRecordsResponse(acked_record_sequence=self.acked_upto)

    async def wait_for(self, sequence: int, timeout_s: float = 30.0) -> None:
        """Until every record up to sequence has been received and acknowledged."""
        async with asyncio.timeout(timeout_s):
            while self.acked_upto < sequence:
                self.progress.clear()
                await self.progress.wait()


async def _send_all(port: int, requests_by_lane) -> float:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)

        async def one_lane(requests):
            call = stub.Ingest()
            for request in requests:
                await call.write(request)
                await call.read()
            await call.done_writing()

        started = time.perf_counter()
        await asyncio.gather(*(one_lane(r) for r in requests_by_lane))
        return time.perf_counter() - started


async def _bare_server(servicer) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    fusion_pb2_grpc.add_FusionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def _bare_run(servicer, requests_by_lane) -> float:
    server, port = await _bare_server(servicer)
    elapsed = await _send_all(port, requests_by_lane)
    await server.stop(0)
    return elapsed


async def _ingest_run(env: dict[str, str], store: Path, requests_by_lane) -> float:
    config = load_config(None, environ={**env, "LANESIGHT_FUSION__STORE_PATH": str(store)})
    running = await start_server(create_app(config), config, port=0)
    elapsed = await _send_all(running.port, requests_by_lane)
    await running.stop()
    return elapsed


async def _forwarding_run(env: dict[str, str], store: Path, requests_by_lane) -> float:
    """As deployed: every processed event and alert revision also goes to reporting (here
    a sink that acknowledges them); timed until reporting has acknowledged everything."""
    sink = grpc.aio.server()
    reporting = SinkReporting()
    reporting_pb2_grpc.add_ReportingServiceServicer_to_server(reporting, sink)
    sink_port = sink.add_insecure_port("127.0.0.1:0")
    await sink.start()
    config = load_config(
        None,
        environ={
            **env,
            "LANESIGHT_FUSION__STORE_PATH": str(store),
            "LANESIGHT_FUSION__FORWARD_TO_REPORTING": "true",
            "LANESIGHT_PEERS__REPORTING": f"127.0.0.1:{sink_port}",
        },
    )
    app = create_app(config)
    running = await start_server(app, config, port=0)
    elapsed = await _send_all(running.port, requests_by_lane)
    assert app.forwarder is not None
    started = time.perf_counter()
    await reporting.wait_for(app.forwarder.next_sequence - 1)
    elapsed += time.perf_counter() - started
    await running.stop()
    await sink.stop(0)
    return elapsed


async def bench_grpc(streams, env: dict[str, str], workdir: Path) -> list[tuple[str, float]]:
    """Every server gets the same client (in this process, on loopback), the same
    messages and the same batching; each deserialises every request. The servers take
    turns for GRPC_ROUNDS rounds and each reports its median, so one noisy moment on
    this shared machine does not decide the ratio; each fusion run starts from an empty
    store."""
    requests_by_lane = [
        [
            fusion_pb2.IngestRequest(events=[event_to_pb(e) for e in stream[i : i + BATCH]])
            for i in range(0, len(stream), BATCH)
        ]
        for stream in streams
    ]
    count = sum(len(s) for s in streams)
    runs: list[tuple[float, ...]] = []
    for round_ in range(GRPC_ROUNDS):
        runs.append(
            (
                await _bare_run(BareIngest(), requests_by_lane),
                await _bare_run(DecodeOnlyIngest(), requests_by_lane),
                await _ingest_run(env, workdir / f"ingest-{round_}.sqlite", requests_by_lane),
                await _forwarding_run(
                    env, workdir / f"forwarding-{round_}.sqlite", requests_by_lane
                ),
            )
        )
    names = (
        f"bare grpc.aio bidi stream ({BATCH}/msg)",
        "  + decode to domain events, no rules",
        f"FusionService.Ingest ({BATCH}/msg)",
        "  + forwarding to reporting",
    )
    medians = [statistics.median(seconds) for seconds in zip(*runs, strict=True)]
    return [(name, count / seconds) for name, seconds in zip(names, medians, strict=True)]


# ---- 3. alert latency on the watch stream -------------------------------------------


def latency_streams(lanes: int, seed: int = 9):
    """Each lane's events from its first transaction with a staged loss onward, so a
    short real-time run sees plenty of alerts."""
    items = load_catalog_file(DEMO_CATALOG)
    generated = generate_lanes(seed, lanes, 3, items, Noise(), loss_rate=1.0)
    streams = []
    for index, scenarios in enumerate(generated):
        first = next((i for i, sc in enumerate(scenarios) if sc.losses), 0)
        streams.append(lane_events(scenarios[first:], f"l{seed}", Noise(), seed + index))
    return streams


def start_fusion_process(env: dict[str, str]) -> tuple[subprocess.Popen, int]:
    """`lanesight serve fusion --port 0` in its own process, as in production."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lanesight", "serve", "fusion", "--port", "0"],
        cwd=env["WORKDIR"],
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if match := re.search(r"serving on [\d.]+:(\d+)", line):
            return proc, int(match.group(1))
    raise RuntimeError("fusion did not start")


async def bench_latency(streams, seconds: float, port: int) -> dict[str, float]:
    """Lanes replay their events in real time with lane time = wall time; a watcher
    measures now - alert.raised_at (the lane time of the deciding event or window)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        watch = stub.WatchAlerts(fusion_pb2.WatchAlertsRequest())
        await watch.initial_metadata()
        latencies: list[float] = []
        sent = [0]
        rejected = [0]

        async def follow():
            async for message in watch:
                now_ms = time.time() * 1000
                raised = message.alert.raised_at
                latencies.append(now_ms - (raised.seconds * 1000 + raised.nanos / 1e6))

        follower = asyncio.create_task(follow())
        t0 = time.time() * 1000

        async def lane(stream):
            # Like a lane agent: each event stamped with the agent's clock when it
            # happens and sent at once, batched only with events a few ms apart.
            call = stub.Ingest()
            base = stream[0].lane_time_ms
            pending: list = []
            for index, event in enumerate(stream):
                due = (event.lane_time_ms - base) / 1000
                if due > seconds:
                    break
                delay = t0 / 1000 + due - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                msg = event_to_pb(event)
                set_ms(msg.lane_time, int(time.time() * 1000))
                pending.append(msg)
                following = stream[index + 1].lane_time_ms if index + 1 < len(stream) else 0
                if not following or following - event.lane_time_ms > 5:
                    await call.write(fusion_pb2.IngestRequest(events=pending))
                    response = await call.read()
                    rejected[0] += len(response.rejections)
                    sent[0] += len(pending)
                    pending = []
            if pending:
                await call.write(fusion_pb2.IngestRequest(events=pending))
                await call.read()
                sent[0] += len(pending)
            await call.done_writing()

        started = time.perf_counter()
        await asyncio.gather(*(lane(s) for s in streams))
        elapsed = time.perf_counter() - started
        await asyncio.sleep(0.5)
        watch.cancel()
        try:
            await follower
        except (asyncio.CancelledError, grpc.aio.AioRpcError):
            pass
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
    return {
        "lanes": len(streams),
        "events_per_s": sent[0] / elapsed,
        "alerts": len(latencies),
        "rejected": rejected[0],
        "p50_ms": statistics.median(latencies) if latencies else float("nan"),
        "p99_ms": pick(0.99) if latencies else float("nan"),
        "max_ms": latencies[-1] if latencies else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller runs")
    parser.add_argument("--lanes", type=int, default=500, help="lanes in the latency run")
    parser.add_argument("--seconds", type=float, default=25.0, help="latency run length")
    args = parser.parse_args()
    quick = args.quick
    items, streams = lane_streams(8 if quick else 16, 20 if quick else 40)
    count = sum(len(s) for s in streams)
    rows = bench_in_process(items, streams)
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-fusion-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        "LANESIGHT_FUSION__FORWARD_TO_REPORTING": "false",
        "LANESIGHT_FUSION__STORE_PATH": str(workdir / "fusion.sqlite"),
        "LANESIGHT_LOGGING__LEVEL": "WARNING",
    }
    grpc_rows = asyncio.run(bench_grpc(streams, env, workdir))
    lanes = 100 if quick else args.lanes
    lat_streams = latency_streams(lanes)
    proc, port = start_fusion_process({**env, "WORKDIR": str(workdir)})
    try:
        latency = asyncio.run(bench_latency(lat_streams, 8 if quick else args.seconds, port))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"fusion benchmark ({count:,} simulated lane events, {os.cpu_count()} CPUs)")
    print(f"{'measure':<44}{'value':>16}")
    for name, rate in rows:
        print(f"{name + ' (1 core)':<44}{rate:>12,.0f} ev/s")
    for name, rate in grpc_rows:
        print(f"{name:<44}{rate:>12,.0f} ev/s")
    bare, decode_only, ingest, forwarding = (rate for _, rate in grpc_rows)
    print(f"{'ingest / bare stream ratio':<44}{ingest / bare:>16.2f}")
    print(f"{'  with forwarding to reporting':<44}{forwarding / bare:>16.2f}")
    print(f"{'  ceiling: decode only / bare stream':<44}{decode_only / bare:>16.2f}")
    print(
        f"{'alert latency, ' + str(latency['lanes']) + ' live lanes':<44}"
        f"{latency['events_per_s']:>12,.0f} ev/s"
    )
    for key in ("alerts", "rejected", "p50_ms", "p99_ms", "max_ms"):
        value = latency[key]
        text = f"{value:,.0f}" if key in ("alerts", "rejected") else f"{value:,.1f} ms"
        print(f"{'  ' + key:<44}{text:>16}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
