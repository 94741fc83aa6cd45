"""Lane commands from fusion or an attendant: carried out once each, shown to lane displays."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from lanesight.device.broadcast import Broadcast
from lanesight.device.drivers.base import CommandNotSupported, DeviceUnavailable
from lanesight.device.drivers.printer import PrinterDriver
from lanesight.device.outbox import Outbox
from lanesight.v1 import alerts_pb2

log = logging.getLogger(__name__)

_SUBSCRIBER_QUEUE = 100


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What came of a command."""

    done: bool
    detail: str = ""


class LaneCommandExecutor:
    """Carries out LaneCommands and fans them out to WatchLaneCommands subscribers.

    A command id is carried out at most once (remembered in the outbox database,
    so also across restarts); a failed command is not remembered and may be retried.
    """

    def __init__(
        self,
        outbox: Outbox,
        lane_id: str,
        printer: PrinterDriver | None = None,
        on_alert: Callable[[str, int | None], object] | None = None,
    ) -> None:
        self.outbox = outbox
        self.lane_id = lane_id
        self.printer = printer
        #: Told (alert id, issued-at ns) of every valid command tied to an alert (evidence).
        self.on_alert = on_alert
        self.paused = False
        self.pause_reason = ""
        self.executed = 0
        self._in_progress: set[str] = set()
        self._displays: Broadcast[alerts_pb2.LaneCommand] = Broadcast(_SUBSCRIBER_QUEUE)

    async def execute(self, command: alerts_pb2.LaneCommand) -> CommandResult:
        """Carry out a command now; a repeat of a done command id answers done."""
        action = command.WhichOneof("action")
        if not command.command_id:
            return CommandResult(False, "command_id is required")
        if command.lane_id and command.lane_id != self.lane_id:
            return CommandResult(False, f"command is for lane {command.lane_id}")
        if action is None:
            return CommandResult(False, "command has no action")
        if command.alert_id and self.on_alert is not None:
            self._note_alert(command)
        if command.command_id in self._in_progress:
            return CommandResult(True, "already being carried out")
        if not await self._is_new(command.command_id):
            return CommandResult(True, "already carried out")
        self._in_progress.add(command.command_id)
        try:
            result = await self._carry_out(action, command)
            if result.done:
                await self.outbox.mark_command(command.command_id)
                self.executed += 1
                self._publish(command)
            log.info(
                "lane command %s (%s): %s %s",
                command.command_id,
                action,
                "done" if result.done else "not done",
                result.detail,
            )
            return result
        finally:
            self._in_progress.discard(command.command_id)

    def _note_alert(self, command: alerts_pb2.LaneCommand) -> None:
        if self.on_alert is None:
            return
        issued_ns = command.issued_at.ToNanoseconds() if command.HasField("issued_at") else None
        try:
            self.on_alert(command.alert_id, issued_ns)
        except Exception:  # evidence must never stop a lane command
            log.exception("alert hook failed for command %s", command.command_id)

    async def _is_new(self, command_id: str) -> bool:
        return not await self.outbox.command_executed(command_id)

    async def _carry_out(self, action: str, command: alerts_pb2.LaneCommand) -> CommandResult:
        subscribers = len(self._displays)
        if action == "prompt":
            return CommandResult(True, f"shown to {subscribers} lane display(s)")
        if action == "pause":
            self.paused, self.pause_reason = True, command.pause.reason
            return CommandResult(True, "lane paused")
        if action == "resume":
            self.paused, self.pause_reason = False, ""
            return CommandResult(True, "lane resumed")
        if self.printer is None:
            return CommandResult(False, "no printer configured on this lane")
        try:
            if action == "print_audit_slip":
                lines = list(command.print_audit_slip.lines)
                if command.alert_id:
                    lines.append(f"alert {command.alert_id}")
                await self.printer.print_document(lines, "audit_slip", title="AUDIT SLIP")
                return CommandResult(True, "audit slip printed")
            if action == "kick_drawer":
                await self.printer.kick_drawer(command.kick_drawer.pin or 2)
                return CommandResult(True, "drawer kicked")
        except (DeviceUnavailable, CommandNotSupported, ValueError, OSError) as exc:
            return CommandResult(False, str(exc))
        return CommandResult(False, f"unknown action {action}")

    def _publish(self, command: alerts_pb2.LaneCommand) -> None:
        self._displays.publish(command)  # a display that stopped reading loses its oldest

    def subscribe(self) -> AsyncIterator[alerts_pb2.LaneCommand]:
        """Commands carried out from now on, until close_subscribers()."""
        return self._displays.subscribe()

    @property
    def subscriber_count(self) -> int:
        """How many lane displays are watching."""
        return len(self._displays)

    @property
    def subscriber_drops(self) -> int:
        """Commands dropped for displays that stopped reading."""
        return self._displays.drops

    def close_subscribers(self) -> None:
        """End every subscription (shutdown)."""
        self._displays.close()
