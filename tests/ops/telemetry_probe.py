"""Run the four services in this process with in-memory OpenTelemetry, exercise them like a
lane does, and print (JSON) every metric name and every span they produced.

    python -m tests.ops.telemetry_probe WORK_DIR

Run by tests/ops/test_telemetry.py in a subprocess: the global meter and tracer providers
can be set once per process.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

import grpc
import numpy as np
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from lanesight.common.config import AuthConfig, LanesightConfig, PeersConfig, ServerConfig, data_dir
from lanesight.common.server import REFLECTION_V1_SERVICE, RunningServer, start_server
from lanesight.common.telemetry import StreamsInterceptor, tracing_interceptor
from lanesight.demo.main import free_port
from lanesight.device.app import create_app as create_device
from lanesight.device.config import (
    CameraConfig,
    DeviceConfig,
    OutboxConfig,
    PeripheralConfig,
    ZoneConfig,
)
from lanesight.fusion import metrics as fusion_metrics
from lanesight.fusion.app import create_app as create_fusion
from lanesight.fusion.config import FusionConfig
from lanesight.reporting.app import create_app as create_reporting
from lanesight.reporting.config import ReportingConfig
from lanesight.simulation.camera import SyntheticLaneCamera, encode_jpeg
from lanesight.v1 import (
    alerts_pb2,
    common_pb2,
    device_pb2,
    device_pb2_grpc,
    events_pb2,
    fusion_pb2,
    fusion_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
    vision_pb2,
    vision_pb2_grpc,
)
from lanesight.vision.app import create_app as create_vision
from lanesight.vision.config import HealthConfig, VisionConfig
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

STORE, LANE = "store-1", "lane-1"
ZONES = {
    "cart": common_pb2.LANE_ZONE_CART,
    "scan": common_pb2.LANE_ZONE_SCAN,
    "bagging": common_pb2.LANE_ZONE_BAGGING,
}


async def _eventually(check, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached in {timeout_s}s: {check}")
        await asyncio.sleep(0.05)


def _pos_sale() -> list[events_pb2.LaneEvent]:
    """A sale with a no-sale drawer opening after it (fusion alerts on the no-sale)."""

    def event(**payload) -> events_pb2.LaneEvent:
        return events_pb2.LaneEvent(event_id=str(uuid.uuid4()), **payload)

    usd = common_pb2.Money(amount_minor=199, currency_code="USD")
    return [
        event(
            transaction_id="t-1",
            transaction_started=events_pb2.TransactionStarted(operator_id="op-1"),
        ),
        event(
            transaction_id="t-1",
            item_added=events_pb2.ItemAdded(
                line_id="1",
                gtin="00012345678905",
                description="Soup",
                quantity=1,
                unit_price=usd,
                extended_price=usd,
                entry_method=events_pb2.ENTRY_METHOD_SCANNED,
            ),
        ),
        event(no_sale_drawer_open=events_pb2.NoSaleDrawerOpen(operator_id="op-1")),
    ]


def _lane_event(lane: str, sequence: int, event_id: str = "", **payload) -> events_pb2.LaneEvent:
    event = events_pb2.LaneEvent(
        event_id=event_id or f"{lane}-{sequence}",
        store_id=STORE,
        lane_id=lane,
        sequence=sequence,
        source_device_id="pos",
        **payload,
    )
    event.lane_time.FromNanoseconds(time.time_ns())
    return event


async def _exercise_fusion(address: str) -> None:
    """What a lane and an attendant app do that the lane agent above did not: a resent
    event, an invalid one, a slow watcher, an alert resolved."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        # A watcher that reads nothing while more is published than its buffer holds.
        slow = stub.WatchAlerts(
            fusion_pb2.WatchAlertsRequest(store_ids=[STORE], include_updates=True), timeout=30
        )
        await slow.initial_metadata()
        lane = "lane-2"
        no_sale = events_pb2.NoSaleDrawerOpen(operator_id="op-1")
        bad = events_pb2.ItemAdded(
            line_id="1",
            gtin="00012345678905",
            quantity=1,
            unit_price=common_pb2.Money(amount_minor=100, currency_code="ZZZ"),
            extended_price=common_pb2.Money(amount_minor=100, currency_code="ZZZ"),
        )
        first = _lane_event(lane, 1, no_sale_drawer_open=no_sale)
        batch = [
            first,
            first,  # resent: a duplicate
            _lane_event(lane, 2, transaction_id="t-9", item_added=bad),  # rejected
            _lane_event(lane, 3, no_sale_drawer_open=no_sale),
            _lane_event(lane, 4, no_sale_drawer_open=no_sale),
        ]
        call = stub.Ingest(timeout=30)
        await call.write(fusion_pb2.IngestRequest(events=batch[:1]))
        await call.read()
        await call.write(fusion_pb2.IngestRequest(events=batch[1:]))
        answer = await call.read()
        await call.done_writing()
        assert answer.rejections, "the invalid event was not rejected"
        state = await stub.GetLaneState(
            fusion_pb2.GetLaneStateRequest(lane=common_pb2.LaneRef(store_id=STORE, lane_id=lane)),
            timeout=10,
        )
        for alert in state.state.open_alerts:
            await stub.ResolveAlert(
                fusion_pb2.ResolveAlertRequest(
                    alert_id=alert.alert_id,
                    disposition=alerts_pb2.DISPOSITION_HONEST_MISTAKE,
                    attendant_id="att-1",
                ),
                timeout=10,
            )
        gap = None
        async for message in slow:
            if message.HasField("gap"):
                gap = message.gap
                break
        slow.cancel()
        assert gap is not None and gap.missed > 0, "the slow watcher missed nothing"


async def _exercise_vision(address: str, camera: SyntheticLaneCamera) -> None:
    """Still images through the model, and a camera that goes dark."""
    image = next(
        iter(
            sorted(data_dir("grocery", "dataset", "iconic-images-and-descriptions").rglob("*.jpg"))
        )
    )
    async with grpc.aio.insecure_channel(address) as channel:
        stub = vision_pb2_grpc.VisionServiceStub(channel)
        await stub.ClassifyImages(
            vision_pb2.ClassifyImagesRequest(images=[image.read_bytes()] * 3, top_k=1), timeout=30
        )
        dark = encode_jpeg(np.zeros((180, 320, 3), dtype=np.uint8))

        async def requests():
            yield vision_pb2.AnalyzeRequest(
                config=vision_pb2.StreamConfig(
                    lane=common_pb2.LaneRef(store_id=STORE, lane_id="lane-dark"),
                    camera_id="cam-dark",
                    zones=[
                        vision_pb2.ZonePolygon(
                            zone=ZONES[name],
                            points=[vision_pb2.Point(x=x, y=y) for x, y in points],
                        )
                        for name, points in camera.zones()
                    ],
                )
            )
            for frame_id in range(1, 8):
                stamp = Timestamp()
                stamp.FromNanoseconds(time.time_ns())
                yield vision_pb2.AnalyzeRequest(
                    frame=vision_pb2.Frame(frame_id=frame_id, captured_at=stamp, jpeg=dark)
                )
                await asyncio.sleep(0.05)

        async for _ in stub.Analyze(requests(), timeout=30):
            pass


async def _exercise_reporting(address: str) -> None:
    """A sender that resends a record reporting already stored."""
    record = reporting_pb2.ReportRecord(
        record_sequence=1,
        event=_lane_event("lane-3", 1, no_sale_drawer_open=events_pb2.NoSaleDrawerOpen()),
    )
    async with grpc.aio.insecure_channel(address) as channel:
        stub = reporting_pb2_grpc.ReportingServiceStub(channel)
        call = stub.IngestRecords(timeout=30)
        for _ in range(2):
            await call.write(
                reporting_pb2.IngestRecordsRequest(sender_id="probe", records=[record])
            )
            await call.read()
        await call.done_writing()


async def _refused_call(work: Path, config: LanesightConfig) -> None:
    """A caller without a token, at a service with auth on."""
    tokens = work / "tokens.yaml"
    tokens.write_text("tokens: []\n", encoding="utf-8")
    secured = config.model_copy(
        update={
            "auth": AuthConfig(enabled=True, tokens_file=tokens),
            "reporting": ReportingConfig(db_path=work / "secured.db"),
        }
    )
    server = await start_server(create_reporting(secured), secured, 0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = reporting_pb2_grpc.ReportingServiceStub(channel)
            try:
                await stub.ListAlerts(reporting_pb2.ListAlertsRequest(), timeout=10)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() is grpc.StatusCode.UNAUTHENTICATED, exc
            else:
                raise AssertionError("a call without a token was answered")
    finally:
        await server.stop()


async def probe(work: Path) -> dict:
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)

    ports = {name: free_port() for name in ("device", "vision", "fusion", "reporting")}
    peers = PeersConfig(**{name: f"127.0.0.1:{port}" for name, port in ports.items()})
    camera = SyntheticLaneCamera(fps=15.0, width=320, height=180)
    config = LanesightConfig(
        store_id=STORE,
        server=ServerConfig(grace_s=0.5),
        peers=peers,
        reporting=ReportingConfig(db_path=work / "reporting.db"),
        fusion=FusionConfig(store_path=work / "fusion.sqlite", tick_ms=20, watch_buffer=1),
        vision=VisionConfig(
            max_wait_ms=20.0,
            intra_op_threads=1,
            warmup=False,
            enrolment_store_path=work / "enrolled.npz",
            health=HealthConfig(confirm_s=0.0),
        ),
        device=DeviceConfig(
            lane_id=LANE,
            outbox=OutboxConfig(path=str(work / "outbox.db"), synchronous="normal"),
            evidence_dir=str(work / "evidence"),
            reconnect_initial_s=0.05,
            reconnect_max_s=0.3,
            link_timeout_s=2.0,
            # A scanner that is not there: its connection failures are peripheral errors.
            peripherals=[
                PeripheralConfig(
                    id="scanner-1",
                    kind="scanner",
                    protocol="cr",
                    url=f"tcp://127.0.0.1:{free_port()}",
                )
            ],
            cameras=[
                CameraConfig(
                    id="cam-1",
                    source="python:unused:unused",
                    max_fps=15,
                    keyframe_interval_s=0.2,
                    zones=[
                        ZoneConfig(zone=name, points=points)  # type: ignore[arg-type]
                        for name, points in camera.zones()
                    ],
                )
            ],
        ),
    )

    def interceptors() -> list[grpc.aio.ServerInterceptor]:
        return [tracing_interceptor(tracer_provider), StreamsInterceptor()]

    running: list[RunningServer] = []
    try:
        # The lane agent first: its links to fusion and vision start down, then heal.
        device = await start_server(
            create_device(config, {"cam-1": camera}),
            config,
            ports["device"],
            interceptors=interceptors(),
        )
        running.append(device)
        agent = device.app.agent  # type: ignore[attr-defined]
        await asyncio.sleep(0.5)
        for name, factory in (
            ("reporting", create_reporting),
            ("fusion", create_fusion),
            ("vision", create_vision),
        ):
            running.append(
                await start_server(
                    factory(config), config, ports[name], interceptors=interceptors()
                )
            )

        async with grpc.aio.insecure_channel(peers.device) as channel:
            stub = device_pb2_grpc.DeviceServiceStub(channel)
            await stub.SubmitPosEvents(
                device_pb2.SubmitPosEventsRequest(events=_pos_sale()), timeout=10
            )
            await stub.ExecuteLaneCommand(
                device_pb2.ExecuteLaneCommandRequest(
                    command=alerts_pb2.LaneCommand(
                        command_id="c-1",
                        store_id=STORE,
                        lane_id=LANE,
                        pause=alerts_pb2.PauseLane(reason="probe"),
                    )
                ),
                timeout=10,
            )
            # Kubelet-style probes and a tool's reflection call: neither may make a span.
            await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
            reflect = channel.stream_stream(
                f"/{REFLECTION_V1_SERVICE}/ServerReflectionInfo",
                request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
            )
            answers = [
                answer
                async for answer in reflect(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
                )
            ]
            listed = [s.name for s in answers[0].list_services_response.service]

        await _eventually(lambda: agent.outbox.pending == 0 and agent.outbox.acked_sequence >= 3)
        await _eventually(lambda: agent.cameras["cam-1"].counters.sent > 3)
        vision_engine = running[3].app.engine  # type: ignore[attr-defined]
        await _eventually(lambda: vision_engine.frames_processed > 3)
        # Everything fusion processed has reached reporting.
        forwarder = running[2].app.forwarder  # type: ignore[attr-defined]
        await _eventually(lambda: forwarder.connected and forwarder.pending == 0)
        await _exercise_fusion(peers.fusion)
        await _exercise_vision(peers.vision, camera)
        await _exercise_reporting(peers.reporting)
        await _refused_call(work, config)
        async with grpc.aio.insecure_channel(peers.reporting) as channel:
            reports = reporting_pb2_grpc.ReportingServiceStub(channel)
            await reports.ListAlerts(reporting_pb2.ListAlertsRequest(), timeout=10)
        # Fusion adds its processed counts every few seconds; add them now.
        fusion_app = running[2].app
        fusion_metrics.record_processed(fusion_app.engine.take_processed_counts())  # type: ignore[attr-defined]
        collected = reader.get_metrics_data()
    finally:
        for server in reversed(running):
            await server.stop()

    names: set[str] = set()
    points: dict[str, list[dict]] = {}
    for resource_metrics in collected.resource_metrics if collected else []:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                names.add(metric.name)
                points.setdefault(metric.name, []).extend(
                    dict(point.attributes or {}) for point in metric.data.data_points
                )
    return {
        "metrics": sorted(names),
        "attributes": {name: attrs[:20] for name, attrs in points.items()},
        "spans": [
            {"name": span.name, "attributes": dict(span.attributes or {})}
            for span in spans.get_finished_spans()
        ],
        "reflection_v1_services": listed,
    }


def main() -> int:
    work = Path(sys.argv[1])
    work.mkdir(parents=True, exist_ok=True)
    result = asyncio.run(probe(work))
    print("PROBE-RESULT " + json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
