"""OpenTelemetry tracing and metrics for a service: console or OTLP exporter, off by default."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

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


def setup_telemetry(config: TelemetryConfig, service: str, store_id: str) -> Telemetry:
    """Install tracer and meter providers and return the gRPC server interceptors to use."""
    if config.exporter == "none":
        return Telemetry()
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

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
        server_interceptors=[aio_server_interceptor(tracer_provider=tracer_provider)],
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
