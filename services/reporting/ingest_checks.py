"""IngestRecords requests checked off the event loop: parsed, validated and turned into rows.

Checking a request (the shared lane-event validator, then the rows the store writes) is
most of what IngestRecords costs the service's event loop, about 20 µs an event. With
``ingest_workers`` above 0 a pool of worker processes does it: the servicer hands over
a request's serialized bytes as it read them and gets back the records in their stored
form (``model.FedRecord``: tuples, which pickle cheaply), the stores the records name and
the events the validator refused, so the event loop keeps only the gRPC stream, the
caller's store scope and the database. With 0 the same function runs in the event loop.

The pool starts with the first ingest stream, in the background: requests are checked in
process until a worker has started (a second or so), so a service that never ingests
starts no process, and none waits for one. A worker that dies (killed for memory, say)
breaks the pool: the request is checked in process and a new pool starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from lanesight.common.validation import validate_lane_event
from lanesight.reporting import convert, model
from lanesight.v1 import reporting_pb2

# How often a worker looks whether its service is still there.
_PARENT_POLL_S = 1.0
# How long the service's stop waits for its workers before killing them.
_CLOSE_WAIT_S = 10.0

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Refused:
    """A request that ends the stream: the status (a grpc.StatusCode name) and details."""

    code: str
    details: str


@dataclasses.dataclass(slots=True)
class CheckedRequest:
    """A request's records as ingest stores them, and what the servicer checks and logs."""

    sender_id: str
    records: list[model.FedRecord]
    # Each store the records name, with the first record naming it, in record order (the
    # caller's scope is checked in the servicer's process, where the caller is known).
    stores: list[tuple[str, int]]
    # Records the validator refused (stored as data-quality records): sequence, field,
    # message.
    refused: list[tuple[int, str, str]]


def check_request(data: bytes) -> CheckedRequest | Refused:
    """A serialized IngestRecordsRequest checked: its records validated (an event the
    validator refuses becomes a data-quality record) in their stored form, or why the
    stream ends (a missing sender, sequences out of order). A request that does not parse
    raises protobuf's DecodeError, as grpc's own deserializer would."""
    request = reporting_pb2.IngestRecordsRequest.FromString(data)
    sender_id = request.sender_id
    if not sender_id:
        return Refused("INVALID_ARGUMENT", "sender_id: required")
    fed = request.records
    sequences = [r.record_sequence for r in fed]
    if any(b <= a for a, b in zip(sequences, sequences[1:], strict=False)):
        return Refused(
            "INVALID_ARGUMENT", "records: record_sequence must increase within a request"
        )
    now = time.time_ns() // 1_000_000  # one clock for the request's validation
    records: list[model.FedRecord] = []
    stores: dict[str, int] = {}
    refused: list[tuple[int, str, str]] = []
    for record in fed:
        sequence = record.record_sequence
        which = record.WhichOneof("record")
        if which == "event":
            event = record.event
            problems = validate_lane_event(event, now)
            if problems:
                # Stored as a data-quality incident and acked: never resent forever.
                row = model.event_row(convert.rejected_event(event, problems[0], now))
                refused.append((sequence, problems[0].field, problems[0].message))
            else:
                # The payload fields are the projector's to extract, behind the ack.
                row = convert.event_row(event)
            records.append((sequence, row, None))
            store_id = row[1]
        elif which == "alert":
            alert = convert.alert_from_proto(record.alert)
            records.append((sequence, None, alert))
            store_id = alert.store_id
        else:
            records.append((sequence, None, None))
            continue
        if store_id not in stores:
            stores[store_id] = sequence
    return CheckedRequest(sender_id, records, list(stores.items()), refused)


def _ignore_sigint(parent_pid: int = 0) -> None:
    """Set up a worker. Ctrl-C reaches the whole process group in a terminal: the service
    stops its workers itself. A worker whose service is gone (killed with SIGKILL, so it
    could not stop them) exits within a second: an orphan would hold the service's
    output open for whoever waits on it, and its memory."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid:
        if os.getppid() != parent_pid:
            os._exit(0)
        threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _exit_with_parent(parent_pid: int) -> None:
    while True:
        time.sleep(_PARENT_POLL_S)
        if os.getppid() != parent_pid:
            os._exit(0)


def _worker_started() -> int:
    """A worker's first task: its modules are imported by now."""
    return os.getpid()


def available_cpus() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota (a pod's
    CPU limit), at least 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        count = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(count, 1)


def resolve_workers(setting: int | str) -> int:
    """The number of check workers for the ``ingest_workers`` setting: "auto" is one
    per CPU beyond the event loop's own, at most 2; none with a single CPU."""
    if setting != "auto":
        return int(setting)
    return min(available_cpus() - 1, 2)


class IngestChecker:
    """Checks IngestRecords requests, in worker processes when there are any."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._warming: asyncio.Task | None = None
        self._ready = asyncio.Event()  # the workers run
        self._warmed = asyncio.Event()  # they started or failed to
        self._closed = False
        self._gave_up = False  # the workers could not start: checked in process from then on

    def start(self) -> None:
        """Start the worker processes in the background (idempotent; none when 0)."""
        if self.workers <= 0 or self._closed or self._gave_up or self._pool is not None:
            return
        # spawn, not fork: the service's process runs gRPC's and SQLite's threads.
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_ignore_sigint,
            initargs=(os.getpid(),),
        )
        self._ready.clear()
        self._warmed.clear()
        self._warming = asyncio.create_task(self._warm(self._pool))

    async def _warm(self, pool: ProcessPoolExecutor) -> None:
        try:
            # One task per worker: the pool starts a process for each while none is idle.
            started = [
                asyncio.wrap_future(pool.submit(_worker_started)) for _ in range(self.workers)
            ]
            pids = await asyncio.gather(*started)
        except asyncio.CancelledError:
            raise
        except Exception:
            # E.g. a worker started from a process that is itself a spawned worker of a
            # script without the ``if __name__ == "__main__":`` guard.
            log.exception("ingest check workers failed to start; checking in process")
            self._gave_up = True
            if self._pool is pool:
                self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
        else:
            log.info("ingest check workers started (pids %s)", ", ".join(map(str, sorted(pids))))
            self._ready.set()
        finally:
            self._warmed.set()

    async def ready(self) -> None:
        """Wait until the workers have started, or failed to (at once without workers)."""
        self.start()
        if self._warming is not None:
            await self._warmed.wait()

    def pids(self) -> list[int]:
        """The worker processes' ids (none before they start)."""
        pool = self._pool
        processes = getattr(pool, "_processes", None) or {}
        return sorted(processes)

    @property
    def in_workers(self) -> bool:
        """Whether requests go to the workers now."""
        return self._ready.is_set() and self._pool is not None

    async def check(self, data: bytes) -> CheckedRequest | Refused:
        """``check_request`` of a request, in a worker once they run, else here."""
        pool = self._pool
        if pool is None or not self._ready.is_set():
            return check_request(data)
        try:
            return await asyncio.wrap_future(pool.submit(check_request, data))
        except BrokenProcessPool:
            if self._pool is pool:
                log.error("an ingest check worker died; checking in process, starting new ones")
                self._discard()
                pool.shutdown(wait=False, cancel_futures=True)
                self.start()
            return check_request(data)

    def _discard(self) -> ProcessPoolExecutor | None:
        """Stop using the pool; the caller shuts it down."""
        pool, self._pool = self._pool, None
        self._ready.clear()
        if self._warming is not None:
            self._warming.cancel()
            self._warming = None
        self._warmed.set()
        return pool

    async def close(self) -> None:
        """Stop the workers (each ends its request first) and wait for them, a bounded
        time: one that has not stopped by then (still starting on a loaded machine, or
        stuck) is killed, so the service's stop never hangs on it; idempotent."""
        self._closed = True
        pool = self._discard()
        if pool is None:
            return
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(_reap, processes, _CLOSE_WAIT_S)


def _reap(processes: list, timeout_s: float) -> None:
    """Wait for the worker processes to end, up to timeout_s in all; kill the rest.

    An end is read from each process's sentinel, not from ``is_alive()``: the pool's own
    thread may reap a worker first, and ``is_alive()`` of a process reaped by another
    thread stays True."""
    deadline = time.monotonic() + timeout_s
    waiting = {process.sentinel: process for process in processes}
    while waiting:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for sentinel in multiprocessing.connection.wait(list(waiting), left):
            waiting.pop(sentinel)
    for process in waiting.values():
        log.warning("ingest check worker %s did not stop; killing it", process.pid)
        process.kill()
        process.join(1.0)
