"""Forwards processed lane events and alert revisions to ReportingService.IngestRecords."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque

import grpc

from lanesight.v1 import alerts_pb2, events_pb2, reporting_pb2, reporting_pb2_grpc
from services.common.channels import Backoff, open_channel
from services.common.config import LanesightConfig

log = logging.getLogger(__name__)


class ReportingForwarder:
    """A bounded queue of records for reporting, sent over one stream and resent until acked.

    Records are numbered from the start time in microseconds, so a restarted replica
    numbers above anything it sent before. The queue warns at 80 % and then drops the
    oldest record (counted in ``dropped``) rather than growing without bound.
    """

    def __init__(self, config: LanesightConfig, address: str | None = None) -> None:
        self.config = config
        self.address = address or config.peers.reporting
        fusion = config.fusion
        self.sender_id = fusion.sender_id
        self.capacity = fusion.forward_queue_max
        self.batch_max = fusion.forward_batch_max
        self.queue: deque[reporting_pb2.ReportRecord] = deque()
        self.next_sequence = time.time_ns() // 1000
        self.acked = self.next_sequence - 1
        self.sent_upto = self.acked
        self.dropped = 0
        self.connected = False
        self._warned = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    # ---- queueing -------------------------------------------------------------------

    def add_event(self, event: events_pb2.LaneEvent) -> None:
        """Queue a processed lane event."""
        self._add(reporting_pb2.ReportRecord(event=event))

    def add_alert(self, alert: alerts_pb2.Alert) -> None:
        """Queue an alert revision."""
        self._add(reporting_pb2.ReportRecord(alert=alert))

    def _add(self, record: reporting_pb2.ReportRecord) -> None:
        record.record_sequence = self.next_sequence
        self.next_sequence += 1
        if len(self.queue) >= self.capacity:
            dropped = self.queue.popleft()
            self.dropped += 1
            self.sent_upto = max(self.sent_upto, dropped.record_sequence)
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error(
                    "reporting queue full (%d records): dropped %d oldest records so far",
                    self.capacity,
                    self.dropped,
                )
        elif len(self.queue) >= self.capacity * 0.8 and not self._warned:
            self._warned = True
            log.warning(
                "reporting queue at %d of %d records: reporting at %s is not keeping up or"
                " is down; the oldest records will be dropped when the queue is full",
                len(self.queue),
                self.capacity,
                self.address,
            )
        self.queue.append(record)
        self._wake.set()

    def _ack(self, sequence: int) -> None:
        self.acked = max(self.acked, sequence)
        while self.queue and self.queue[0].record_sequence <= self.acked:
            self.queue.popleft()
        if self._warned and len(self.queue) < self.capacity * 0.5:
            self._warned = False
            log.info("reporting queue drained to %d records", len(self.queue))

    @property
    def pending(self) -> int:
        """Records not acknowledged yet."""
        return len(self.queue)

    # ---- the link -------------------------------------------------------------------

    async def start(self) -> None:
        """Start the link in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="fusion-reporting-forwarder")

    async def stop(self) -> None:
        """Stop the link; idempotent. Unacked records stay in memory until the process ends."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        backoff = Backoff(initial_s=0.2, max_s=5.0)
        while True:
            channel = open_channel(self.address, self.config)
            reason = "reporting ended the stream"
            try:
                stub = reporting_pb2_grpc.ReportingServiceStub(channel)
                call = stub.IngestRecords(self._requests())
                async for response in call:
                    if not self.connected:
                        self.connected = True
                        if backoff.failures:
                            log.info("reporting link to %s is back", self.address)
                        backoff.reset()
                    self._ack(response.acked_record_sequence)
            except grpc.aio.AioRpcError as exc:
                reason = exc.code().name
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
        while True:
            if not self.queue or self.queue[-1].record_sequence <= self.sent_upto:
                self._wake.clear()
                await self._wake.wait()
                continue
            start = max(self.sent_upto + 1 - self.queue[0].record_sequence, 0)
            batch = list(itertools.islice(self.queue, start, start + self.batch_max))
            self.sent_upto = batch[-1].record_sequence
            yield reporting_pb2.IngestRecordsRequest(sender_id=self.sender_id, records=batch)
