"""Fusion's OpenTelemetry instruments (names, units and attributes as in docs/telemetry.md)."""

from __future__ import annotations

from collections.abc import Callable

from lanesight.common.telemetry import duration_histogram, service_meter
from lanesight.fusion import events as ev
from lanesight.fusion.alerts import Alert
from opentelemetry.metrics import CallbackOptions, Observation

_meter = service_meter("fusion")
events_processed = _meter.create_counter(
    "lanesight.fusion.events.processed", unit="{event}", description="Lane events processed."
)
events_rejected = _meter.create_counter(
    "lanesight.fusion.events.rejected",
    unit="{event}",
    description="Invalid events recorded as data-quality issues.",
)
events_duplicates = _meter.create_counter(
    "lanesight.fusion.events.duplicates",
    unit="{event}",
    description="Resent events ignored (normal after a reconnect).",
)
lanes_active = _meter.create_up_down_counter(
    "lanesight.fusion.lanes.active",
    unit="{lane}",
    description="Lanes with an open Ingest stream on this replica.",
)
alerts_raised = _meter.create_counter(
    "lanesight.fusion.alerts.raised", unit="{alert}", description="Alerts raised."
)
alerts_resolved = _meter.create_counter(
    "lanesight.fusion.alerts.resolved", unit="{alert}", description="Alerts resolved."
)
alert_latency = duration_histogram(
    _meter, "lanesight.fusion.alert.latency", "Deciding event to the alert on the watch stream."
)
amount_at_risk = _meter.create_counter(
    "lanesight.fusion.alert.amount_at_risk",
    unit="{minor_unit}",
    description="Amount at risk of raised alerts.",
)
watchers = _meter.create_up_down_counter(
    "lanesight.fusion.watchers", unit="{watcher}", description="WatchAlerts streams open."
)
watch_missed = _meter.create_counter(
    "lanesight.fusion.watch.missed",
    unit="{alert}",
    description="Items a slow watcher missed (reported to it as a gap).",
)

_SOURCES: dict[type, str] = {}
for _kind in (
    ev.TransactionStarted,
    ev.ItemAdded,
    ev.ItemVoided,
    ev.QuantityChanged,
    ev.PriceOverride,
    ev.DiscountApplied,
    ev.TransactionSuspended,
    ev.TransactionResumed,
    ev.TenderStarted,
    ev.TenderCompleted,
    ev.TransactionEnded,
    ev.NoSaleDrawerOpen,
    ev.RefundIssued,
    ev.OperatorSignOn,
    ev.OperatorSignOff,
    ev.AttendantOverride,
):
    _SOURCES[_kind] = "pos"
_SOURCES.update(
    {
        ev.BarcodeRead: "scanner",
        ev.ScannerNoRead: "scanner",
        ev.ScaleReading: "scale",
        ev.ReceiptPrinted: "printer",
        ev.PrinterStatusChanged: "printer",
        ev.DrawerStateChanged: "drawer",
        ev.PeripheralHealthChanged: "device",
    }
)
for _vision_kind in ev.VISION_PAYLOADS:
    _SOURCES[_vision_kind] = "vision"


def record_processed(by_type: dict[type, int]) -> None:
    """Add processed-event counts (kept per payload type by the engine) by source."""
    by_source: dict[str, int] = {}
    for kind, count in by_type.items():
        source = _SOURCES.get(kind, "other")
        by_source[source] = by_source.get(source, 0) + count
    for source, count in by_source.items():
        events_processed.add(count, {"lanesight.event.source": source})


def record_raised(alert: Alert, latency_s: float) -> None:
    """A new alert went out."""
    kind = alert.type.rule_name
    alerts_raised.add(
        1, {"lanesight.alert.type": kind, "lanesight.alert.severity": alert.severity.name.lower()}
    )
    alert_latency.record(latency_s, {"lanesight.alert.type": kind})
    amount_at_risk.add(
        alert.amount_at_risk.amount_minor,
        {"lanesight.alert.type": kind, "lanesight.currency": alert.amount_at_risk.currency_code},
    )


def record_resolved(alert: Alert) -> None:
    """An alert was resolved (by an attendant or by the shopper's correction)."""
    alerts_resolved.add(
        1,
        {
            "lanesight.alert.type": alert.type.rule_name,
            "lanesight.alert.disposition": alert.disposition.name.lower(),
        },
    )


def observe_reporting_queue(pending: Callable[[], int]) -> None:
    """Report the forwarder's unacknowledged records as a gauge."""

    def callback(options: CallbackOptions):
        yield Observation(pending())

    _meter.create_observable_gauge(
        "lanesight.fusion.reporting.queue",
        callbacks=[callback],
        unit="{record}",
        description="Records sent to reporting and not yet acknowledged.",
    )
