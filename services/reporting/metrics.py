"""Reporting's OpenTelemetry instruments (names, units, attributes: docs/telemetry.md).

Ingest (records stored, resent duplicates, the batch's duration, the lag from an event's
lane time to its being stored), the projector's lag behind the ack, report query time per
report, and the database's size.
"""

from __future__ import annotations

import inspect
import time
import weakref
from collections.abc import Iterable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lanesight.common.telemetry import duration_histogram, service_meter
from lanesight.reporting.model import FedRecord
from opentelemetry.metrics import CallbackOptions, Observation

if TYPE_CHECKING:
    from lanesight.reporting.app import ReportingApp

_meter = service_meter("reporting")
_apps: weakref.WeakSet[ReportingApp] = weakref.WeakSet()

#: The RPCs timed as report queries, and their lanesight.report.kind.
REPORT_KINDS = {
    "ListAlerts": "alerts",
    "GetShrinkReport": "shrink",
    "GetAlertQualityReport": "alert_quality",
    "GetLaneHealthReport": "lane_health",
    "GetPosExceptionReport": "pos_exceptions",
    "ExportReport": "export",
}

records_ingested = _meter.create_counter(
    "lanesight.reporting.records.ingested", unit="{record}", description="Records stored."
)
records_duplicates = _meter.create_counter(
    "lanesight.reporting.records.duplicates",
    unit="{record}",
    description="Records resent after they were stored (ignored: ingest is idempotent).",
)
ingest_duration = duration_histogram(
    _meter, "lanesight.reporting.ingest.duration", "One IngestRecords batch stored."
)
ingest_lag = _meter.create_histogram(
    "lanesight.reporting.ingest.lag",
    unit="s",
    description="An event's lane time to its being stored in reporting.",
    explicit_bucket_boundaries_advisory=[0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600, 86400],
)
query_duration = duration_histogram(
    _meter, "lanesight.reporting.query.duration", "Time to answer a report."
)


def record_ingest(records: Sequence[FedRecord], previous_ack: int, duration_s: float) -> None:
    """Count a stored batch: records after the sender's previous ack are new."""
    ingest_duration.record(duration_s)
    now_ms = time.time() * 1000
    counts = {("event", True): 0, ("event", False): 0, ("alert", True): 0, ("alert", False): 0}
    for sequence, row, _ in records:
        kind = "event" if row is not None else "alert"
        new = sequence > previous_ack
        counts[kind, new] += 1
        if new and row is not None:
            ingest_lag.record(max(0.0, (now_ms - row[4]) / 1000))
    for (kind, new), count in counts.items():
        if count:
            counter = records_ingested if new else records_duplicates
            counter.add(count, {"lanesight.record.kind": kind})


def timed_reports(servicer: Any) -> Any:
    """The servicer with each report RPC timed into lanesight.reporting.query.duration."""
    for name, kind in REPORT_KINDS.items():
        method = getattr(servicer, name, None)
        if method is None:
            continue
        attributes = {"lanesight.report.kind": kind}
        if inspect.isasyncgenfunction(method):

            def streaming(method=method, attributes=attributes):
                @wraps(method)
                async def timed(request, context):
                    started = time.perf_counter()
                    try:
                        async for response in method(request, context):
                            yield response
                    finally:
                        query_duration.record(time.perf_counter() - started, attributes)

                return timed

            setattr(servicer, name, streaming())
        else:

            def unary(method=method, attributes=attributes):
                @wraps(method)
                async def timed(request, context):
                    started = time.perf_counter()
                    try:
                        return await method(request, context)
                    finally:
                        query_duration.record(time.perf_counter() - started, attributes)

                return timed

            setattr(servicer, name, unary())
    return servicer


def watch(app: ReportingApp) -> None:
    """Report this app's database size."""
    _apps.add(app)


def unwatch(app: ReportingApp) -> None:
    _apps.discard(app)


def _db_size(options: CallbackOptions) -> Iterable[Observation]:
    for app in list(_apps):
        settings = app.config.reporting
        if getattr(settings, "database_url", ""):
            continue  # PostgreSQL: its own monitoring reports the size
        path = Path(settings.db_path)
        size = 0
        for part in (path, path.with_name(path.name + "-wal")):
            try:
                size += part.stat().st_size
            except OSError:
                pass
        yield Observation(size)


_meter.create_observable_gauge(
    "lanesight.reporting.db.size",
    callbacks=[_db_size],
    unit="By",
    description="Size of the SQLite database and its write-ahead log.",
)


def projection_lag(options: CallbackOptions | None = None) -> Iterable[Observation]:
    """Events acknowledged and not yet projected into facts and rollups."""
    for app in list(_apps):
        if app.store is not None:
            yield Observation(app.store.projector.pending)


def projection_age(options: CallbackOptions | None = None) -> Iterable[Observation]:
    """How long the oldest acknowledged event not projected yet has waited."""
    for app in list(_apps):
        if app.store is not None:
            yield Observation(app.store.projector.lag_seconds())


_meter.create_observable_gauge(
    "lanesight.reporting.projection.lag",
    callbacks=[projection_lag],
    unit="{event}",
    description="Events acknowledged whose facts and rollups are not derived yet.",
)
_meter.create_observable_gauge(
    "lanesight.reporting.projection.age",
    callbacks=[projection_age],
    unit="s",
    description="How long the oldest acknowledged event not projected yet has waited.",
)
