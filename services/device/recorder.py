"""Stamps lane events (store, lane, sequence, event id, lane time, transaction) into the outbox."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from lanesight.common.schema import POS_PAYLOADS
from lanesight.device.lane_events import to_lane_event
from lanesight.device.outbox import Outbox, OutboxRow
from lanesight.device.readings import Reading
from lanesight.v1 import events_pb2

_CLOSES = "transaction_ended"
# An event that says when it happened is stamped no earlier than this before it is
# recorded (a frame answered later than this is stamped as this late).
MAX_BACKDATE_NS = 10_000_000_000


class EventRecorder:
    """The one place lane events get their sequence; nothing is sent before it is on disk."""

    def __init__(
        self,
        outbox: Outbox,
        store_id: str,
        lane_id: str,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.outbox = outbox
        self.store_id = store_id
        self.lane_id = lane_id
        self._clock_ns = clock_ns
        self._lock = asyncio.Lock()
        self._last_time_ns = 0
        self.transaction_id = ""
        self.recorded = 0
        #: Called with each stamped event once it is committed (status, tests, benchmarks).
        self.listeners: list[Callable[[events_pb2.LaneEvent], None]] = []

    def _stamp(self, event: events_pb2.LaneEvent, happened_ns: int | None = None) -> None:
        event.store_id = self.store_id
        event.lane_id = self.lane_id
        if not event.event_id:
            event.event_id = str(uuid.uuid4())
        # One clock per lane, never going backwards: an event is stamped when it is
        # recorded, unless it says when it happened on this clock (what vision saw in a
        # frame happened when the frame was taken, however long the answer took: stamped
        # on arrival, the camera would always seem late to the scanner and the scales).
        now = max(self._clock_ns(), self._last_time_ns)
        self._last_time_ns = now
        at = now
        if happened_ns is not None and 0 < happened_ns < now:
            at = max(happened_ns, now - MAX_BACKDATE_NS)
        event.lane_time.FromNanoseconds(at)
        kind = event.WhichOneof("payload")
        if kind in POS_PAYLOADS:
            # The POS says which transaction is open; device events inherit it.
            if kind == _CLOSES and event.transaction_id == self.transaction_id:
                self.transaction_id = ""
            elif event.transaction_id and kind != _CLOSES:
                self.transaction_id = event.transaction_id
        elif not event.transaction_id:
            event.transaction_id = self.transaction_id
        event.sequence = self.outbox.next_sequence()

    async def record_many(
        self,
        events: list[events_pb2.LaneEvent],
        remember_ids: bool = False,
        happened_ns: int | None = None,
    ) -> list[events_pb2.LaneEvent]:
        """Stamp events with consecutive sequences and return once they are committed.

        ``remember_ids`` keeps the event ids so resubmitting them is recognised;
        ``happened_ns``, when the events happened on the lane clock (a camera frame's
        capture time), is their lane time, up to MAX_BACKDATE_NS before now.
        """
        async with self._lock:
            await self.outbox.wait_for_room()
            commits = []
            for event in events:
                self._stamp(event, happened_ns)
                row = OutboxRow(
                    event.sequence,
                    event.event_id,
                    event.lane_time.ToNanoseconds(),
                    event.SerializeToString(),
                )
                commits.append(
                    self.outbox.append_nowait(row, event.event_id if remember_ids else "")
                )
        await asyncio.gather(*commits)
        self.recorded += len(events)
        for event in events:
            for listener in self.listeners:
                listener(event)
        return events

    async def record(
        self, event: events_pb2.LaneEvent, happened_ns: int | None = None
    ) -> events_pb2.LaneEvent:
        """Stamp one event (``happened_ns``: see record_many) and return it once it is
        committed."""
        return (await self.record_many([event], happened_ns=happened_ns))[0]

    async def record_reading(self, reading: Reading) -> events_pb2.LaneEvent:
        """Record what a driver or link observed."""
        return await self.record(to_lane_event(reading))
