"""The fusion service's gRPC app: the engine, its watchers, its store and its reporting link."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path

import grpc
from lanesight.common.app import ServiceApp
from lanesight.common.config import ConfigError, LanesightConfig
from lanesight.fusion import events as ev
from lanesight.fusion import metrics
from lanesight.fusion.alertbook import AlertUpdate
from lanesight.fusion.alerts import Alert, AlertState, Disposition
from lanesight.fusion.catalog import DEMO_CATALOG, CatalogBook, CatalogItem, load_catalog_file
from lanesight.fusion.commands import CommandLedger
from lanesight.fusion.convert import alert_to_pb, command_to_pb, lane_state_to_pb
from lanesight.fusion.engine import FusionEngine, IngestResult
from lanesight.fusion.forwarder import ReportingForwarder
from lanesight.fusion.profiles import FusionStore
from lanesight.fusion.sequences import MAX_SEQUENCE_JUMP, far_jumps
from lanesight.fusion.servicer import FusionServicer
from lanesight.fusion.sharding import lane_shard
from lanesight.fusion.validation import Rejection
from lanesight.fusion.watch import Watcher, WatchFilter, WatchHub
from lanesight.v1 import alerts_pb2, events_pb2, fusion_pb2, fusion_pb2_grpc

log = logging.getLogger(__name__)

_FLUSH_S = 5.0


def _now_ms() -> float:
    return time.monotonic() * 1000


class FusionApp(ServiceApp):
    """The fusion service."""

    name = "fusion"

    def __init__(self, config: LanesightConfig) -> None:
        self.config = config
        self.settings = config.fusion
        #: This replica's shard (fusion.replica_index, or the StatefulSet pod ordinal).
        self.replica_index = self.settings.replica()
        self.engine = FusionEngine(self.settings, CatalogBook())
        self.hub = WatchHub(self.settings.watch_buffer)
        self.commands = CommandLedger()
        self.forwarder: ReportingForwarder | None = (
            ReportingForwarder(config, outbox_path=forward_outbox_path(self.settings.store_path))
            if self.settings.forward_to_reporting
            else None
        )
        self.store: FusionStore | None = None
        self._resolved: dict[str, None] = {}  # alert ids counted as resolved
        #: Alerts open when fusion last stopped (from the forward outbox): they can still
        #: be acknowledged and resolved, though the engine no longer follows them.
        self.restored_alerts: dict[str, alerts_pb2.Alert] = {}
        self._tasks: list[asyncio.Task] = []
        self._stopped = False

    def service_names(self) -> list[str]:
        return [fusion_pb2.DESCRIPTOR.services_by_name["FusionService"].full_name]

    def add_to_server(self, server: grpc.aio.Server) -> None:
        fusion_pb2_grpc.add_FusionServiceServicer_to_server(FusionServicer(self), server)

    # ---- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        items: list[CatalogItem] = []
        files = ([DEMO_CATALOG] if self.settings.demo_catalog else []) + list(
            self.settings.catalog_files
        )
        for path in files:
            items.extend(await asyncio.to_thread(load_catalog_file, path))
        if items:
            self.engine.catalog.upsert("", items)
        self.store = await asyncio.to_thread(FusionStore, Path(self.settings.store_path))
        self.engine.profiles.load(await asyncio.to_thread(self.store.load_profiles))
        self.engine.tuner.load(await asyncio.to_thread(self.store.load_thresholds))
        if self.forwarder is not None:
            await self.forwarder.start()
            if self.forwarder.outbox is not None:
                for alert_id, raw in self.forwarder.outbox.open_alerts_at_start.items():
                    self.restored_alerts[alert_id] = alerts_pb2.Alert.FromString(raw)
            metrics.observe_reporting_queue(lambda: self.forwarder.pending if self.forwarder else 0)
        self._tasks = [
            asyncio.create_task(self._tick_forever(), name="fusion-lane-clock"),
            asyncio.create_task(self._flush_forever(), name="fusion-store-flush"),
        ]
        log.info(
            "fusion ready: replica %d of %d, %d catalog items, %d weight profiles, "
            "reporting link %s",
            self.replica_index,
            self.settings.replica_count,
            len(self.engine.catalog),
            len(self.engine.profiles.profiles),
            f"on as {self.forwarder.sender_id}" if self.forwarder else "off",
        )

    async def begin_shutdown(self) -> None:
        self.hub.close()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.hub.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.forwarder is not None:
            await self.forwarder.stop()
        if self.store is not None:
            await self._flush()
            await asyncio.to_thread(self.store.close)

    async def _tick_forever(self) -> None:
        interval = self.settings.tick_ms / 1000
        while True:
            await asyncio.sleep(interval)
            started = _now_ms()
            try:
                self.engine.tick(started)
            except Exception:  # keep the lane clocks running whatever one window did
                log.exception("lane clock tick failed")
            self._publish(self.engine.take_outputs(), started)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_S)
            metrics.record_processed(self.engine.take_processed_counts())
            try:
                await self._flush()
            except Exception:  # a full disk must not stop fusion deciding
                log.exception("could not persist weight profiles and thresholds")

    async def _flush(self) -> None:
        assert self.store is not None
        profiles = self.engine.profiles.take_dirty()
        thresholds = self.engine.tuner.take_dirty()
        if profiles:
            await asyncio.to_thread(self.store.save_profiles, profiles)
        if thresholds:
            await asyncio.to_thread(self.store.save_thresholds, thresholds)

    # ---- what the servicer calls ----------------------------------------------------

    def owner_of(self, lane_key: tuple[str, str]) -> int | None:
        """The replica that owns the lane, when it is not this one; None when it is."""
        owner = lane_shard(lane_key[0], lane_key[1], self.settings.replica_count)
        return None if owner == self.replica_index else owner

    def acked_sequence(self, lane_key: tuple[str, str]) -> int:
        """The last sequence processed for a lane (0 when none)."""
        lane = self.engine.lanes.get(lane_key)
        return lane.last_sequence if lane else 0

    async def wait_for_forward_room(self) -> None:
        """Backpressure: wait while the queue to reporting is full (nothing is dropped)."""
        if self.forwarder is not None and not self.forwarder.has_room:
            await self.forwarder.wait_for_room()

    async def durable(self) -> None:
        """Wait until everything processed so far is committed for reporting; only then
        may a lane (or an attendant) be told it is acknowledged."""
        if self.forwarder is not None:
            await self.forwarder.durable()

    def ingest(
        self, events: list[ev.LaneEvent], messages: list[events_pb2.LaneEvent]
    ) -> IngestResult:
        """Apply a lane's batch, forward what was processed, publish what it decided."""
        received = _now_ms()
        lane = self.engine.lanes.get(events[0].lane_key) if events else None
        jumps = []
        if lane is not None and events[-1].sequence - lane.last_sequence > MAX_SEQUENCE_JUMP:
            jumps = far_jumps(lane.last_sequence, [e.sequence for e in events])
        if jumps:
            events, messages, refused = _refuse_jumps(events, messages, jumps)
        result = self.engine.ingest(events, received_mono_ms=received)
        if jumps and lane is not None:  # jumps are only found on a known lane
            result.rejections[:0] = refused
            result.acked_sequence = lane.last_sequence
        if result.duplicates:
            metrics.events_duplicates.add(result.duplicates)
        for rejection in result.rejections:
            metrics.events_rejected.add(1, {"error.type": rejection.field})
            log.warning(
                "data-quality: event %s (sequence %d) rejected: %s: %s",
                rejection.event_id,
                rejection.sequence,
                rejection.field,
                rejection.message,
            )
        if self.forwarder is not None and result.applied:
            applied = result.applied
            # Forward the messages as received; most batches are applied whole.
            self.forwarder.add_events(
                messages if len(applied) == len(messages) else [messages[i] for i in applied]
            )
        self._publish(self.engine.take_outputs(), received)
        return result

    def alert(self, alert_id: str) -> Alert | None:
        """The alert with this id, open or closed; None when there is none."""
        return self.engine.alerts.alerts.get(alert_id)

    def lane_state(self, lane_key: tuple[str, str]) -> fusion_pb2.LaneState | None:
        """What fusion knows of a lane now, with its open alerts and command counts; None
        before the lane's first event."""
        lane = self.engine.lanes.get(lane_key)
        if lane is None:
            return None
        state = lane_state_to_pb(self.engine, lane, self.engine.alerts.open_alerts(lane))
        state.pending_commands = self.commands.pending(*lane_key)
        state.failed_commands = self.commands.failed(*lane_key)
        return state

    def acknowledge_command(
        self, store_id: str, lane_id: str, command_id: str, done: bool, detail: str
    ) -> bool:
        """Record a lane's answer to a command; False when the command is unknown."""
        return self.commands.acknowledge(store_id, lane_id, command_id, done, detail)

    def subscribe(self, watch_filter: WatchFilter) -> Watcher:
        """A new watcher of alerts and commands matching the filter."""
        return self.hub.subscribe(watch_filter)

    def unsubscribe(self, watcher: Watcher) -> None:
        """Stop a watcher."""
        self.hub.unsubscribe(watcher)

    def acknowledge(self, alert_id: str, attendant_id: str) -> Alert:
        now = _now_ms()
        alert = self.engine.acknowledge(alert_id, attendant_id, now)
        self._publish(self.engine.take_outputs(), now)
        return alert

    def resolve(
        self,
        alert_id: str,
        disposition: Disposition,
        attendant_id: str,
        note: str,
        amount_recovered: ev.Money | None,
    ) -> Alert:
        now = _now_ms()
        alert = self.engine.resolve(
            alert_id, disposition, attendant_id, note, amount_recovered, now
        )
        self._publish(self.engine.take_outputs(), now)
        return alert

    def restored_alert(self, alert_id: str) -> alerts_pb2.Alert | None:
        """An alert open when fusion last stopped, unknown to the engine; None otherwise."""
        if alert_id in self.engine.alerts.alerts:
            return None
        return self.restored_alerts.get(alert_id)

    def settle_restored(
        self,
        alert_id: str,
        attendant_id: str,
        disposition: Disposition | None = None,
        note: str = "",
        amount_recovered: ev.Money | None = None,
    ) -> alerts_pb2.Alert:
        """Acknowledge (no disposition) or resolve a restored alert: its next revision goes
        to reporting and to watchers. Raises KeyError for an id that is not restored."""
        alert = alerts_pb2.Alert()
        alert.CopyFrom(self.restored_alerts[alert_id])
        now = alerts_pb2.Alert().raised_at
        now.GetCurrentTime()
        if disposition is None:
            if alert.state != alerts_pb2.ALERT_STATE_OPEN:
                return alert
            alert.state = alerts_pb2.ALERT_STATE_ACKNOWLEDGED
            alert.acknowledged_by = attendant_id
            alert.acknowledged_at.CopyFrom(now)
        else:
            alert.state = alerts_pb2.ALERT_STATE_RESOLVED
            # The .pyi types the field as the enum class; protobuf stores the int as is.
            alert.disposition = int(disposition)  # type: ignore[assignment]
            alert.resolved_by = attendant_id
            alert.resolution_note = note
            alert.resolved_at.CopyFrom(now)
            if amount_recovered is not None:
                alert.amount_recovered.amount_minor = amount_recovered.amount_minor
                alert.amount_recovered.currency_code = amount_recovered.currency_code
            elif disposition in (Disposition.RECOVERED, Disposition.SHOPPER_CORRECTED):
                alert.amount_recovered.CopyFrom(alert.amount_at_risk)
        alert.revision += 1
        if alert.state == alerts_pb2.ALERT_STATE_RESOLVED:
            del self.restored_alerts[alert_id]
        else:
            self.restored_alerts[alert_id] = alert
        if self.forwarder is not None:
            self.forwarder.add_alert(alert)
        # The watch filter reads store, lane, type and severity, which the message has too.
        self.hub.publish_alert(alert, False, fusion_pb2.WatchAlertsResponse(alert=alert))
        return alert

    def upsert_catalog(self, store_id: str, items: list[CatalogItem]) -> tuple[int, int]:
        result = self.engine.catalog.upsert(store_id, items)
        self.engine.catalog_changed()
        return result

    def _publish(self, outputs, started_ms: float) -> None:
        """Send alert revisions and commands to watchers (and reporting); started_ms is
        when the deciding event arrived (or the lane clock ticked), for the latency metric."""
        for output in outputs:
            if isinstance(output, AlertUpdate):
                alert = output.alert
                pb = alert_to_pb(alert)
                message = fusion_pb2.WatchAlertsResponse(alert=pb)
                self.hub.publish_alert(alert, output.is_new, message)
                if output.is_new:
                    metrics.record_raised(alert, (_now_ms() - started_ms) / 1000)
                elif alert.state is AlertState.RESOLVED and alert.alert_id not in self._resolved:
                    self._resolved[alert.alert_id] = None
                    if len(self._resolved) > 100_000:  # bounded: forget the oldest half
                        for stale in list(self._resolved)[:50_000]:
                            del self._resolved[stale]
                    metrics.record_resolved(alert)
                if self.forwarder is not None:
                    self.forwarder.add_alert(pb)
            else:
                message = fusion_pb2.WatchAlertsResponse(command=command_to_pb(output))
                self.commands.issued(output)
                self.hub.publish_command(output, message)


def _refuse_jumps(
    events: list[ev.LaneEvent], messages: list[events_pb2.LaneEvent], jumps: list[int]
) -> tuple[list[ev.LaneEvent], list[events_pb2.LaneEvent], list[Rejection]]:
    """The batch without the events whose sequence jumps too far, and their rejections."""
    refused = []
    for i in jumps:
        refused.append(
            Rejection(
                events[i].event_id,
                events[i].sequence,
                "sequence",
                f"jumps more than {MAX_SEQUENCE_JUMP} past the lane's last sequence",
            )
        )
    skip = set(jumps)
    kept = [i for i in range(len(events)) if i not in skip]
    return [events[i] for i in kept], [messages[i] for i in kept], refused


def forward_outbox_path(store_path: Path | str) -> Path:
    """Where fusion keeps records for reporting: next to its profile store."""
    path = Path(store_path)
    return path.with_name(f"{path.stem}-forward{path.suffix or '.sqlite'}")


def create_app(config: LanesightConfig) -> FusionApp:
    """Build the fusion service from config (ConfigError when its replica cannot be told)."""
    try:
        config.fusion.replica()
    except ValueError as exc:
        raise ConfigError("fusion", [str(exc)]) from None
    return FusionApp(config)
