"""Telemetry benchmark: what metrics and spans cost on the hot paths, against a baseline
measured in the same run without them.

- device: a lane event through the recorder into the outbox (committed), with and
  without the agent's metrics listener recording into an OpenTelemetry SDK meter;
- rpc: a unary gRPC call, with and without the server span and stream interceptors
  (SDK tracer with a batch processor whose exporter drops the spans).

Run: .venv/bin/python benchmarks/bench_telemetry.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
from lanesight.common.telemetry import StreamsInterceptor, tracing_interceptor
from lanesight.device import metrics as device_metrics
from lanesight.device.outbox import Outbox, OutboxLimits
from lanesight.device.recorder import EventRecorder
from lanesight.v1 import events_pb2
from opentelemetry import metrics
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

ROWS: list[tuple[str, int, str, str, str]] = []


class _Drop(SpanExporter):
    def export(self, spans) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class _Agent:
    """What the metrics listener reads of a lane agent."""

    store_id, lane_id = "store-1", "lane-1"


def _event(n: int) -> events_pb2.LaneEvent:
    return events_pb2.LaneEvent(
        event_id=f"e-{n}",
        transaction_id="t-1",
        barcode_read=events_pb2.BarcodeRead(scanner_id="scanner-1", raw_data="5000112637922"),
    )


async def _record(n: int, listen: bool, folder: Path) -> float:
    """Microseconds per event, one event per commit (how a lane records)."""
    folder.mkdir(parents=True, exist_ok=True)
    outbox = Outbox(str(folder / "outbox.db"), OutboxLimits(synchronous="normal"))
    await outbox.open()
    recorder = EventRecorder(outbox, "store-1", "lane-1")
    if listen:
        agent = _Agent()
        recorder.listeners.append(lambda event: device_metrics._on_event(agent, event))  # type: ignore[arg-type]
    try:
        started = time.perf_counter()
        for i in range(n):
            await recorder.record(_event(i))
        return (time.perf_counter() - started) / n * 1e6
    finally:
        await outbox.close()


def _listener_cost(n: int) -> float:
    """Microseconds per call of the listener alone."""
    agent, event = _Agent(), _event(0)
    event.lane_time.GetCurrentTime()
    started = time.perf_counter()
    for _ in range(n):
        device_metrics._on_event(agent, event)  # type: ignore[arg-type]
    return (time.perf_counter() - started) / n * 1e6


async def _calls(n: int, interceptors: list[grpc.aio.ServerInterceptor]) -> float:
    """Median microseconds of a unary call to a server with these interceptors."""

    async def echo(request: bytes, context) -> bytes:
        return request

    server = grpc.aio.server(interceptors=interceptors)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "bench.Echo", {"Call": grpc.unary_unary_rpc_method_handler(echo)}
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary("/bench.Echo/Call")
            for _ in range(50):  # warm up
                await call(b"x")
            samples = []
            for _ in range(n):
                started = time.perf_counter()
                await call(b"x")
                samples.append(time.perf_counter() - started)
        return statistics.median(samples) * 1e6
    finally:
        await server.stop(None)


async def main(quick: bool) -> int:
    events = 300 if quick else 2000
    calls = 300 if quick else 2000
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    # Alternate baseline and telemetry rounds and take medians: the machine's load drifts.
    rounds = 3 if quick else 7
    base_runs, listened_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            base_runs.append(await _record(events // rounds, False, Path(tmp) / f"b{r}"))
            listened_runs.append(await _record(events // rounds, True, Path(tmp) / f"t{r}"))
    base, listened = statistics.median(base_runs), statistics.median(listened_runs)
    ROWS.append(
        ("device: event recorded", events, f"{base:.0f} µs", f"{listened:.0f} µs",
         f"{listened / base:.2f}x")
    )  # fmt: skip
    alone = _listener_cost(events * 10)
    ROWS.append(("device: metrics listener alone", events * 10, "-", f"{alone:.1f} µs", "-"))
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Drop()))
    runs: dict[str, list[float]] = {"plain": [], "traced": [], "upstream": []}
    for _ in range(rounds):
        runs["plain"].append(await _calls(calls // rounds, []))
        runs["traced"].append(
            await _calls(calls // rounds, [tracing_interceptor(provider), StreamsInterceptor()])
        )
        runs["upstream"].append(
            await _calls(calls // rounds, [aio_server_interceptor(tracer_provider=provider)])
        )
    plain, traced, upstream = (statistics.median(runs[k]) for k in ("plain", "traced", "upstream"))
    provider.shutdown()
    ROWS.append(
        ("rpc: unary call (p50)", calls, f"{plain:.0f} µs", f"{traced:.0f} µs",
         f"{traced / plain:.2f}x")
    )  # fmt: skip
    ROWS.append(
        ("rpc: same, upstream interceptor", calls, f"{plain:.0f} µs", f"{upstream:.0f} µs",
         f"{upstream / plain:.2f}x")
    )  # fmt: skip
    print(f"{'what':34} {'n':>7} {'baseline':>10} {'telemetry':>10} {'ratio':>7}")
    for name, n, a, b, ratio in ROWS:
        print(f"{name:34} {n:>7} {a:>10} {b:>10} {ratio:>7}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    sys.exit(asyncio.run(main(parser.parse_args().quick)))
