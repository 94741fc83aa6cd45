"""The console's view of its stores, kept from the public gRPC API only.

* One WatchAlerts stream to fusion (the console's own token, every configured store,
  commands and updates included) keeps the alerts; after each (re)connect and after a
  gap it re-reads every lane's open alerts with GetLaneState, so nothing is missed.
* A poll every ``console.poll_interval_s`` reads each lane's state from fusion and its
  device health from the lane agent, and publishes a lane's tile only when it changed.
* Every change is appended to a numbered log (``epoch-seq``). Browsers follow it over
  server-sent events; one that reconnects with Last-Event-ID gets exactly what it missed,
  or a fresh snapshot when its cursor is from another run or older than the buffer.
* Attendant actions (acknowledge, resolve, pause, resume, evidence) are sent with the
  signed-in attendant's own token, so fusion and the lane agent check the store too.
* The store view's "resolved recently" comes from reporting's ListAlerts (the console's
  own token; the request always names the attendant's stores).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc
from lanesight.common.auth import read_client_token
from lanesight.common.channels import Backoff, open_channel
from lanesight.common.config import LanesightConfig
from lanesight.console.config import ConsoleLane
from lanesight.console.wording import is_open, needs_attendant
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
)

log = logging.getLogger(__name__)

LaneKey = tuple[str, str]
#: The store of changes every browser gets (the console's own status).
ALL_STORES = "*"
#: Closed alerts kept for their detail page; the oldest go first.
MAX_CLOSED_ALERTS = 5000
#: Lane commands remembered per lane, for the alert timeline.
MAX_COMMANDS_PER_LANE = 50
#: Alerts whose evidence frames are kept in memory for their detail page.
MAX_EVIDENCE_CACHED = 32


class ActionError(Exception):
    """An attendant action fusion or the lane agent refused; the message says why."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class LaneView:
    """One lane's tile: status, basket and health, as last read."""

    store_id: str
    lane_id: str
    device_address: str
    status: str = "idle"
    transaction_id: str = ""
    items: int = 0
    total: common_pb2.Money = field(default_factory=common_pb2.Money)
    lines: list[fusion_pb2.LaneItemLine] = field(default_factory=list)
    tendering: bool = False
    bagging_weight_mg: int = 0
    expected_bagging_weight_mg: int = 0
    vision_available: bool = False
    # None: not read yet (or no agent configured); True/False: the last read.
    fusion_ok: bool | None = None
    device_ok: bool | None = None
    camera_ok: bool | None = None
    device_detail: str = ""
    paused_by_fusion: bool = False
    paused_at_lane: bool = False

    @property
    def key(self) -> LaneKey:
        return (self.store_id, self.lane_id)

    @property
    def dom_id(self) -> str:
        return f"lane-{self.store_id}-{self.lane_id}"

    def signature(self) -> tuple:
        """What the tile shows; a change publishes the tile."""
        return (
            self.status,
            self.transaction_id,
            self.items,
            self.total.amount_minor,
            self.total.currency_code,
            self.fusion_ok,
            self.device_ok,
            self.camera_ok,
            self.device_detail,
            self.paused_by_fusion,
            self.paused_at_lane,
            self.tendering,
            tuple((line.line_id, line.voided, line.bagged) for line in self.lines),
        )


@dataclass
class Evidence:
    """An alert's evidence frames as its lane agent returned them, or why there are none."""

    frames: list[device_pb2.EvidenceFrame] = field(default_factory=list)
    left_out: int = 0
    note: str = ""
    read_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Change:
    """One entry of the live-update log: what changed (a lane or an alert) in which store."""

    seq: int
    store_id: str
    kind: str  # "lane" | "alert" | "status"
    key: str  # the lane's "store/lane", the alert id, or "up"/"down" (fusion's link)


def _metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    return (("authorization", f"Bearer {token}"),) if token else None


def _rpc_message(exc: grpc.aio.AioRpcError) -> str:
    return f"{exc.code().name}: {exc.details() or 'no detail'}"


class ConsoleHub:
    """Alerts, lanes and the live-update log of the stores the console serves."""

    def __init__(self, config: LanesightConfig) -> None:
        self.config = config
        self.settings = config.console
        # Tokens go on each call explicitly: the console's own for its watch and polls,
        # the attendant's for actions. The channels themselves carry none.
        bare = config.model_copy(
            update={"auth": config.auth.model_copy(update={"client_token_file": None})}
        )
        self._own_token = read_client_token(config.auth)
        self._fusion_channel = open_channel(config.peers.fusion, bare)
        self.fusion = fusion_pb2_grpc.FusionServiceStub(self._fusion_channel)
        self._reporting_channel = open_channel(config.peers.reporting, bare)
        self.reporting = reporting_pb2_grpc.ReportingServiceStub(self._reporting_channel)
        self._device_channels: dict[str, grpc.aio.Channel] = {}
        self.devices: dict[str, device_pb2_grpc.DeviceServiceStub] = {}
        self.lanes: dict[LaneKey, LaneView] = {}
        for lane in self.settings.lanes:
            self._add_lane(lane, bare)
        self.stores = sorted({lane.store_id for lane in self.settings.lanes})
        self.alerts: OrderedDict[str, alerts_pb2.Alert] = OrderedDict()
        #: Wall-clock ms at which the console first saw each alert it keeps.
        self.first_seen: dict[str, int] = {}
        self.commands: dict[LaneKey, deque[alerts_pb2.LaneCommand]] = {}
        self._evidence: OrderedDict[str, Evidence] = OrderedDict()
        self.fusion_connected = False
        # The live-update log: an epoch per run, so a cursor from another run is not trusted.
        self.epoch = secrets.token_hex(4)
        self.seq = 0
        self.log: deque[Change] = deque(maxlen=self.settings.replay_buffer)
        self._changed = asyncio.Condition()
        self.closing = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._watch_call: grpc.aio.UnaryStreamCall | None = None

    def _add_lane(self, lane: ConsoleLane, bare: LanesightConfig) -> None:
        self.lanes[(lane.store_id, lane.lane_id)] = LaneView(
            lane.store_id, lane.lane_id, lane.device
        )
        if lane.device and lane.device not in self.devices:
            channel = open_channel(lane.device, bare)
            self._device_channels[lane.device] = channel
            self.devices[lane.device] = device_pb2_grpc.DeviceServiceStub(channel)

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._watch_loop(), name="console-watch"),
            asyncio.create_task(self._poll_loop(), name="console-poll"),
        ]

    async def close_streams(self) -> None:
        """End every live-update stream (shutdown)."""
        self.closing.set()
        async with self._changed:
            self._changed.notify_all()

    async def stop(self) -> None:
        await self.close_streams()
        if self._watch_call is not None:
            self._watch_call.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        await self._fusion_channel.close()
        await self._reporting_channel.close()
        for channel in self._device_channels.values():
            await channel.close()

    # --- the live-update log ----------------------------------------------------------

    def cursor(self) -> str:
        """The id of the latest change, for a page rendered now."""
        return f"{self.epoch}-{self.seq}"

    async def _publish(self, store_id: str, kind: str, key: str) -> None:
        async with self._changed:
            self.seq += 1
            self.log.append(Change(self.seq, store_id, kind, key))
            self._changed.notify_all()

    def parse_cursor(self, cursor: str) -> int | None:
        """The seq of a cursor from this run that the log still covers; None otherwise."""
        epoch, _, number = cursor.partition("-")
        if epoch != self.epoch or not number.isdigit():
            return None
        seq = int(number)
        if seq > self.seq:
            return None
        oldest = self.log[0].seq if self.log else self.seq + 1
        # Everything after seq must still be in the log.
        if seq + 1 < oldest:
            return None
        return seq

    def changes_after(
        self, seq: int, stores: Iterable[str] | None, upto: int | None = None
    ) -> list[Change]:
        """Changes in (seq, upto] of the given stores (None: all), the last one per item."""
        upto = self.seq if upto is None else upto
        allowed = None if stores is None else set(stores)
        latest: dict[tuple[str, str], Change] = {}
        for change in self.log:
            if change.seq <= seq or change.seq > upto:
                continue
            if allowed is not None and change.store_id not in allowed | {ALL_STORES}:
                continue
            key = (change.kind, change.key)
            latest.pop(key, None)
            latest[key] = change
        return sorted(latest.values(), key=lambda c: c.seq)

    async def wait_for_change(self, seq: int, timeout_s: float) -> None:
        """Return once a change after seq is logged, the hub closes, or timeout_s passes."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.seq > seq or self.closing.is_set()),
                    timeout_s,
                )

    # --- alerts -----------------------------------------------------------------------

    async def _apply_alert(self, alert: alerts_pb2.Alert) -> None:
        if (alert.store_id, alert.lane_id) not in self.lanes and alert.store_id not in self.stores:
            return
        known = self.alerts.get(alert.alert_id)
        if known is not None and known.revision >= alert.revision:
            return
        self.alerts[alert.alert_id] = alert
        self.alerts.move_to_end(alert.alert_id)
        # The age shown is from when the console first heard of it (lane clocks may drift).
        self.first_seen.setdefault(alert.alert_id, int(time.time() * 1000))
        self._trim_closed()
        await self._publish(alert.store_id, "alert", alert.alert_id)
        lane = self.lanes.get((alert.store_id, alert.lane_id))
        if lane is not None:
            await self._update_tile(lane)

    def _trim_closed(self) -> None:
        closed = [a for a, alert in self.alerts.items() if not is_open(alert)]
        for alert_id in closed[: max(0, len(closed) - MAX_CLOSED_ALERTS)]:
            del self.alerts[alert_id]
            self.first_seen.pop(alert_id, None)

    async def _forget_alert(self, alert_id: str) -> None:
        alert = self.alerts.pop(alert_id, None)
        self.first_seen.pop(alert_id, None)
        if alert is not None:
            await self._publish(alert.store_id, "alert", alert_id)

    def open_alerts(self, stores: Iterable[str] | None) -> list[alerts_pb2.Alert]:
        """Open alerts of the stores, most severe first, then newest first."""
        allowed = None if stores is None else set(stores)
        found = [
            alert
            for alert in self.alerts.values()
            if is_open(alert) and (allowed is None or alert.store_id in allowed)
        ]
        return sorted(found, key=rank, reverse=True)

    def lane_alerts(self, key: LaneKey) -> list[alerts_pb2.Alert]:
        return [
            alert
            for alert in self.alerts.values()
            if (alert.store_id, alert.lane_id) == key and is_open(alert)
        ]

    # --- fusion's watch ---------------------------------------------------------------

    async def _watch_loop(self) -> None:
        backoff = Backoff(initial_s=0.2, max_s=5.0)
        request = fusion_pb2.WatchAlertsRequest(
            store_ids=self.stores, include_commands=True, include_updates=True
        )
        while not self.closing.is_set():
            try:
                call = self.fusion.WatchAlerts(request, metadata=_metadata(self._own_token))
                self._watch_call = call
                await call.initial_metadata()
                # Watching before re-reading: whatever happens meanwhile arrives on the stream.
                if self.lanes and not await self._resync():
                    raise ConnectionError("fusion answered no lane's state")
                await self._set_connected(True)
                backoff.reset()
                log.info("console: watching fusion alerts for stores %s", ", ".join(self.stores))
                async for message in call:
                    which = message.WhichOneof("item")
                    if which == "alert":
                        await self._apply_alert(message.alert)
                    elif which == "command":
                        await self._apply_command(message.command)
                    elif which == "gap":
                        log.warning(
                            "console: %d alert messages dropped, re-reading lanes",
                            message.gap.missed,
                        )
                        await self._resync()
            except asyncio.CancelledError:
                raise
            except (grpc.aio.AioRpcError, ConnectionError) as exc:
                if self.closing.is_set():
                    return
                delay = backoff.next_delay()
                if backoff.first_failure:
                    why = _rpc_message(exc) if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
                    log.warning("console: fusion watch failed (%s); retrying", why)
            else:
                delay = backoff.next_delay()
            await self._set_connected(False)
            await asyncio.sleep(delay)

    async def _set_connected(self, connected: bool) -> None:
        """Record whether fusion's watch is up; browsers are told when it changes."""
        if connected != self.fusion_connected:
            self.fusion_connected = connected
            # The value travels in the key: a browser replaying both flips ends up right.
            await self._publish(ALL_STORES, "status", "up" if connected else "down")

    async def _resync(self) -> int:
        """Re-read every lane's open alerts; alerts closed meanwhile leave the queue.

        Returns how many lanes fusion answered for.
        """
        seen: set[str] = set()
        read: set[LaneKey] = set()
        answered = 0
        for lane in self.lanes.values():
            state = await self._read_lane_state(lane)
            if state is None:
                continue
            answered += 1
            if state.HasField("lane"):
                # Only a lane fusion knows speaks for its alerts (a lane it has no state
                # for, e.g. just after a restart, says nothing about them).
                read.add(lane.key)
            for alert in state.open_alerts:
                seen.add(alert.alert_id)
                await self._apply_alert(alert)
        for alert_id, alert in list(self.alerts.items()):
            if (alert.store_id, alert.lane_id) in read and is_open(alert) and alert_id not in seen:
                await self._forget_alert(alert_id)
        return answered

    async def _apply_command(self, command: alerts_pb2.LaneCommand) -> None:
        key = (command.store_id, command.lane_id)
        if key not in self.lanes:
            return
        self.commands.setdefault(key, deque(maxlen=MAX_COMMANDS_PER_LANE)).append(command)
        if command.alert_id:
            await self._publish(command.store_id, "alert", command.alert_id)
        await self._refresh_lane(self.lanes[key])

    # --- lane tiles -------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while not self.closing.is_set():
            started = time.monotonic()
            await asyncio.gather(
                *(self._refresh_lane(lane) for lane in self.lanes.values()),
                return_exceptions=True,
            )
            elapsed = time.monotonic() - started
            await asyncio.sleep(max(0.05, self.settings.poll_interval_s - elapsed))

    async def _read_lane_state(self, lane: LaneView) -> fusion_pb2.LaneState | None:
        try:
            reply = await self.fusion.GetLaneState(
                fusion_pb2.GetLaneStateRequest(
                    lane=common_pb2.LaneRef(store_id=lane.store_id, lane_id=lane.lane_id)
                ),
                timeout=self.settings.rpc_timeout_s,
                metadata=_metadata(self._own_token),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                # Fusion has not heard from the lane yet: an idle lane.
                lane.fusion_ok = True
                self._set_state(lane, fusion_pb2.LaneState())
                return fusion_pb2.LaneState()
            lane.fusion_ok = False
            return None
        lane.fusion_ok = True
        self._set_state(lane, reply.state)
        return reply.state

    def _set_state(self, lane: LaneView, state: fusion_pb2.LaneState) -> None:
        lane.transaction_id = state.transaction_id
        lane.lines = list(state.lines)
        live = [line for line in state.lines if not line.voided]
        lane.items = sum(max(1, line.quantity) for line in live)
        currency = next((line.extended_price.currency_code for line in live), "")
        lane.total = common_pb2.Money(
            amount_minor=sum(line.extended_price.amount_minor for line in live),
            currency_code=currency,
        )
        lane.tendering = state.tendering
        lane.bagging_weight_mg = state.bagging_weight_mg
        lane.expected_bagging_weight_mg = state.expected_bagging_weight_mg
        lane.vision_available = state.vision_available
        lane.paused_by_fusion = state.paused

    async def _read_device(self, lane: LaneView) -> None:
        stub = self.devices.get(lane.device_address)
        if stub is None:
            return
        try:
            status = await stub.GetDeviceStatus(
                device_pb2.GetDeviceStatusRequest(),
                timeout=self.settings.rpc_timeout_s,
                metadata=_metadata(self._own_token),
            )
        except grpc.aio.AioRpcError as exc:
            lane.device_ok, lane.camera_ok = False, None
            lane.device_detail = f"lane agent unreachable ({exc.code().name.lower()})"
            return
        problems = [
            p
            for p in status.peripherals
            if p.state != events_pb2.PERIPHERAL_STATE_CONNECTED
            and p.kind != common_pb2.DEVICE_KIND_CAMERA
        ]
        cameras = [p for p in status.peripherals if p.kind == common_pb2.DEVICE_KIND_CAMERA]
        lane.device_ok = not problems
        lane.device_detail = ", ".join(
            f"{p.device_id}: {p.detail or events_pb2.PeripheralState.Name(p.state).lower()}"
            for p in problems
        )[:200]
        lane.camera_ok = (
            None
            if not cameras
            else all(p.state == events_pb2.PERIPHERAL_STATE_CONNECTED for p in cameras)
        )
        lane.paused_at_lane = status.paused

    async def _refresh_lane(self, lane: LaneView) -> None:
        await asyncio.gather(self._read_lane_state(lane), self._read_device(lane))
        await self._update_tile(lane)

    async def _update_tile(self, lane: LaneView) -> None:
        before = lane.signature()
        alerts = self.lane_alerts(lane.key)
        if lane.paused_by_fusion or lane.paused_at_lane:
            lane.status = "paused"
        elif any(needs_attendant(alert) for alert in alerts):
            lane.status = "attendant"
        elif any(alert.escalation == alerts_pb2.ESCALATION_LANE_PROMPT for alert in alerts):
            lane.status = "prompt"
        elif lane.transaction_id:
            lane.status = "transaction"
        else:
            lane.status = "idle"
        if lane.signature() != before:
            await self._publish(lane.store_id, "lane", f"{lane.store_id}/{lane.lane_id}")

    def lanes_of(self, stores: Iterable[str] | None) -> list[LaneView]:
        allowed = None if stores is None else set(stores)
        return [
            lane
            for key, lane in sorted(self.lanes.items())
            if allowed is None or key[0] in allowed
        ]

    # --- attendant actions (the attendant's own token) --------------------------------

    async def acknowledge(self, alert_id: str, attendant_id: str, token: str) -> alerts_pb2.Alert:
        try:
            reply = await self.fusion.AcknowledgeAlert(
                fusion_pb2.AcknowledgeAlertRequest(alert_id=alert_id, attendant_id=attendant_id),
                timeout=self.settings.rpc_timeout_s,
                metadata=_metadata(token),
            )
        except grpc.aio.AioRpcError as exc:
            raise ActionError(f"fusion did not record it: {_rpc_message(exc)}") from None
        await self._apply_alert(reply.alert)
        return reply.alert

    async def resolve(
        self,
        alert_id: str,
        disposition: int,
        attendant_id: str,
        token: str,
        note: str = "",
        amount_recovered: common_pb2.Money | None = None,
    ) -> alerts_pb2.Alert:
        request = fusion_pb2.ResolveAlertRequest(
            alert_id=alert_id, disposition=disposition, attendant_id=attendant_id, note=note
        )
        if amount_recovered is not None:
            request.amount_recovered.CopyFrom(amount_recovered)
        try:
            reply = await self.fusion.ResolveAlert(
                request, timeout=self.settings.rpc_timeout_s, metadata=_metadata(token)
            )
        except grpc.aio.AioRpcError as exc:
            raise ActionError(f"fusion did not record it: {_rpc_message(exc)}") from None
        await self._apply_alert(reply.alert)
        return reply.alert

    async def recently_resolved(self, stores: list[str], limit: int = 10) -> list[alerts_pb2.Alert]:
        """The stores' latest resolved alerts from reporting (the console's own token, a
        manager's: attendants may not list reports); [] when reporting does not answer."""
        if not stores:
            return []  # an empty filter would mean every store
        try:
            reply = await self.reporting.ListAlerts(
                reporting_pb2.ListAlertsRequest(
                    filter=reporting_pb2.ReportFilter(store_ids=stores),
                    state=alerts_pb2.ALERT_STATE_RESOLVED,
                    page=common_pb2.PageRequest(page_size=limit),
                ),
                timeout=min(2.0, self.settings.rpc_timeout_s),
                metadata=_metadata(self._own_token),
            )
        except grpc.aio.AioRpcError as exc:
            log.debug("console: reporting did not list resolved alerts: %s", _rpc_message(exc))
            return []
        allowed = set(stores)
        return [alert for alert in reply.alerts if alert.store_id in allowed]

    async def evidence(self, alert: alerts_pb2.Alert, token: str) -> Evidence:
        """The alert's face-blurred evidence frames from its lane agent (cached a while)."""
        cached = self._evidence.get(alert.alert_id)
        if cached is not None and (cached.frames or time.monotonic() - cached.read_at < 10.0):
            return cached
        lane = self.lanes.get((alert.store_id, alert.lane_id))
        stub = self.devices.get(lane.device_address) if lane is not None else None
        if stub is None:
            return Evidence(note="The console cannot reach this lane's agent for camera frames.")
        try:
            reply = await stub.GetAlertEvidence(
                device_pb2.GetAlertEvidenceRequest(alert_id=alert.alert_id),
                timeout=self.settings.rpc_timeout_s,
                metadata=_metadata(token),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                found = Evidence(note="No camera frames were kept for this alert (yet).")
            else:
                return Evidence(note=f"Camera frames are unavailable ({exc.code().name.lower()}).")
        else:
            found = Evidence(list(reply.frames), reply.frames_left_out)
        self._evidence[alert.alert_id] = found
        while len(self._evidence) > MAX_EVIDENCE_CACHED:
            self._evidence.popitem(last=False)
        return found

    async def lane_command(
        self,
        key: LaneKey,
        action: str,
        attendant_id: str,
        token: str,
        reason: str = "",
        alert_id: str = "",
    ) -> str:
        """Pause or resume a lane at its lane agent; returns the agent's detail."""
        lane = self.lanes.get(key)
        if lane is None:
            raise ActionError("no such lane", status=404)
        stub = self.devices.get(lane.device_address)
        if stub is None:
            raise ActionError("the console has no lane agent address for this lane", status=409)
        # Tied to the alert it was issued from, the lane agent also keeps evidence for it.
        command = alerts_pb2.LaneCommand(
            command_id=f"console-{uuid.uuid4()}",
            store_id=lane.store_id,
            lane_id=lane.lane_id,
            alert_id=alert_id,
        )
        command.issued_at.GetCurrentTime()
        if action == "pause":
            command.pause.reason = reason or "Paused by an attendant"
        else:
            command.resume.attendant_id = attendant_id
        try:
            reply = await stub.ExecuteLaneCommand(
                device_pb2.ExecuteLaneCommandRequest(command=command),
                timeout=self.settings.rpc_timeout_s,
                metadata=_metadata(token),
            )
        except grpc.aio.AioRpcError as exc:
            raise ActionError(f"the lane did not take it: {_rpc_message(exc)}") from None
        if not reply.done:
            raise ActionError(f"the lane could not do it: {reply.detail or 'no detail'}")
        self.commands.setdefault(key, deque(maxlen=MAX_COMMANDS_PER_LANE)).append(command)
        await self._refresh_lane(lane)
        return reply.detail


def rank(alert: alerts_pb2.Alert) -> tuple[int, int, int]:
    """Sort key of the queue: attendant-level first, then severity, then newest."""
    return (
        int(needs_attendant(alert)),
        int(alert.severity),
        alert.raised_at.seconds * 1000 + alert.raised_at.nanos // 1_000_000,
    )

