"""IngestRecords' checks (ingest_checks): the records the store made before, the same
refusals, in worker processes or not; the workers stop with the service, and a dead one
is replaced without losing a request."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import grpc
import pytest
from google.protobuf.message import DecodeError
from lanesight.common.server import start_server
from lanesight.reporting import convert, ingest_checks, model
from lanesight.reporting.app import create_app
from lanesight.reporting.config import ReportingConfig
from lanesight.reporting.ingest_checks import CheckedRequest, Refused, check_request
from lanesight.v1 import reporting_pb2, reporting_pb2_grpc
from pydantic import ValidationError

from tests.conftest import assert_eventually
from tests.reporting.reporting_builders import (
    G1,
    T0_MS,
    Lane,
    as_records,
    count,
    crafted_records,
    item,
    query,
    service_config,
)

R = reporting_pb2
NOW_MS = 1_760_000_000_000


def bad_events(now_ms: int) -> list:
    """Events the shared validator refuses, one per kind of check, and a good one."""
    lane = Lane("s2", "7")
    far_future = lane.event(now_ms, "t", item_added=item("1", gtin=G1))
    far_future.lane_time.seconds = 10**12
    huge_sequence = lane.event(now_ms, "t", item_added=item("2", gtin=G1))
    huge_sequence.sequence = 2**64 - 1
    bad_gtin = lane.event(now_ms, "t", item_added=item("3", gtin="00012345678906"))
    good = lane.event(now_ms + 1, "t", item_added=item("4", gtin=G1))
    return [far_future, huge_sequence, bad_gtin, good]


def test_checks_make_the_rows_the_store_made_of_domain_records(monkeypatch):
    monkeypatch.setattr(ingest_checks.time, "time_ns", lambda: NOW_MS * 1_000_000)
    records = [*crafted_records(), *as_records(bad_events(NOW_MS), 5000)]
    request = R.IngestRecordsRequest(sender_id="fusion-1", records=records)
    checked = check_request(request.SerializeToString())
    assert isinstance(checked, CheckedRequest)
    domain = [convert.record_from_proto(r, NOW_MS, with_data=False) for r in records]
    assert checked.sender_id == "fusion-1"
    assert checked.records == [model.fed_record(r) for r in domain]
    stores: dict[str, int] = {}
    for record in domain:
        item_ = record.event or record.alert
        assert item_ is not None
        stores.setdefault(item_.store_id, record.record_sequence)
    assert checked.stores == list(stores.items())
    refused = [
        (r.record_sequence, r.event.data["field"], r.event.data["message"])
        for r in domain
        if r.event is not None and r.event.kind == "data_quality_rejected"
    ]
    assert [field for _, field, _ in refused] == ["lane_time", "sequence", "item_added.gtin"]
    assert checked.refused == refused


def test_checks_refuse_what_ends_the_stream():
    records = as_records(bad_events(NOW_MS))
    no_sender = R.IngestRecordsRequest(records=records).SerializeToString()
    assert check_request(no_sender) == Refused("INVALID_ARGUMENT", "sender_id: required")
    backwards = R.IngestRecordsRequest(sender_id="f", records=[records[1], records[0]])
    assert check_request(backwards.SerializeToString()) == Refused(
        "INVALID_ARGUMENT", "records: record_sequence must increase within a request"
    )
    empty = check_request(R.IngestRecordsRequest(sender_id="f").SerializeToString())
    assert empty == CheckedRequest("f", [], [], [])
    with pytest.raises(DecodeError):
        check_request(b"\x0a\xff\xff")


def test_auto_is_one_worker_per_cpu_beyond_the_first_and_at_most_two(monkeypatch):
    for cpus, workers in ((1, 0), (2, 1), (3, 2), (16, 2)):
        monkeypatch.setattr(ingest_checks, "available_cpus", lambda cpus=cpus: cpus)
        assert ingest_checks.resolve_workers("auto") == workers
    assert ingest_checks.resolve_workers(0) == 0
    assert ingest_checks.resolve_workers(3) == 3
    assert ingest_checks.available_cpus() >= 1
    assert ReportingConfig().ingest_workers == "auto"
    for bad in (-1, "many"):
        with pytest.raises(ValidationError):
            ReportingConfig(ingest_workers=bad)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("workers", [0, 1])
async def test_ingest_stores_the_same_checked_in_workers_or_in_process(tmp_path, workers):
    """Requests in flight, events the validator refuses, a resend, then a refused
    request: acked, stored and refused alike, the checks in a worker or not."""
    config = service_config(tmp_path, ingest_workers=workers)
    app = create_app(config)
    running = await start_server(app, config, port=0)
    now_ms = time.time_ns() // 1_000_000
    records = [*crafted_records(), *as_records(bad_events(now_ms), 1000)]
    requests = [records[i : i + 25] for i in range(0, len(records), 25)]
    try:
        await app.ingest_checker.ready()
        assert app.ingest_checker.in_workers is (workers > 0)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            call = reporting_pb2_grpc.ReportingServiceStub(channel).IngestRecords(timeout=30)
            for request in [*requests, requests[0], [records[-1], records[-2]]]:
                await call.write(R.IngestRecordsRequest(sender_id="fusion-1", records=request))
            acks = [(await call.read()).acked_record_sequence for _ in range(len(requests) + 1)]
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await call.read()
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert failure.value.details() == "records: record_sequence must increase within a request"
        # A resent request is acked with its own last sequence, as before the workers.
        assert acks == [r[-1].record_sequence for r in [*requests, requests[0]]]
    finally:
        await running.stop()
    assert await count(config.reporting, "events") == len(crafted_records()) - 7 + 4
    assert await count(config.reporting, "alert_revisions") == 7
    assert await count(config.reporting, "ingest_gaps") == 1  # 1000 after the crafted ones
    issues = await query(config.reporting, "SELECT kind FROM lane_incidents WHERE lane_id = '7'")
    assert issues == [("data_quality_rejected",)] * 3
    assert await query(
        config.reporting, "SELECT line_id FROM items WHERE lane_id = '7' ORDER BY line_id"
    ) == [("4",)]


async def test_workers_stop_with_the_service_and_a_dead_one_is_replaced(tmp_path, caplog):
    config = service_config(tmp_path, ingest_workers=1)
    app = create_app(config)
    running = await start_server(app, config, port=0)
    lane = Lane("s1", "1")
    events = [lane.event(T0_MS + n, "t", item_added=item(str(n), gtin=G1)) for n in range(30)]
    records = as_records(events)
    try:
        assert app.ingest_checker.pids() == []  # none before the first ingest stream
        checker = app.ingest_checker
        await checker.ready()
        (first,) = checker.pids()
        os.kill(first, signal.SIGKILL)
        await assert_eventually(lambda: not alive(first), timeout_s=10, interval_s=0.05)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = reporting_pb2_grpc.ReportingServiceStub(channel)
            for n in range(3):
                call = stub.IngestRecords(timeout=30)
                request = records[n * 10 : n * 10 + 10]
                await call.write(R.IngestRecordsRequest(sender_id="f", records=request))
                assert (await call.read()).acked_record_sequence == request[-1].record_sequence
                await call.done_writing()
                await checker.ready()
        await checker.ready()
        (second,) = checker.pids()
        assert second != first and checker.in_workers
    finally:
        await running.stop()
    assert not alive(second)
    assert await count(config.reporting, "events") == 30
    # The worker ended on its own when asked: nothing was killed (its end was once
    # misread: the pool's own thread had reaped it).
    assert "did not stop" not in caplog.text


def _sleep_forever() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(3600)


def test_a_worker_that_does_not_stop_is_killed_after_the_wait(caplog):
    context = multiprocessing.get_context("spawn")
    stuck = context.Process(target=_sleep_forever)
    quick = context.Process(target=time.sleep, args=(0,))
    stuck.start()
    quick.start()
    quick.join()  # reaped before: another thread's join, as the pool's own thread does
    ingest_checks._reap([quick, stuck], timeout_s=0.5)
    assert not stuck.is_alive() and stuck.exitcode == -signal.SIGKILL
    assert f"worker {stuck.pid} did not stop" in caplog.text
    assert f"worker {quick.pid} did not stop" not in caplog.text


@pytest.mark.parametrize("workers", [0, 1])
async def test_a_request_that_does_not_parse_fails_as_grpc_fails_it(tmp_path, workers):
    config = service_config(tmp_path, ingest_workers=workers)
    app = create_app(config)
    running = await start_server(app, config, port=0)
    try:
        await app.ingest_checker.ready()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            method = channel.stream_stream(
                "/lanesight.v1.ReportingService/IngestRecords",
                request_serializer=None,
                response_deserializer=R.IngestRecordsResponse.FromString,
            )
            call = method(timeout=30)
            await call.write(b"\x0a\xff\xff")
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await call.read()
    finally:
        await running.stop()
    # What grpc answered when it parsed the request itself (before the workers).
    assert failure.value.code() == grpc.StatusCode.UNKNOWN
    assert "DecodeError" in failure.value.details()
