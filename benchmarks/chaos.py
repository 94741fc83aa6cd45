"""Chaos: lanes feed real fusion and reporting processes while a schedule kills, stops and
restarts them; a ledger counts every event and alert sent, acknowledged and stored.

    python benchmarks/chaos.py --lanes 4 --seconds 60
    python benchmarks/chaos.py --lanes 50 --seconds 300 --rate 10

Each lane is a lane-agent-like Ingest client with its own ledger (its outbox in memory):
it resends from the last acknowledgement after every stream error. Every 20th event is a
no-sale drawer opening, which fusion turns into one alert. The schedule cycles through
kill -9, SIGTERM and SIGSTOP/SIGCONT of fusion, then of reporting. At the end the lanes
drain, every open alert in reporting is resolved through fusion, and the table says what
was lost or duplicated (the invariants: 0 and 0, every alert resolvable).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import grpc
from lanesight.v1 import alerts_pb2, fusion_pb2, fusion_pb2_grpc

from tests.reliability.lanes import LaneClient, LaneLedger, Stack

STORE = "store-1"
NO_SALE_EVERY = 20
ACTIONS = (
    ("kill -9", "fusion"),
    ("SIGTERM", "fusion"),
    ("SIGSTOP", "fusion"),
    ("kill -9", "reporting"),
    ("SIGTERM", "reporting"),
    ("SIGSTOP", "reporting"),
)


@dataclass
class Memory:
    """RSS samples of one service, across its restarts (MiB)."""

    samples: list[float] = field(default_factory=list)

    def row(self) -> tuple[float, float, float]:
        if not self.samples:
            return (0.0, 0.0, 0.0)
        return (self.samples[0], max(self.samples), self.samples[-1])


@dataclass
class ChaosResult:
    """What the ledger counted; ``ok`` when the invariants hold."""

    lanes: int
    seconds: float
    actions: list[str]
    sent: int
    acked: int
    stored: int
    lost: int
    duplicated: int
    alerts_expected: int
    alerts_stored: int
    alerts_missing: int
    alerts_duplicated: int
    alerts_open_at_end: int
    alerts_resolved_at_end: int
    ack_p50_ms: float
    ack_p99_ms: float
    memory: dict[str, tuple[float, float, float]]

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.sent == self.acked
            and self.alerts_resolved_at_end == self.alerts_open_at_end
        )

    def table(self) -> str:
        rows = [
            ("lanes / seconds", f"{self.lanes} / {self.seconds:.0f}"),
            ("chaos actions", f"{len(self.actions)} ({', '.join(sorted(set(self.actions)))})"),
            ("events sent", f"{self.sent:,}"),
            ("events acked", f"{self.acked:,}"),
            ("events stored in reporting", f"{self.stored:,}"),
            ("acked events lost", f"{self.lost:,}"),
            ("events duplicated in reporting", f"{self.duplicated:,}"),
            ("alerts expected (acked no-sales)", f"{self.alerts_expected:,}"),
            ("alerts stored in reporting", f"{self.alerts_stored:,}"),
            ("no-sales without an alert", f"{self.alerts_missing:,}"),
            ("no-sales with more than one alert", f"{self.alerts_duplicated:,}"),
            (
                "open alerts resolvable at the end",
                f"{self.alerts_resolved_at_end:,} of {self.alerts_open_at_end:,}",
            ),
            ("ack latency p50 / p99 (ms)", f"{self.ack_p50_ms:.0f} / {self.ack_p99_ms:.0f}"),
        ]
        for name, (start, peak, end) in self.memory.items():
            rows.append(
                (f"{name} RSS start / peak / end (MiB)", f"{start:.0f} / {peak:.0f} / {end:.0f}")
            )
        width = max(len(name) for name, _ in rows)
        lines = [f"| {'measure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|-------|"]
        lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
        return "\n".join(lines)


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def _sample_memory(stack: Stack, memory: dict[str, Memory]) -> None:
    while True:
        for name, record in memory.items():
            pid = stack.pid(name)
            rss = _rss_mib(pid) if pid else None
            if rss is not None:
                record.samples.append(rss)
        await asyncio.sleep(1.0)


async def _produce(ledgers: list[LaneLedger], clients: list[LaneClient], rate: float) -> None:
    """Each lane records `rate` events a second, in small steps."""
    step_s = 0.1
    owed = 0.0
    while True:
        owed += rate * step_s
        count, owed = int(owed), owed - int(owed)
        if count:
            for ledger, client in zip(ledgers, clients, strict=True):
                ledger.record(count, no_sale_every=NO_SALE_EVERY)
                client.wake.set()
        await asyncio.sleep(step_s)


async def _chaos(stack: Stack, interval_s: float, done: list[str], log) -> None:
    for number in range(10**9):
        await asyncio.sleep(interval_s)
        action, service = ACTIONS[number % len(ACTIONS)]
        log(f"chaos: {action} {service}")
        # An action always completes (the service is running again), even when the
        # schedule is cancelled in the middle of it.
        acting = asyncio.ensure_future(_act(stack, action, service, interval_s))
        try:
            await asyncio.shield(acting)
        finally:
            await acting
            done.append(f"{action} {service}")


async def _act(stack: Stack, action: str, service: str, interval_s: float) -> None:
    process = stack.group.services[service].process
    if action == "SIGSTOP":
        process.send_signal(signal.SIGSTOP)
        await asyncio.sleep(min(5.0, interval_s / 2))
        process.send_signal(signal.SIGCONT)
        return
    if action == "kill -9":
        await stack.kill(service)
    else:
        await stack.terminate(service)
    await asyncio.sleep(1.0)
    await stack.start(service)


async def _resolve_open_alerts(stack: Stack) -> tuple[int, int]:
    """Resolve, through fusion, every alert reporting holds open; (open, resolved)."""
    rows = stack.query("SELECT alert_id FROM alerts WHERE state IN ('open', 'acknowledged')")
    resolved = 0
    async with grpc.aio.insecure_channel(stack.address("fusion")) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        for (alert_id,) in rows:
            request = fusion_pb2.ResolveAlertRequest(
                alert_id=alert_id,
                disposition=alerts_pb2.DISPOSITION_NO_ACTION,
                attendant_id="chaos",
            )
            with contextlib.suppress(grpc.aio.AioRpcError):
                await stub.ResolveAlert(request, timeout=10, wait_for_ready=True)
                resolved += 1
    wanted = {alert_id for (alert_id,) in rows}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        still_open = {
            a
            for (a,) in stack.query(
                "SELECT alert_id FROM alerts WHERE state IN ('open', 'acknowledged')"
            )
        }
        if not (still_open & wanted):
            break
        await asyncio.sleep(0.5)
    closed_in_reporting = len(wanted - still_open)
    return len(rows), min(resolved, closed_in_reporting)


async def _wait(check, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.5)
    return bool(check())


async def run_chaos(
    lanes: int,
    seconds: float,
    rate: float,
    work_dir: Path,
    interval_s: float | None = None,
    log=print,
) -> ChaosResult:
    """Run the schedule and count; the services are stopped before it returns."""
    stack = Stack.create(work_dir)
    ledgers = [LaneLedger(STORE, f"lane-{n:03d}") for n in range(1, lanes + 1)]
    clients = [LaneClient(stack.address("fusion"), ledger) for ledger in ledgers]
    memory = {"fusion": Memory(), "reporting": Memory()}
    actions: list[str] = []
    tasks: list[asyncio.Task] = []
    interval_s = interval_s or max(seconds / (2 * len(ACTIONS)), 4.0)
    try:
        await stack.start("reporting")
        await stack.start("fusion")
        for client in clients:
            client.start()
        tasks = [
            asyncio.create_task(_sample_memory(stack, memory)),
            asyncio.create_task(_produce(ledgers, clients, rate)),
        ]
        chaos = asyncio.create_task(_chaos(stack, interval_s, actions, log))
        await asyncio.sleep(seconds)
        chaos.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await chaos
        tasks[1].cancel()
        for service in ("reporting", "fusion"):
            process = stack.group.services[service].process
            if process.returncode is None:
                process.send_signal(signal.SIGCONT)  # in case chaos stopped mid-pause
            else:
                await stack.start(service)
        log("draining: every lane acknowledged, every acknowledged event in reporting")
        await _wait(lambda: all(x.acked_sequence == x.last_sequence for x in ledgers), 180)
        acked_ids = set().union(*(ledger.acked_ids() for ledger in ledgers))
        await _wait(lambda: acked_ids <= set(stack.stored_event_ids()), 180)
        stored_rows = stack.query(
            "SELECT store_id, lane_id, event_id, COUNT(*) FROM events GROUP BY 1, 2, 3"
        )
        stored = {row[2] for row in stored_rows}
        duplicated = sum(row[3] - 1 for row in stored_rows)
        no_sale_ids = {
            ledger.event_id(n)
            for ledger in ledgers
            for n in ledger.no_sales
            if n <= ledger.acked_sequence
        }
        await _wait(
            lambda: (
                no_sale_ids <= {e for (e,) in stack.query("SELECT event_id FROM alert_evidence")}
            ),
            60,
        )
        evidence = stack.query(
            "SELECT event_id, COUNT(DISTINCT alert_id) FROM alert_evidence GROUP BY 1"
        )
        alerts_per_event = {event_id: count for event_id, count in evidence}
        alert_count = stack.query("SELECT COUNT(*) FROM alerts")[0][0]
        open_alerts, resolved = await _resolve_open_alerts(stack)
        latencies = sorted(s for ledger in ledgers for s in ledger.ack_latencies_s)
        p50 = statistics.median(latencies) * 1000 if latencies else 0.0
        p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else 0.0
        return ChaosResult(
            lanes=lanes,
            seconds=seconds,
            actions=actions,
            sent=sum(ledger.last_sequence for ledger in ledgers),
            acked=sum(ledger.acked_sequence for ledger in ledgers),
            stored=len(acked_ids & stored),
            lost=len(acked_ids - stored),
            duplicated=duplicated,
            alerts_expected=len(no_sale_ids),
            alerts_stored=alert_count,
            alerts_missing=sum(1 for e in no_sale_ids if e not in alerts_per_event),
            alerts_duplicated=sum(1 for e in no_sale_ids if alerts_per_event.get(e, 0) > 1),
            alerts_open_at_end=open_alerts,
            alerts_resolved_at_end=resolved,
            ack_p50_ms=p50,
            ack_p99_ms=p99,
            memory={name: record.row() for name, record in memory.items()},
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            await client.stop()
        for service in ("reporting", "fusion"):
            proc = stack.group.services.get(service)
            if proc is not None and proc.process.returncode is None:
                proc.process.send_signal(signal.SIGCONT)
        await stack.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lanes", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second per lane")
    parser.add_argument("--interval", type=float, help="seconds between chaos actions")
    parser.add_argument("--work-dir", help="state and logs (default: a temporary folder)")
    args = parser.parse_args(argv)

    async def run(work_dir: Path) -> ChaosResult:
        return await run_chaos(
            args.lanes, args.seconds, args.rate, work_dir, args.interval, log=print
        )

    if args.work_dir:
        work_dir = Path(args.work_dir).resolve()
        work_dir.mkdir(parents=True, exist_ok=True)
        result = asyncio.run(run(work_dir))
    else:
        with tempfile.TemporaryDirectory(prefix="lanesight-chaos-") as tmp:
            result = asyncio.run(run(Path(tmp)))
    print(result.table())
    print("invariants hold" if result.ok else "INVARIANTS VIOLATED")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
