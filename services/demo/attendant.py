"""The simulated attendant: watches fusion's alerts and lane commands, resolves alerts."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import grpc
from lanesight.demo.plan import STORE_ID, LanePlan
from lanesight.demo.screen import AlertLine, DemoView
from lanesight.v1 import alerts_pb2, fusion_pb2, fusion_pb2_grpc

log = logging.getLogger(__name__)


@dataclass
class SeenAlert:
    """An alert as the attendant saw it, with when it arrived."""

    alert: alerts_pb2.Alert
    received_s: float
    matched: bool = False


@dataclass
class Attendant:
    """Acknowledges each alert after a moment and resolves it with a disposition."""

    stub: fusion_pb2_grpc.FusionServiceStub
    view: DemoView
    plans: dict[str, LanePlan]
    epoch: float
    ack_after_s: float = 1.0
    resolve_after_s: float = 3.0
    #: False: only watch; a person resolves the alerts (in the attendant console).
    resolves: bool = True
    alerts: dict[str, SeenAlert] = field(default_factory=dict)
    commands: int = 0
    gaps: int = 0
    _tasks: set[asyncio.Task] = field(default_factory=set)

    async def watch(self) -> None:
        """Follow the store's alerts and commands until cancelled (reconnects if cut)."""
        request = fusion_pb2.WatchAlertsRequest(
            store_ids=[STORE_ID], include_commands=True, include_updates=True
        )
        while True:
            try:
                async for message in self.stub.WatchAlerts(request):
                    self._on_message(message)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.CANCELLED:
                    return
                log.info("alert watch ended (%s); reconnecting", exc.code().name)
                await asyncio.sleep(0.5)

    def _on_message(self, message: fusion_pb2.WatchAlertsResponse) -> None:
        kind = message.WhichOneof("item")
        if kind == "gap":
            self.gaps += message.gap.missed
        elif kind == "command":
            self.commands += 1
            self._on_command(message.command)
        elif kind == "alert":
            self._on_alert(message.alert)

    def _on_command(self, command: alerts_pb2.LaneCommand) -> None:
        lane = self.view.lanes.get(command.lane_id)
        if lane is None:
            return
        action = command.WhichOneof("action")
        if action == "prompt":
            lane.prompt = command.prompt.message
        elif action == "pause":
            lane.status = "paused"
        elif action == "resume":
            lane.status = "scanning"

    def _on_alert(self, alert: alerts_pb2.Alert) -> None:
        now = time.time() - self.epoch
        seen = self.alerts.get(alert.alert_id)
        if seen is None:
            self.alerts[alert.alert_id] = SeenAlert(alert, now)
            self.view.add_alert(
                alert.alert_id,
                AlertLine(
                    at=now,
                    lane_id=alert.lane_id,
                    kind=_short(alerts_pb2.AlertType.Name(alert.type)),
                    severity=_short(alerts_pb2.Severity.Name(alert.severity)),
                    reason=alert.reason,
                    amount_minor=alert.amount_at_risk.amount_minor,
                    currency=alert.amount_at_risk.currency_code or "USD",
                ),
            )
            if alert.state == alerts_pb2.ALERT_STATE_OPEN and self.resolves:
                self._spawn(self._handle(alert))
            return
        if alert.revision >= seen.alert.revision:
            seen.alert = alert
        line = self.view.alerts_by_id.get(alert.alert_id)
        if line is not None:
            line.state = _short(alerts_pb2.AlertState.Name(alert.state))
            if alert.disposition:
                line.disposition = _short(alerts_pb2.Disposition.Name(alert.disposition))

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, alert: alerts_pb2.Alert) -> None:
        """Walk over, look, and resolve: recovered when there was a loss, else false alert."""
        try:
            await asyncio.sleep(self.ack_after_s)
            await self.stub.AcknowledgeAlert(
                fusion_pb2.AcknowledgeAlertRequest(alert_id=alert.alert_id, attendant_id="att-1"),
                timeout=5,
            )
            await asyncio.sleep(self.resolve_after_s - self.ack_after_s)
            real = self.is_staged(alert)
            request = fusion_pb2.ResolveAlertRequest(
                alert_id=alert.alert_id,
                attendant_id="att-1",
                disposition=(
                    alerts_pb2.DISPOSITION_RECOVERED if real else alerts_pb2.DISPOSITION_FALSE_ALERT
                ),
                note="simulated attendant",
            )
            if real:
                request.amount_recovered.CopyFrom(alert.amount_at_risk)
            await self.stub.ResolveAlert(request, timeout=5)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:  # resolved already
                log.info("could not resolve %s: %s", alert.alert_id, exc.details())

    def is_staged(self, alert: alerts_pb2.Alert) -> bool:
        """True when the alert describes a loss the demo staged on that lane."""
        plan = self.plans.get(alert.lane_id)
        if plan is None:
            return False
        types = {alert.type, *alert.merged_types}
        raised_s = time.time() - self.epoch
        for scenario, loss, at_s in plan.staged():
            same_txn = alert.transaction_id and alert.transaction_id == scenario.transaction_id
            near = abs(raised_s - at_s) < 20.0
            if (same_txn or near) and types & {t.value for t in loss.acceptable}:
                return True
        return False

    async def close(self) -> None:
        """Cancel pending acknowledgements and resolutions."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _short(enum_name: str) -> str:
    for prefix in ("ALERT_TYPE_", "SEVERITY_", "ALERT_STATE_", "DISPOSITION_"):
        if enum_name.startswith(prefix):
            return enum_name[len(prefix) :].lower()
    return enum_name.lower()
