"""A lane-agent-like Ingest client with its own ledger, and real service processes to feed."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from lanesight.common.channels import Backoff
from lanesight.demo.main import free_port
from lanesight.demo.processes import ServiceGroup
from lanesight.v1 import events_pb2, fusion_pb2


def barcode_event(store_id: str, lane_id: str, sequence: int, event_id: str = "") -> bytes:
    """A serialized scanner read stamped like the agent stamps it (lane time now)."""
    event = events_pb2.LaneEvent(
        event_id=event_id or f"{store_id}-{lane_id}-{sequence}",
        store_id=store_id,
        lane_id=lane_id,
        sequence=sequence,
        source_device_id="scanner-1",
    )
    event.lane_time.FromNanoseconds(time.time_ns())
    event.barcode_read.scanner_id = "scanner-1"
    event.barcode_read.raw_data = "5000112637922"
    event.barcode_read.gtin = "05000112637922"
    return event.SerializeToString()


def no_sale_event(store_id: str, lane_id: str, sequence: int) -> bytes:
    """A serialized no-sale drawer opening: fusion raises one POS-exception alert for it."""
    event = events_pb2.LaneEvent(
        event_id=f"{store_id}-{lane_id}-{sequence}",
        store_id=store_id,
        lane_id=lane_id,
        sequence=sequence,
        source_device_id="pos",
    )
    event.lane_time.FromNanoseconds(time.time_ns())
    event.no_sale_drawer_open.operator_id = "op-1"
    return event.SerializeToString()


def _ingest_request(payloads: list[bytes]) -> bytes:
    return b"".join(b"\x0a" + _varint(len(p)) + p for p in payloads)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@dataclass
class LaneLedger:
    """What one lane sent and what fusion acknowledged (the lane's outbox, in memory)."""

    store_id: str
    lane_id: str
    pending: dict[int, bytes] = field(default_factory=dict)  # sequence -> event, unacked
    first_sent_s: dict[int, float] = field(default_factory=dict)
    ack_latencies_s: list[float] = field(default_factory=list)
    last_sequence: int = 0
    acked_sequence: int = 0
    stream_errors: int = 0
    no_sales: list[int] = field(default_factory=list)  # sequences of no-sale events

    def event_id(self, sequence: int) -> str:
        return f"{self.store_id}-{self.lane_id}-{sequence}"

    def record(self, count: int = 1, no_sale_every: int = 0) -> None:
        """Stamp new events into the ledger (the agent's outbox append); with no_sale_every,
        every so many sequences is a no-sale drawer opening (an alert) instead of a scan."""
        for _ in range(count):
            self.last_sequence += 1
            sequence = self.last_sequence
            if no_sale_every and sequence % no_sale_every == 0:
                self.no_sales.append(sequence)
                self.pending[sequence] = no_sale_event(self.store_id, self.lane_id, sequence)
            else:
                self.pending[sequence] = barcode_event(self.store_id, self.lane_id, sequence)

    def acked_ids(self) -> set[str]:
        return {self.event_id(n) for n in range(1, self.acked_sequence + 1)}


class LaneClient:
    """Sends a ledger's pending events over FusionService.Ingest, in order, resending from
    the last ack after any stream error (what the lane agent's fusion link does)."""

    def __init__(self, address: str, ledger: LaneLedger, batch_max: int = 50) -> None:
        self.address = address
        self.ledger = ledger
        self.batch_max = batch_max
        self.wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        backoff = Backoff(initial_s=0.1, max_s=1.0)
        while True:
            async with grpc.aio.insecure_channel(self.address) as channel:
                ingest = channel.stream_stream(
                    "/lanesight.v1.FusionService/Ingest",
                    request_serializer=lambda raw: raw,
                    response_deserializer=fusion_pb2.IngestResponse.FromString,
                )
                call = ingest()
                try:
                    await self._session(call)
                except Exception:  # any stream error (InvalidStateError on a write too)
                    self.ledger.stream_errors += 1
                finally:
                    call.cancel()
            await asyncio.sleep(backoff.next_delay())

    async def _session(self, call) -> None:
        ledger = self.ledger
        sent = ledger.acked_sequence

        async def send() -> None:
            nonlocal sent
            while True:
                upto = min(ledger.last_sequence, sent + self.batch_max)
                if upto <= sent or sent - ledger.acked_sequence > 2000:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                now = time.monotonic()
                batch = []
                for n in range(max(sent, ledger.acked_sequence) + 1, upto + 1):
                    batch.append(ledger.pending[n])
                    ledger.first_sent_s.setdefault(n, now)
                await call.write(_ingest_request(batch))
                sent = upto

        async def receive() -> None:
            while True:
                response = await call.read()
                if response is grpc.aio.EOF:
                    raise ConnectionError("fusion ended the stream")
                now = time.monotonic()
                for n in range(ledger.acked_sequence + 1, response.acked_sequence + 1):
                    ledger.pending.pop(n, None)
                    started = ledger.first_sent_s.pop(n, None)
                    if started is not None:
                        ledger.ack_latencies_s.append(now - started)
                ledger.acked_sequence = max(ledger.acked_sequence, response.acked_sequence)
                self.wake.set()

        await call.wait_for_connection()
        tasks = [asyncio.create_task(send()), asyncio.create_task(receive())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Stack:
    """fusion and reporting as real processes on fixed loopback ports, state in work_dir."""

    work_dir: Path
    group: ServiceGroup
    ports: dict[str, int]

    @classmethod
    def create(cls, work_dir: Path, extra: str = "") -> Stack:
        ports = {"fusion": free_port(), "reporting": free_port()}
        peers = "\n".join(f'{name} = "127.0.0.1:{port}"' for name, port in ports.items())
        config = work_dir / "lanesight.toml"
        config.write_text(
            f"[server]\ngrace_s = 5.0\n\n[peers]\n{peers}\n\n"
            f'[reporting]\ndb_path = "{work_dir / "reporting.db"}"\n\n'
            f'[fusion]\nstore_path = "{work_dir / "fusion.sqlite"}"\n{extra}',
            encoding="utf-8",
        )
        return cls(work_dir, ServiceGroup(config, work_dir), ports)

    def address(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    async def start(self, service: str) -> None:
        await self.group.start(service)

    def running(self, service: str) -> bool:
        proc = self.group.services.get(service)
        return proc is not None and proc.process.returncode is None

    async def terminate(self, service: str, timeout_s: float = 20.0) -> int | None:
        """SIGTERM and wait for the exit."""
        process = self.group.services[service].process
        if process.returncode is None:
            process.terminate()
        return await asyncio.wait_for(process.wait(), timeout_s)

    async def kill(self, service: str) -> None:
        """kill -9 and wait for the exit."""
        process = self.group.services[service].process
        if process.returncode is None:
            process.kill()
        await process.wait()

    def stored_event_ids(self) -> list[str]:
        """Every event id reporting has stored (one row each: repeats would show twice)."""
        return [row[0] for row in self.query("SELECT event_id FROM events")]

    def query(self, sql: str) -> list[tuple]:
        """Rows from reporting's database (read only; [] before it exists)."""
        db = self.work_dir / "reporting.db"
        if not db.exists():
            return []
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            conn.execute("PRAGMA busy_timeout = 5000")
            return conn.execute(sql).fetchall()

    def pid(self, service: str) -> int | None:
        """The running process id of a service, None when it is not running."""
        proc = self.group.services.get(service)
        if proc is None or proc.process.returncode is not None:
            return None
        return proc.process.pid

    async def close(self) -> None:
        await self.group.stop_all(timeout_s=10.0)
