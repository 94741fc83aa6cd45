"""The outbox: written before sent, deleted after ack, bounded with a warning, survives restarts."""

from __future__ import annotations

import logging

import pytest
from lanesight.device.links.fusion import encode_ingest_request
from lanesight.device.outbox import Outbox, OutboxLimits
from lanesight.device.recorder import MAX_BACKDATE_NS, EventRecorder
from lanesight.v1 import events_pb2, fusion_pb2


def _event(operator: str = "op-1") -> events_pb2.LaneEvent:
    return events_pb2.LaneEvent(operator_sign_on=events_pb2.OperatorSignOn(operator_id=operator))


@pytest.fixture
async def outbox(tmp_path):
    box = Outbox(tmp_path / "outbox.db", OutboxLimits(synchronous="normal"))
    await box.open()
    yield box
    await box.close()


async def test_events_are_stamped_and_committed_before_record_returns(outbox, tmp_path):
    recorder = EventRecorder(outbox, "store-1", "lane-2")
    event = await recorder.record(_event())
    assert (event.store_id, event.lane_id, event.sequence) == ("store-1", "lane-2", 1)
    assert len(event.event_id) == 36 and event.lane_time.seconds > 0
    # Another connection sees the row: it is on disk, not only in memory.
    import sqlite3

    with sqlite3.connect(tmp_path / "outbox.db") as db:
        (payload,) = db.execute("SELECT payload FROM events WHERE sequence = 1").fetchone()
    assert events_pb2.LaneEvent.FromString(payload) == event


async def test_an_event_that_says_when_it_happened_is_stamped_then_within_bounds(outbox):
    now = 7_200_000_000_000
    recorder = EventRecorder(outbox, "s", "l", clock_ns=lambda: now)
    (seen,) = await recorder.record_many([_event()], happened_ns=now - 400_000_000)
    assert seen.lane_time.ToNanoseconds() == now - 400_000_000  # when the frame was taken
    (old,) = await recorder.record_many([_event()], happened_ns=now - 3600 * 10**9)
    assert old.lane_time.ToNanoseconds() == now - MAX_BACKDATE_NS  # no further back
    (ahead,) = await recorder.record_many([_event()], happened_ns=now + 10**9)
    assert ahead.lane_time.ToNanoseconds() == now  # never ahead of the lane clock
    (plain,) = await recorder.record_many([_event()])
    assert plain.lane_time.ToNanoseconds() == now
    assert [e.sequence for e in (seen, old, ahead, plain)] == [1, 2, 3, 4]


async def test_sequences_are_consecutive_and_lane_time_never_goes_back(outbox):
    clock = iter([5_000, 4_000, 6_000])
    recorder = EventRecorder(outbox, "s", "l", clock_ns=lambda: next(clock))
    events = await recorder.record_many([_event(), _event(), _event()])
    assert [e.sequence for e in events] == [1, 2, 3]
    assert [e.lane_time.ToNanoseconds() for e in events] == [5_000, 5_000, 6_000]


async def test_device_events_get_the_open_transaction(outbox):
    recorder = EventRecorder(outbox, "s", "l")
    started = events_pb2.LaneEvent(transaction_id="tx-9")
    started.transaction_started.SetInParent()
    await recorder.record(started)
    scan = await recorder.record(events_pb2.LaneEvent(barcode_read=events_pb2.BarcodeRead()))
    ended = events_pb2.LaneEvent(transaction_id="tx-9")
    ended.transaction_ended.SetInParent()
    await recorder.record(ended)
    after = await recorder.record(events_pb2.LaneEvent(barcode_read=events_pb2.BarcodeRead()))
    assert scan.transaction_id == "tx-9" and after.transaction_id == ""


async def test_rows_are_deleted_only_after_the_ack(outbox):
    recorder = EventRecorder(outbox, "s", "l")
    await recorder.record_many([_event() for _ in range(5)])
    assert outbox.pending == 5
    rows = await outbox.read_after(0, 10)
    assert [r.sequence for r in rows] == [1, 2, 3, 4, 5]
    assert await outbox.ack(3) == 3
    assert outbox.pending == 2 and outbox.acked_sequence == 3
    assert [r.sequence for r in await outbox.read_after(0, 10)] == [4, 5]
    assert await outbox.ack(2) == 0  # an old ack changes nothing


async def test_sequence_acks_and_pending_rows_survive_a_restart(tmp_path):
    path = tmp_path / "outbox.db"
    first = Outbox(path)
    await first.open()
    recorder = EventRecorder(first, "s", "l")
    await recorder.record_many([_event() for _ in range(4)])
    await first.ack(4)
    await recorder.record_many([_event(), _event()])
    await first.close()

    second = Outbox(path)
    await second.open()
    try:
        assert (second.last_sequence, second.acked_sequence, second.pending) == (6, 4, 2)
        event = await EventRecorder(second, "s", "l").record(_event())
        assert event.sequence == 7
        assert [r.sequence for r in await second.read_after(4, 10)] == [5, 6, 7]
    finally:
        await second.close()


async def test_sequence_survives_even_when_everything_was_acked(tmp_path):
    path = tmp_path / "outbox.db"
    first = Outbox(path)
    await first.open()
    await EventRecorder(first, "s", "l").record_many([_event() for _ in range(3)])
    await first.ack(3)
    await first.close()
    second = Outbox(path)
    await second.open()
    try:
        assert second.pending == 0
        assert (await EventRecorder(second, "s", "l").record(_event())).sequence == 4
    finally:
        await second.close()


async def test_size_bound_warns_first_then_drops_oldest(tmp_path, caplog):
    drops = []
    box = Outbox(
        tmp_path / "o.db",
        OutboxLimits(max_events=10, warn_fraction=0.8, synchronous="normal"),
        on_drop=drops.append,
    )
    await box.open()
    recorder = EventRecorder(box, "s", "l")
    try:
        with caplog.at_level(logging.WARNING, logger="lanesight.device.outbox"):
            for count in range(1, 11):
                await recorder.record(_event())
                if count == 7:
                    assert not caplog.records
            warning = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert len(warning) == 1 and "OLDEST EVENTS WILL BE DROPPED" in warning[0].message
            assert not [r for r in caplog.records if r.levelno == logging.ERROR]
            assert box.dropped == 0
            await recorder.record_many([_event(), _event(), _event()])
        assert box.pending == 10 and box.dropped == 3
        assert [r.sequence for r in await box.read_after(0, 100)] == list(range(4, 14))
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "DROPPED 3 events (sequences 1..3" in errors[0].message
        assert drops[0].first_sequence == 1 and drops[0].count == 3
    finally:
        await box.close()


async def test_age_bound_drops_old_events(tmp_path, caplog):
    now = [10**18]
    box = Outbox(
        tmp_path / "o.db",
        OutboxLimits(max_age_s=100.0, warn_fraction=0.5, synchronous="normal"),
        clock_ns=lambda: now[0],
    )
    await box.open()
    recorder = EventRecorder(box, "s", "l", clock_ns=lambda: now[0])
    try:
        await recorder.record_many([_event(), _event()])
        now[0] += 60 * 10**9
        await recorder.record(_event())
        assert "filling up" in caplog.text  # 60 s of 100 s is past the warn fraction
        assert box.dropped == 0
        now[0] += 50 * 10**9  # the first two are 110 s old now
        await box._enforce_age()
        assert box.dropped == 2
        assert [r.sequence for r in await box.read_after(0, 10)] == [3]
        assert "older than the outbox age bound" in caplog.text
    finally:
        await box.close()


async def test_submitted_ids_and_executed_commands_are_remembered(tmp_path):
    path = tmp_path / "o.db"
    box = Outbox(path)
    await box.open()
    recorder = EventRecorder(box, "s", "l")
    event = events_pb2.LaneEvent(event_id="pos-1")
    event.operator_sign_on.operator_id = "7"
    await recorder.record_many([event], remember_ids=True)
    assert await box.mark_command("cmd-1") is True
    assert await box.mark_command("cmd-1") is False
    await box.close()
    again = Outbox(path)
    await again.open()
    try:
        assert await again.submitted_sequences(["pos-1", "pos-2"]) == {"pos-1": 1}
        assert await again.command_executed("cmd-1")
        assert not await again.command_executed("cmd-2")
    finally:
        await again.close()


async def test_close_finishes_queued_writes_and_is_idempotent(tmp_path):
    box = Outbox(tmp_path / "o.db")
    await box.open()
    recorder = EventRecorder(box, "s", "l")
    await recorder.record(_event())
    await box.close()
    await box.close()
    with pytest.raises(RuntimeError):
        await recorder.record(_event())


def test_ingest_request_encoding_matches_protobuf():
    events = [_event(str(i)) for i in range(3)]
    for index, event in enumerate(events):
        event.sequence = index + 1
    events[1].item_added.description = "x" * 300  # a length that needs two varint bytes
    raw = encode_ingest_request([e.SerializeToString() for e in events])
    assert fusion_pb2.IngestRequest.FromString(raw) == fusion_pb2.IngestRequest(events=events)
    assert raw == fusion_pb2.IngestRequest(events=events).SerializeToString()


async def test_outbox_belongs_to_one_lane(tmp_path):
    from lanesight.device.outbox import OutboxOwnedElsewhere

    path = tmp_path / "o.db"
    box = Outbox(path)
    await box.open(owner="s/lane-1")
    await EventRecorder(box, "s", "lane-1").record_many([_event(), _event()])
    await box.close()
    other = Outbox(path)
    with pytest.raises(OutboxOwnedElsewhere, match="2 unacknowledged events of lane s/lane-1"):
        await other.open(owner="s/lane-2")
    same = Outbox(path)
    await same.open(owner="s/lane-1")
    await same.ack(2)
    await same.close()
    moved = Outbox(path)
    await moved.open(owner="s/lane-2")  # nothing pending: the new lane starts at 1
    try:
        assert (await EventRecorder(moved, "s", "lane-2").record(_event())).sequence == 1
    finally:
        await moved.close()


async def test_a_full_outbox_drops_device_readings_before_accepted_pos_events(tmp_path):
    box = Outbox(tmp_path / "o.db", OutboxLimits(max_events=10, synchronous="normal"))
    await box.open()
    recorder = EventRecorder(box, "s", "l")
    try:
        pos = [_event(f"op-{i}") for i in range(4)]
        for i, event in enumerate(pos):
            event.event_id = f"pos-{i}"
        await recorder.record_many(pos[:2], remember_ids=True)  # sequences 1-2
        await recorder.record_many([_event() for _ in range(6)])  # readings 3-8
        await recorder.record_many(pos[2:], remember_ids=True)  # sequences 9-10
        await recorder.record_many([_event() for _ in range(3)])  # over the bound by 3
        kept = [r.sequence for r in await box.read_after(0, 100)]
        assert box.dropped == 3 and box.pending == 10
        assert kept == [1, 2, 6, 7, 8, 9, 10, 11, 12, 13]  # readings 3-5 went, POS stayed
    finally:
        await box.close()
