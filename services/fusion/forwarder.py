"""Forwards processed lane events and alert revisions to ReportingService.IngestRecords."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import grpc
from lanesight.common.channels import Backoff, open_channel
from lanesight.common.config import LanesightConfig
from lanesight.fusion.outbox import ForwardOutbox
from lanesight.v1 import alerts_pb2, events_pb2, reporting_pb2

log = logging.getLogger(__name__)

_INGEST_RECORDS = "/lanesight.v1.ReportingService/IngestRecords"

# Records are queued already in protobuf wire format (see ReportingForwarder): each is the
# `records` field (2) of an IngestRecordsRequest framing a ReportRecord whose fields are
# record_sequence (1, varint) and then event (2) or alert (3) as embedded messages.
_RECORDS_TAG = b"\x12"
_SEQUENCE_TAG = b"\x08"
_EVENT_TAG = b"\x12"
_ALERT_TAG = b"\x1a"
_SENDER_TAG = b"\x0a"
_OPEN_STATES = (alerts_pb2.ALERT_STATE_OPEN, alerts_pb2.ALERT_STATE_ACKNOWLEDGED)
# varint bytes of 0..127, and the first byte of a longer varint by its low 7 bits.
_ONE_BYTE = [bytes((n,)) for n in range(128)]
_CONTINUED = [bytes((n | 0x80,)) for n in range(128)]


def _varint(value: int) -> bytes:
    """The protobuf varint encoding of a non-negative int."""
    if value < 0x80:
        return _ONE_BYTE[value]
    if value < 0x4000:  # most lengths: two bytes
        return _CONTINUED[value & 0x7F] + _ONE_BYTE[value >> 7]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class ReportingForwarder:
    """A bounded, durable queue of records for reporting, sent over one stream and resent
    until acked.

    With an outbox path every queued record is also written to a ``ForwardOutbox``
    (SQLite) and ``durable()`` waits for its commit: fusion acknowledges a lane only after
    that, and deletes records only when reporting acknowledges them, so nothing fusion
    acknowledged is lost when it is killed. Records are numbered on from the outbox (from
    the start time in microseconds for a new one), so a restarted replica numbers above
    anything it sent before. Nothing is ever dropped: at ``capacity`` records ``has_room``
    turns false and ingest waits (``wait_for_room``), which backs pressure up to the lanes'
    own outboxes.

    Each record is encoded once, when it is queued, straight into the bytes it takes in
    an IngestRecordsRequest (the event's or alert's own serialisation, framed with its
    record_sequence): no protobuf copies per event, nothing for the garbage collector to
    walk, and a request is the sender id plus a join of queued bytes. The queue holds
    consecutive sequences, so the record at ``queue[i]`` is ``first_sequence + i``.
    """

    def __init__(
        self,
        config: LanesightConfig,
        address: str | None = None,
        outbox_path: str | Path | None = None,
    ) -> None:
        self.config = config
        self.address = address or config.peers.reporting
        fusion = config.fusion
        self.sender_id = fusion.sender(fusion.replica())
        self.capacity = fusion.forward_queue_max
        self.batch_max = fusion.forward_batch_max
        self.queue: deque[bytes] = deque()
        self.next_sequence = time.time_ns() // 1000
        self.acked = self.next_sequence - 1
        self.sent_upto = self.acked
        self.connected = False
        self._warned = False
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self.outbox = ForwardOutbox(outbox_path) if outbox_path is not None else None
        self._task: asyncio.Task | None = None

    # ---- queueing -------------------------------------------------------------------

    @property
    def first_sequence(self) -> int:
        """The record sequence of ``queue[0]`` (of the next record when the queue is empty)."""
        return self.next_sequence - len(self.queue)

    def add_event(self, event: events_pb2.LaneEvent) -> None:
        """Queue a processed lane event."""
        self.add_events((event,))

    def add_events(self, events: Iterable[events_pb2.LaneEvent]) -> None:
        """Queue processed lane events, in order (one call per ingested batch)."""
        self._add_encoded(_EVENT_TAG, [event.SerializeToString() for event in events])

    def add_alert(self, alert: alerts_pb2.Alert) -> None:
        """Queue an alert revision (and keep it in the outbox while the alert is open)."""
        payload = alert.SerializeToString()
        self._add_encoded(_ALERT_TAG, [payload])
        if self.outbox is not None:
            still_open = alert.state in _OPEN_STATES
            self.outbox.remember_alert(alert.alert_id, payload if still_open else None)

    def _add_encoded(self, tag: bytes, payloads: list[bytes]) -> None:
        """Frame serialised events or alerts (tag: their ReportRecord field) as numbered
        records and queue them."""
        if not payloads:
            return
        sequence = self.next_sequence
        high = -1
        sequence_bytes = high_bytes = b""
        framed = []
        join = b"".join
        for payload in payloads:
            # varint(n) = its low 7 bits with the continuation bit, then varint(n >> 7),
            # which changes once every 128 records.
            if sequence < 0x80:
                sequence_bytes = _ONE_BYTE[sequence]
            else:
                if sequence >> 7 != high:
                    high = sequence >> 7
                    high_bytes = _varint(high)
                sequence_bytes = _CONTINUED[sequence & 0x7F] + high_bytes
            size = len(payload)
            size_bytes = _varint(size)
            record_size = 2 + len(sequence_bytes) + len(size_bytes) + size
            framed.append(
                join(
                    (
                        _RECORDS_TAG,
                        _varint(record_size),
                        _SEQUENCE_TAG,
                        sequence_bytes,
                        tag,
                        size_bytes,
                        payload,
                    )
                )
            )
            sequence += 1
        if self.outbox is not None:
            self.outbox.append(self.next_sequence, framed)
        self.queue.extend(framed)
        self.next_sequence = sequence
        self._check_room()
        self._wake.set()

    # ---- durability and backpressure ------------------------------------------------

    @property
    def has_room(self) -> bool:
        """False once the queue holds capacity records (ingest then waits)."""
        return len(self.queue) < self.capacity

    async def wait_for_room(self) -> None:
        """Wait until the queue is below capacity (reporting acknowledged enough)."""
        while not self.has_room:
            self._room.clear()
            await self._room.wait()

    async def durable(self) -> None:
        """Wait until every record queued so far is committed to the outbox (if any)."""
        if self.outbox is not None:
            await self.outbox.flushed()

    def _check_room(self) -> None:
        size = len(self.queue)
        if size >= self.capacity * 0.8 and not self._warned:
            self._warned = True
            log.warning(
                "reporting queue at %d of %d records: reporting at %s is not keeping up or"
                " is down; lanes are acknowledged more slowly and then not at all when it"
                " is full (nothing is dropped: lanes keep their events)",
                size,
                self.capacity,
                self.address,
            )

    def records(self) -> list[reporting_pb2.ReportRecord]:
        """The queued records as messages (for inspection and tests; not on a hot path)."""
        return list(reporting_pb2.IngestRecordsRequest.FromString(b"".join(self.queue)).records)

    def _ack(self, sequence: int) -> None:
        self.acked = max(self.acked, sequence)
        removed = min(len(self.queue), self.acked - self.first_sequence + 1)
        for _ in range(removed):
            self.queue.popleft()
        if removed > 0:
            if self.outbox is not None:
                self.outbox.delete_upto(self.acked)
            if self.has_room:
                self._room.set()
        if self._warned and len(self.queue) < self.capacity * 0.5:
            self._warned = False
            log.info("reporting queue drained to %d records", len(self.queue))

    @property
    def pending(self) -> int:
        """Records not acknowledged yet."""
        return len(self.queue)

    # ---- the link -------------------------------------------------------------------

    async def start(self) -> None:
        """Load what the outbox holds and start the link in the background."""
        if self.outbox is not None and self._task is None:
            records, next_sequence = await self.outbox.open()
            if records:
                log.info("resending %d records fusion stored before it stopped", len(records))
            self.queue.extendleft(reversed(records))
            if next_sequence:
                # Continue the numbering: the loaded records are consecutive up to it.
                self.next_sequence = next_sequence
                self.acked = self.sent_upto = self.first_sequence - 1
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fusion-reporting-forwarder")

    async def stop(self) -> None:
        """Stop the link and commit the outbox; idempotent. Unacked records stay in the
        outbox for the next start (in memory only, without one)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.outbox is not None:
            await self.outbox.close()

    async def _run(self) -> None:
        backoff = Backoff(initial_s=0.2, max_s=5.0)
        while True:
            channel = open_channel(self.address, self.config)
            reason = "reporting ended the stream"
            try:
                # Requests go out as the bytes _requests builds (no serializer).
                ingest_records = channel.stream_stream(
                    _INGEST_RECORDS,
                    request_serializer=None,
                    response_deserializer=reporting_pb2.IngestRecordsResponse.FromString,
                )
                call = ingest_records(self._requests())
                async for response in call:
                    if not self.connected:
                        self.connected = True
                        if backoff.failures:
                            log.info("reporting link to %s is back", self.address)
                        backoff.reset()
                    self._ack(response.acked_record_sequence)
            except grpc.aio.AioRpcError as exc:
                reason = f"{exc.code().name}: {exc.details()}"
            except Exception as exc:  # any stream error: back off and reconnect, never die
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                await channel.close()
            self.connected = False
            delay = backoff.next_delay()
            if backoff.first_failure:
                log.warning(
                    "reporting link to %s failed (%s); retrying with backoff, %d records queued",
                    self.address,
                    reason,
                    len(self.queue),
                )
            await asyncio.sleep(delay)

    async def _requests(self):
        # After every (re)connect, resend everything reporting has not acknowledged.
        self.sent_upto = self.acked
        sender = self.sender_id.encode()
        prefix = _SENDER_TAG + _varint(len(sender)) + sender
        while True:
            last = self.next_sequence - 1  # the sequence of queue[-1]
            if not self.queue or last <= self.sent_upto:
                self._wake.clear()
                await self._wake.wait()
                continue
            first = self.first_sequence
            start = max(self.sent_upto + 1 - first, 0)
            batch = list(itertools.islice(self.queue, start, start + self.batch_max))
            self.sent_upto = first + start + len(batch) - 1
            # An IngestRecordsRequest{sender_id, records=batch} in wire format.
            yield prefix + b"".join(batch)
