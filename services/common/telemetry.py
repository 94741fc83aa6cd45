"""OpenTelemetry tracing and metrics for a service: console or OTLP exporter, off by default."""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass, field
from urllib.parse import unquote

import grpc
from lanesight.common.config import TelemetryConfig
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

log = logging.getLogger(__name__)


@dataclass
class Telemetry:
    """What setup_telemetry installed, so it can be flushed and shut down."""

    server_interceptors: list[grpc.aio.ServerInterceptor] = field(default_factory=list)
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None

    def shutdown(self) -> None:
        """Flush and stop exporters; safe to call twice."""
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
            self.tracer_provider = None
        if self.meter_provider is not None:
            self.meter_provider.shutdown()
            self.meter_provider = None


def _exporters(config: TelemetryConfig) -> tuple[SpanExporter, MetricExporter]:
    if config.exporter == "console":
        return ConsoleSpanExporter(), ConsoleMetricExporter()
    from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    return (
        OTLPSpanExporter(endpoint=config.otlp_endpoint),
        OTLPMetricExporter(endpoint=config.otlp_endpoint),
    )


#: RPCs that never get a span: kubelet probes call grpc.health.v1 every few seconds and
#: tools call reflection; spans of theirs would flood the traces.
UNTRACED_SERVICE_PREFIXES = ("grpc.health.v1.", "grpc.reflection.")


def _traced(handler_call_details: grpc.HandlerCallDetails) -> bool:
    method = handler_call_details.method or ""
    return not method.lstrip("/").startswith(UNTRACED_SERVICE_PREFIXES)


def _peer_attributes(peer: str) -> dict[str, str | int]:
    """Semantic-convention attributes of the calling peer from grpc's "ipv4:1.2.3.4:5"."""
    kind, _, address = peer.split(",")[0].partition(":")
    if kind not in ("ipv4", "ipv6") or ":" not in address:
        return {}
    host, _, port = address.rpartition(":")
    host = unquote(host).strip("[]")
    attributes: dict[str, str | int] = {
        "network.transport": "tcp",
        "network.type": kind,
        "network.peer.address": host,
        "client.address": host,
    }
    if port.isdigit():
        attributes["network.peer.port"] = attributes["client.port"] = int(port)
    return attributes


def tracing_interceptor(tracer_provider: trace.TracerProvider) -> grpc.aio.ServerInterceptor:
    """The server span interceptor: OpenTelemetry's gRPC instrumentation with current
    semantic-convention attributes (client.address, network.peer.*; the instrumentation
    still writes the deprecated net.peer.*), and no spans for health and reflection."""
    from opentelemetry.instrumentation.grpc import __version__ as instrumentation_version
    from opentelemetry.instrumentation.grpc import _aio_server

    class _Interceptor(_aio_server.OpenTelemetryAioServerInterceptor):
        def _intercept_aio_server_stream(self, behavior, handler_call_details):
            if inspect.iscoroutinefunction(behavior):
                # A streaming handler that writes with context.write (reporting's
                # IngestRecords): the instrumentation would iterate it and fail.
                return self._intercept_aio_server_unary(behavior, handler_call_details)
            return super()._intercept_aio_server_stream(behavior, handler_call_details)

        def _start_span(self, handler_call_details, context, set_status_on_exception=False):
            attributes: dict[str, str | int] = {
                "rpc.system": "grpc",
                "rpc.grpc.status_code": grpc.StatusCode.OK.value[0],
            }
            if handler_call_details.method:
                service, _, method = handler_call_details.method.lstrip("/").partition("/")
                attributes["rpc.service"], attributes["rpc.method"] = service, method
            attributes.update(_peer_attributes(context.peer() or ""))
            for key, value in context.invocation_metadata() or ():
                if key == "user-agent":
                    attributes["user_agent.original"] = str(value)
            return self._tracer.start_as_current_span(
                name=handler_call_details.method,
                kind=trace.SpanKind.SERVER,
                attributes=attributes,
                set_status_on_exception=set_status_on_exception,
            )

    tracer = trace.get_tracer(
        "opentelemetry.instrumentation.grpc", instrumentation_version, tracer_provider
    )
    return _Interceptor(tracer, filter_=_traced)


class StreamsInterceptor(grpc.aio.ServerInterceptor):
    """Counts long-lived streams open now (lanesight.rpc.streams.open) for every service."""

    def __init__(self, meter: metrics.Meter | None = None) -> None:
        self._open = (meter or service_meter("rpc")).create_up_down_counter(
            "lanesight.rpc.streams.open",
            unit="{stream}",
            description="Streaming RPCs open now (Ingest, Analyze, WatchAlerts, IngestRecords).",
        )

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method or ""
        if handler is None or not (handler.request_streaming or handler.response_streaming):
            return handler
        if method.lstrip("/").startswith(UNTRACED_SERVICE_PREFIXES):
            return handler  # Health/Watch streams of probes are not the service's streams
        service, _, name = method.lstrip("/").partition("/")
        attributes = {"rpc.service": service, "rpc.method": name}
        counter = self._open
        if handler.request_streaming and handler.response_streaming:
            behavior, factory = handler.stream_stream, grpc.stream_stream_rpc_method_handler
        elif handler.request_streaming:
            behavior, factory = handler.stream_unary, grpc.stream_unary_rpc_method_handler
        else:
            behavior, factory = handler.unary_stream, grpc.unary_stream_rpc_method_handler

        # grpc tells a handler that yields from one that writes (context.write) by its
        # function type, so the wrapper must be of the same type as what it wraps.
        if inspect.isasyncgenfunction(behavior):

            async def wrapped(request_or_iterator, context):
                counter.add(1, attributes)
                try:
                    async for response in behavior(request_or_iterator, context):
                        yield response
                finally:
                    counter.add(-1, attributes)

        else:

            async def wrapped(request_or_iterator, context):  # type: ignore[misc]
                counter.add(1, attributes)
                try:
                    return await behavior(request_or_iterator, context)
                finally:
                    counter.add(-1, attributes)

        return factory(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def setup_telemetry(config: TelemetryConfig, service: str, store_id: str) -> Telemetry:
    """Install tracer and meter providers and return the gRPC server interceptors to use."""
    if config.exporter == "none":
        return Telemetry()
    resource = Resource.create(
        {
            "service.name": f"lanesight-{service}",
            "service.namespace": "lanesight",
            "lanesight.store.id": store_id,
        }
    )
    span_exporter, metric_exporter = _exporters(config)
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    trace.set_tracer_provider(tracer_provider)
    reader = PeriodicExportingMetricReader(
        metric_exporter, export_interval_millis=int(config.metrics_interval_s * 1000)
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    metrics.set_meter_provider(meter_provider)
    log.info("telemetry on: %s exporter", config.exporter)
    return Telemetry(
        server_interceptors=[tracing_interceptor(tracer_provider), StreamsInterceptor()],
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
    )


#: Histogram buckets for durations in seconds (OpenTelemetry semantic conventions record
#: durations in s), from 1 ms to 10 s; see docs/telemetry.md.
DURATION_BUCKETS_S = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


def service_meter(service: str) -> metrics.Meter:
    """The meter a service records its metrics with (names listed in docs/telemetry.md).

    Safe to call at import time: until setup_telemetry installs a provider the API hands
    out a proxy, and with telemetry off every instrument is a no-op.
    """
    return metrics.get_meter(f"lanesight.{service}")


def duration_histogram(meter: metrics.Meter, name: str, description: str) -> metrics.Histogram:
    """A histogram of durations in seconds with buckets that resolve milliseconds."""
    return meter.create_histogram(
        name,
        unit="s",
        description=description,
        explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS_S),
    )
