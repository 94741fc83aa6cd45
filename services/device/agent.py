"""The lane agent: builds drivers, cameras and links from config and runs them around the outbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
from lanesight.common.channels import Backoff, open_channel
from lanesight.common.config import LanesightConfig
from lanesight.device.camera.pipeline import CameraPipeline, FrameCounters
from lanesight.device.camera.sources import FrameSource
from lanesight.device.commands import LaneCommandExecutor
from lanesight.device.config import PeripheralConfig
from lanesight.device.drivers.base import HealthSnapshot, HealthTracker, PeripheralDriver
from lanesight.device.drivers.printer import PrinterDriver
from lanesight.device.drivers.scale import ScaleDriver, scale_kind
from lanesight.device.drivers.scanner import ScannerDriver
from lanesight.device.drivers.transport import SerialSettings
from lanesight.device.evidence import EvidenceRecorder, EvidenceSettings
from lanesight.device.links.fusion import CommandWatcher, FusionLink
from lanesight.device.links.vision import VisionLink, stream_config
from lanesight.device.outbox import DroppedEvents, Outbox, OutboxLimits
from lanesight.device.protocols.escpos_status import DrawerOpenLevel
from lanesight.device.readings import DeviceKindName, HealthChanged, HealthState
from lanesight.device.recorder import EventRecorder
from lanesight.device.suggestions import ProduceSuggester
from lanesight.v1 import events_pb2

log = logging.getLogger(__name__)


class OutboxFull(Exception):
    """The lane outbox is at its bound: new POS events are refused, not dropped later."""

    def __init__(self, pending: int, limit: int) -> None:
        super().__init__(
            f"lane outbox full ({pending} of {limit} events waiting for fusion); retry later"
        )


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """Everything GetDeviceStatus reports."""

    store_id: str
    lane_id: str
    peripherals: list[HealthSnapshot]
    outbox_pending: int
    outbox_dropped: int
    oldest_pending_ns: int | None
    last_sequence: int
    acked_sequence: int
    cameras: dict[str, FrameCounters] = field(default_factory=dict)
    paused: bool = False


class LaneAgent:
    """One lane: peripherals, cameras, the outbox and the links to fusion and vision."""

    def __init__(
        self,
        config: LanesightConfig,
        frame_sources: Mapping[str, FrameSource] | None = None,
    ) -> None:
        self.config = config
        self.device = config.device
        self.store_id = config.store_id
        self.lane_id = config.device.lane_id
        outbox = self.device.outbox
        self.outbox = Outbox(
            outbox.path,
            OutboxLimits(
                max_events=outbox.max_events,
                max_age_s=outbox.max_age_s,
                warn_fraction=outbox.warn_fraction,
                synchronous=outbox.synchronous,
            ),
            on_drop=self._on_drop,
        )
        self.recorder = EventRecorder(self.outbox, self.store_id, self.lane_id)
        self._frame_sources = dict(frame_sources or {})
        self.drivers: dict[str, PeripheralDriver] = {}
        self.cameras: dict[str, CameraPipeline] = {}
        self.trackers: list[HealthTracker] = []
        self.fusion_link: FusionLink | None = None
        self.command_watcher: CommandWatcher | None = None
        #: The fusion replica this lane's events go to (its shard's; see fusion_address).
        self.fusion_address = config.peers.fusion
        self.vision_links: dict[str, VisionLink] = {}
        self.commands: LaneCommandExecutor | None = None
        self.evidence: EvidenceRecorder | None = None
        #: Produce suggestions at the scale, when device.produce_suggestions is enabled.
        self.suggester: ProduceSuggester | None = None
        self._tasks: list[asyncio.Task] = []
        self._side_tasks: set[asyncio.Task] = set()
        self._channels: list[grpc.aio.Channel] = []
        self._executor: ThreadPoolExecutor | None = None
        self._pos_lock = asyncio.Lock()
        self._started = False
        self._stopped = False

    # -- construction ---------------------------------------------------------------------

    def _backoff(self) -> Backoff:
        return Backoff(initial_s=self.device.reconnect_initial_s, max_s=self.device.reconnect_max_s)

    def _driver(self, peripheral: PeripheralConfig) -> PeripheralDriver:
        settings = SerialSettings(
            peripheral.baudrate, peripheral.bytesize, peripheral.parity, peripheral.stopbits
        )
        common: dict[str, Any] = {
            "sink": self._record_reading,
            "settings": settings,
            "backoff": self._backoff(),
        }
        if peripheral.kind == "scanner":
            return ScannerDriver(
                peripheral.id,
                DeviceKindName.SCANNER,
                peripheral.url,
                protocol=peripheral.protocol,
                region=self.device.barcode_market(),
                **common,
            )
        if peripheral.kind in ("scale", "scanner_scale"):
            return ScaleDriver(
                peripheral.id,
                scale_kind(peripheral.role),
                peripheral.url,
                protocol=peripheral.protocol,
                role=peripheral.role,
                poll_interval_s=peripheral.poll_interval_s,
                response_timeout_s=peripheral.response_timeout_s,
                stable_change_mg=peripheral.stable_change_mg,
                nci_status_prefix=peripheral.nci_status_prefix,
                region=self.device.barcode_market(),
                **common,
            )
        return PrinterDriver(
            peripheral.id,
            DeviceKindName.PRINTER,
            peripheral.url,
            drawer_id=peripheral.drawer_id,
            drawer_open_level=DrawerOpenLevel(self.device.drawer_open_level),
            poll_interval_s=peripheral.poll_interval_s,
            response_timeout_s=peripheral.response_timeout_s,
            **common,
        )

    async def _record_reading(self, reading) -> None:
        """Record a peripheral reading; the produce suggester sees it once it is recorded."""
        await self.recorder.record_reading(reading)
        if self.suggester is not None:
            self.suggester.on_reading(reading)

    @property
    def printer(self) -> PrinterDriver | None:
        """The lane's (first) receipt printer, if any."""
        for driver in self.drivers.values():
            if isinstance(driver, PrinterDriver):
                return driver
        return None

    def _spawn(self, coro, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=name))

    async def start(self) -> None:
        """Open the outbox and start every driver, camera and link."""
        if self._started:
            return
        self._started = True
        await self.outbox.open(owner=f"{self.store_id}/{self.lane_id}")
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lane-cpu")
        for peripheral in self.device.peripherals:
            driver = self._driver(peripheral)
            self.drivers[peripheral.id] = driver
            self.trackers.append(driver.health)
            if isinstance(driver, PrinterDriver) and driver.drawer_health is not None:
                self.trackers.append(driver.drawer_health)
            self._spawn(driver.run(), f"driver-{peripheral.id}")
        if self.device.evidence_enabled:
            self.evidence = EvidenceRecorder(
                EvidenceSettings.from_device(self.device), self.store_id, self.lane_id
            )
            self._spawn(self.evidence.purge_periodically(), "evidence-purge")
        self.commands = LaneCommandExecutor(
            self.outbox,
            self.lane_id,
            self.printer,
            on_alert=self.evidence.note_alert if self.evidence is not None else None,
        )
        sink = self.recorder.record_reading
        if self.device.fusion_link or self.device.fusion_commands:
            fusion_address = self.fusion_address = self.device.fusion_address(
                self.store_id, self.lane_id, self.config.peers.fusion
            )
            channel = open_channel(fusion_address, self.config)
            self._channels.append(channel)
            if self.device.fusion_link:
                health = HealthTracker(
                    "fusion-ingest", DeviceKindName.FUSION_LINK, fusion_address, sink
                )
                self.trackers.append(health)
                self.fusion_link = FusionLink(
                    channel,
                    self.outbox,
                    health,
                    self.device.outbox.batch_max_events,
                    self.device.outbox.max_in_flight,
                    self._backoff(),
                    self.device.link_timeout_s,
                    on_wrong_shard=self._follow_fusion_shard,
                )
                self._spawn(self.fusion_link.run(), "fusion-ingest")
            if self.device.fusion_commands:
                health = HealthTracker(
                    "fusion-commands", DeviceKindName.FUSION_LINK, fusion_address, sink
                )
                self.trackers.append(health)
                self.command_watcher = CommandWatcher(
                    channel,
                    self.store_id,
                    self.lane_id,
                    self.commands.execute,
                    health,
                    self._backoff(),
                )
                self._spawn(self.command_watcher.run(), "fusion-commands")
        if self.device.cameras and not self.device.vision_link:
            log.info("vision_link is off: cameras are not captured")
        elif self.device.cameras:
            channel = open_channel(self.config.peers.vision, self.config)
            self._channels.append(channel)
            for camera in self.device.cameras:
                source = self._frame_sources.get(camera.id)
                pipeline = CameraPipeline(
                    camera,
                    sink,
                    self._executor,
                    _opener(source),
                    self._backoff(),
                    release_source=source is None,  # objects handed in belong to the caller
                )
                self.cameras[camera.id] = pipeline
                if self.evidence is not None:
                    pipeline.evidence = self.evidence.buffer_for(camera.id)
                self.trackers.append(pipeline.health)
                health = HealthTracker(
                    f"vision:{camera.id}",
                    DeviceKindName.VISION_LINK,
                    self.config.peers.vision,
                    sink,
                )
                self.trackers.append(health)
                link = VisionLink(
                    channel,
                    pipeline,
                    stream_config(self.store_id, self.lane_id, camera),
                    self.recorder.record,
                    health,
                    self._backoff(),
                    self.device.link_timeout_s,
                )
                self.vision_links[camera.id] = link
                self._spawn(pipeline.run(), f"camera-{camera.id}")
                self._spawn(link.run(), f"vision-{camera.id}")
            wanted = self.device.produce_suggestions
            if wanted.enabled:
                camera_id = wanted.camera_id or self.device.cameras[0].id
                self.suggester = ProduceSuggester(
                    wanted, channel, self.cameras[camera_id], self._executor
                )
        self._spawn(self._watch_tasks(), "agent-watchdog")
        log.info(
            "lane agent %s/%s: %d peripherals, %d cameras, fusion %s, vision %s",
            self.store_id,
            self.lane_id,
            len(self.drivers),
            len(self.cameras),
            "on" if self.device.fusion_link else "off",
            "on" if self.device.vision_link else "off",
        )

    async def _watch_tasks(self) -> None:
        """Log a task that ended unexpectedly (every loop is meant to run until cancelled)."""
        while True:
            await asyncio.sleep(5.0)
            for task in self._tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    log.error("%s stopped: %r", task.get_name(), task.exception())

    def _on_drop(self, drop: DroppedEvents) -> None:
        reading = HealthChanged(
            "outbox",
            DeviceKindName.FUSION_LINK,
            HealthState.ERROR,
            f"dropped {drop.count} events (sequences {drop.first_sequence}.."
            f"{drop.last_sequence}): {drop.reason}",
        )
        if not self._stopped:
            task = asyncio.create_task(self.recorder.record_reading(reading))
            self._side_tasks.add(task)
            task.add_done_callback(self._side_tasks.discard)

    async def stop(self) -> None:
        """Stop every task, then flush and close the outbox; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        if self.commands is not None:
            self.commands.close_subscribers()
        if self.suggester is not None:
            await self.suggester.close()
        tasks = [*self._tasks, *self._side_tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        for pipeline in self.cameras.values():
            pipeline.close()
        if self.evidence is not None:
            await self.evidence.close()
        for channel in self._channels:
            with contextlib.suppress(Exception):
                await channel.close()
        await self.outbox.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # -- what the servicer calls ----------------------------------------------------------

    async def submit_pos_events(self, events: list[events_pb2.LaneEvent]) -> list[tuple[str, int]]:
        """Record validated POS events once each (by event id); (event id, sequence) per event.

        Raises OutboxFull, recording nothing, when the outbox has no room for them."""
        async with self._pos_lock:
            ids = [event.event_id for event in events if event.event_id]
            known = await self.outbox.submitted_sequences(ids)
            fresh: list[events_pb2.LaneEvent] = []
            fresh_by_id: dict[str, events_pb2.LaneEvent] = {}
            order: list[tuple[str, events_pb2.LaneEvent | int]] = []
            for event in events:
                if event.event_id in known:
                    order.append((event.event_id, known[event.event_id]))
                    continue
                if event.event_id and event.event_id in fresh_by_id:
                    order.append((event.event_id, fresh_by_id[event.event_id]))
                    continue
                stamped = events_pb2.LaneEvent()
                stamped.CopyFrom(event)
                for name in ("store_id", "lane_id", "sequence", "lane_time"):
                    stamped.ClearField(name)
                stamped.source_device_id = stamped.source_device_id or "pos"
                fresh.append(stamped)
                if event.event_id:
                    fresh_by_id[event.event_id] = stamped
                order.append((event.event_id, stamped))
            room = self.outbox.limits.max_events - self.outbox.pending
            if len(fresh) > room:
                # Accepting would make the outbox drop events a POS was already told were
                # taken: refuse instead, and let the POS retry once fusion catches up.
                raise OutboxFull(self.outbox.pending, self.outbox.limits.max_events)
            await self.recorder.record_many(fresh, remember_ids=True)
        return [
            (item.event_id, item.sequence)
            if isinstance(item, events_pb2.LaneEvent)
            else (eid, item)
            for eid, item in order
        ]

    def _follow_fusion_shard(self, owner: int) -> None:
        """Fusion refused this lane as replica owner's (the shards changed): send to that
        replica from now on, at device.fusion_shard_address."""
        template = self.device.fusion_shard_address
        if not template:
            log.error(
                "fusion says lane %s/%s belongs to replica %d, and device.fusion_shard_address"
                " is not set: events wait in the outbox",
                self.store_id,
                self.lane_id,
                owner,
            )
            return
        address = template.format(shard=owner)
        if address == self.fusion_address:
            return
        log.warning(
            "fusion says lane %s/%s belongs to replica %d: switching from %s to %s",
            self.store_id,
            self.lane_id,
            owner,
            self.fusion_address,
            address,
        )
        channel = open_channel(address, self.config)
        self._channels.append(channel)
        self.fusion_address = address
        if self.fusion_link is not None:
            self.fusion_link.use_channel(channel)
        if self.command_watcher is not None:
            self.command_watcher.use_channel(channel)

    def status(self) -> AgentStatus:
        """The agent's current state."""
        return AgentStatus(
            store_id=self.store_id,
            lane_id=self.lane_id,
            peripherals=[tracker.snapshot() for tracker in self.trackers],
            outbox_pending=self.outbox.pending,
            outbox_dropped=self.outbox.dropped,
            oldest_pending_ns=self.outbox.oldest_pending_ns,
            last_sequence=self.outbox.last_sequence,
            acked_sequence=self.outbox.acked_sequence,
            cameras={camera_id: p.counters for camera_id, p in self.cameras.items()},
            paused=bool(self.commands and self.commands.paused),
        )


def _opener(source: FrameSource | None) -> Callable[[], FrameSource] | None:
    """Hands back a caller's frame source; None: the pipeline opens the configured one."""
    return None if source is None else (lambda: source)
