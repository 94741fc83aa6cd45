"""Device benchmark: latency from the last byte on the wire to the event leaving the lane agent
(scanner and scale), and the outbox's cost per event, each against a baseline measured in the
same run. Run: .venv/bin/python benchmarks/bench_device.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
from lanesight.common.channels import Backoff
from lanesight.common.config import LanesightConfig
from lanesight.device.drivers.base import HealthTracker
from lanesight.device.drivers.scale import ScaleDriver
from lanesight.device.drivers.scanner import ScannerDriver
from lanesight.device.drivers.transport import SerialSettings, open_byte_stream
from lanesight.device.links.fusion import FusionLink
from lanesight.device.outbox import Outbox, OutboxLimits
from lanesight.device.protocols import mettler_8217
from lanesight.device.readings import DeviceKindName, HealthState
from lanesight.device.recorder import EventRecorder
from lanesight.simulation.devices import SimulatedScale, SimulatedScanner, make_endpoint
from lanesight.v1 import events_pb2, fusion_pb2, fusion_pb2_grpc

ROWS: list[tuple[str, int, str, str, str]] = []  # name, n, col1, col2, ratio


class TimingFusion(fusion_pb2_grpc.FusionServiceServicer):
    """Acks everything and notes when each sequence arrived."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.waiters: dict[int, asyncio.Future] = {}

    async def Ingest(self, request_iterator, context):
        async for request in request_iterator:
            now = time.perf_counter()
            for event in request.events:
                self.arrived[event.sequence] = now
                waiter = self.waiters.pop(event.sequence, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(now)
            yield fusion_pb2.IngestResponse(acked_sequence=request.events[-1].sequence)


async def wait_connected(driver, timeout_s: float = 10.0) -> None:
    """Poll until the driver shows connected."""
    for _ in range(int(timeout_s / 0.01)):
        if driver.health.state is HealthState.CONNECTED:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{driver.device_id} did not connect")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latency_row(name: str, samples: list[float], baseline: list[float] | None) -> None:
    p50, p99 = percentile(samples, 50) * 1e3, percentile(samples, 99) * 1e3
    ratio = ""
    if baseline:
        ratio = f"{p50 / (percentile(baseline, 50) * 1e3):.1f}x base p50"
    ROWS.append((name, len(samples), f"p50 {p50:7.3f} ms", f"p99 {p99:7.3f} ms", ratio))


class LaneUnderTest:
    """An outbox, a recorder and a fusion link to an in-process acking fusion."""

    def __init__(self, folder: Path, synchronous: str) -> None:
        self.folder = folder
        self.synchronous = synchronous

    async def __aenter__(self) -> LaneUnderTest:
        self.fusion = TimingFusion()
        self.server = grpc.aio.server()
        fusion_pb2_grpc.add_FusionServiceServicer_to_server(self.fusion, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self.outbox = Outbox(
            self.folder / f"bench-{self.synchronous}-{time.monotonic_ns()}.db",
            OutboxLimits(synchronous=self.synchronous),
        )
        await self.outbox.open()
        self.recorder = EventRecorder(self.outbox, "bench", "lane-1")
        self.committed: dict[int, float] = {}
        self.recorder.listeners.append(
            lambda event: self.committed.__setitem__(event.sequence, time.perf_counter())
        )
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")

        async def sink(reading) -> None:
            await self.recorder.record_reading(reading)

        self.sink = sink
        health = HealthTracker("fusion", DeviceKindName.FUSION_LINK, "", self._ignore)
        self.link = FusionLink(self.channel, self.outbox, health, backoff=Backoff(0.01, 0.05))
        self.link_task = asyncio.create_task(self.link.run())
        return self

    @staticmethod
    async def _ignore(reading) -> None:
        return None

    async def wait_for_sequence(self, sequence: int) -> float:
        if sequence in self.fusion.arrived:
            return self.fusion.arrived[sequence]
        future = asyncio.get_running_loop().create_future()
        self.fusion.waiters[sequence] = future
        return await asyncio.wait_for(future, 10)

    async def __aexit__(self, *exc) -> None:
        self.link_task.cancel()
        await asyncio.gather(self.link_task, return_exceptions=True)
        await self.channel.close()
        await self.outbox.close()
        await self.server.stop(0)


async def bench_scanner(folder: Path, n: int, synchronous: str) -> None:
    sim = SimulatedScanner(make_endpoint("socket"), "cr")
    await sim.start()
    frame = sim.frame("]E00012345678905")
    # Baseline: a bare asyncio read of the same bytes through the same transport.
    reader, writer = await open_byte_stream(sim.url)
    await sim.endpoint.wait_connected()
    baseline = []
    for _ in range(n):
        start = time.perf_counter()
        sim.endpoint.write(frame)
        await reader.readuntil(b"\r")
        baseline.append(time.perf_counter() - start)
    writer.close()
    async with LaneUnderTest(folder, synchronous) as lane:
        driver = ScannerDriver("scanner-1", DeviceKindName.SCANNER, sim.url, lane.sink)
        task = asyncio.create_task(driver.run())
        await wait_connected(driver)
        await asyncio.sleep(0.05)
        to_outbox, to_fusion = [], []
        for _ in range(n):
            sequence = lane.outbox.last_sequence + 1
            start = time.perf_counter()
            sim.endpoint.write(frame)
            arrived = await lane.wait_for_sequence(sequence)
            to_outbox.append(lane.committed[sequence] - start)
            to_fusion.append(arrived - start)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await sim.stop()
    if synchronous == "full":
        latency_row("bare asyncio read, scan (baseline)", baseline, None)
    latency_row(f"scan -> outbox commit ({synchronous})", to_outbox, baseline)
    latency_row(f"scan -> at fusion ({synchronous})", to_fusion, baseline)


async def bench_scale(folder: Path, n: int) -> None:
    sim = SimulatedScale(make_endpoint("socket", 7, "E"), "8217")
    await sim.start()
    sent_at: dict[int, float] = {}
    original_write = sim.endpoint.write

    def timed_write(data: bytes) -> None:
        original_write(data)
        if data.startswith(b"\x02") and data[1:2].isdigit():
            sent_at.setdefault(sim.displayed_mg, time.perf_counter())

    sim.endpoint.write = timed_write
    # Baseline: request and bare read of the same reply bytes.
    reader, writer = await open_byte_stream(sim.url, SerialSettings(9600, 7, "E", 1))
    await sim.endpoint.wait_connected()
    baseline = []
    for index in range(n):
        sim.set_weight(100_000 + index * 1000)
        sent_at.clear()
        writer.write(mettler_8217.CMD_WEIGHT)
        await reader.readuntil(b"\r")
        baseline.append(time.perf_counter() - sent_at[sim.displayed_mg])
    writer.close()
    await asyncio.sleep(0.05)
    async with LaneUnderTest(folder, "full") as lane:
        driver = ScaleDriver(
            "scale-1",
            DeviceKindName.BAGGING_SCALE,
            sim.url,
            lane.sink,
            settings=SerialSettings(9600, 7, "E", 1),
            protocol="8217",
            role="bagging",
            poll_interval_s=0.005,
        )
        task = asyncio.create_task(driver.run())
        await wait_connected(driver)
        await asyncio.sleep(0.1)
        to_fusion = []
        for index in range(n):
            weight = 500_000 + index * 1000
            sequence = lane.outbox.last_sequence + 1
            sent_at.pop(weight, None)
            sim.set_weight(weight)
            arrived = await lane.wait_for_sequence(sequence)
            to_fusion.append(arrived - sent_at[weight])
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    await sim.stop()
    latency_row("bare asyncio read, 8217 reply (baseline)", baseline, None)
    latency_row("scale reply -> at fusion (full)", to_fusion, baseline)


def _rows(n: int) -> list[tuple[int, str, int, bytes]]:
    event = events_pb2.LaneEvent(store_id="bench", lane_id="lane-1", event_id="x" * 36)
    event.barcode_read.raw_data = "0012345678905"
    event.barcode_read.gtin = "00012345678905"
    payload = event.SerializeToString()
    return [(i + 1, f"{i:036d}", 1_700_000_000_000_000_000 + i, payload) for i in range(n)]


def throughput_row(name: str, n: int, seconds: float, baseline_s: float | None) -> None:
    per_event_us = seconds / n * 1e6
    ratio = f"{per_event_us / (baseline_s / n * 1e6):.1f}x base" if baseline_s else ""
    ROWS.append((name, n, f"{per_event_us:9.1f} us/event", f"{n / seconds:9.0f} ev/s", ratio))


def bare_sqlite(path: Path, rows, synchronous: str, per_row_commit: bool) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous.upper()}")
    db.execute(
        "CREATE TABLE events (sequence INTEGER PRIMARY KEY, event_id TEXT, "
        "lane_time_ns INTEGER, payload BLOB)"
    )
    start = time.perf_counter()
    if per_row_commit:
        for row in rows:
            db.execute("BEGIN")
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", row)
            db.execute("COMMIT")
    else:
        db.execute("BEGIN")
        db.executemany("INSERT INTO events VALUES (?, ?, ?, ?)", rows)
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed


async def bench_outbox(folder: Path, n_sequential: int, n_batch: int) -> None:
    rows = _rows(n_batch)
    start = time.perf_counter()
    memory = []
    for row in rows:
        memory.append(row)
    list_s = time.perf_counter() - start
    throughput_row("in-memory list append (baseline)", n_batch, list_s, None)
    for synchronous in ("full", "normal"):
        bare_one = bare_sqlite(
            folder / f"bare1-{synchronous}.db", rows[:n_sequential], synchronous, True
        )
        throughput_row(
            f"bare sqlite insert+commit per row ({synchronous}, baseline)",
            n_sequential,
            bare_one,
            None,
        )
        outbox = Outbox(folder / f"seq-{synchronous}.db", OutboxLimits(synchronous=synchronous))
        await outbox.open()
        recorder = EventRecorder(outbox, "bench", "lane-1")
        template = events_pb2.LaneEvent()
        template.barcode_read.raw_data = "0012345678905"
        start = time.perf_counter()
        for _ in range(n_sequential):
            event = events_pb2.LaneEvent()
            event.CopyFrom(template)
            await recorder.record(event)
        throughput_row(
            f"outbox record, one at a time ({synchronous})",
            n_sequential,
            time.perf_counter() - start,
            bare_one,
        )
        await outbox.close()
    bare_batch = bare_sqlite(folder / "bare-batch.db", rows, "full", False)
    throughput_row("bare sqlite executemany, one commit (baseline)", n_batch, bare_batch, None)
    outbox = Outbox(folder / "batch.db", OutboxLimits(synchronous="full"))
    await outbox.open()
    recorder = EventRecorder(outbox, "bench", "lane-1")
    start = time.perf_counter()
    for offset in range(0, n_batch, 50):  # 50 producers at once: group commit
        events = []
        for _ in range(min(50, n_batch - offset)):
            event = events_pb2.LaneEvent()
            event.barcode_read.raw_data = "0012345678905"
            events.append(event)
        await asyncio.gather(*(recorder.record(event) for event in events))
    written_s = time.perf_counter() - start
    throughput_row("outbox record, 50 concurrent (full)", n_batch, written_s, bare_batch)
    start = time.perf_counter()
    acked = 0
    while acked < n_batch:
        batch = await outbox.read_after(acked, 200)
        acked = batch[-1].sequence
        await outbox.ack(acked)
    ack_s = time.perf_counter() - start
    throughput_row("outbox read+ack+delete, 200/batch", n_batch, ack_s, bare_batch)
    throughput_row("outbox written and acknowledged (full)", n_batch, written_s + ack_s, bare_batch)
    await outbox.close()


def print_table() -> None:
    widths = [max(len(str(row[i])) for row in ROWS) for i in range(5)]
    header = ("measurement", "n", "", "", "vs baseline")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in ROWS:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))


async def main(quick: bool) -> None:
    LanesightConfig()  # config imports stay valid
    n_latency = 100 if quick else 300
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        await bench_scanner(folder, n_latency, "full")
        await bench_scanner(folder, n_latency, "normal")
        await bench_scale(folder, n_latency // 2)
        await bench_outbox(folder, 300 if quick else 1000, 2000 if quick else 10_000)
    print_table()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples")
    asyncio.run(main(parser.parse_args().quick))
