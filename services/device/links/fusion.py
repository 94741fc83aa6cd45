"""The link to fusion: the outbox sent in order over Ingest, and lane commands from WatchAlerts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from lanesight.common.channels import Backoff
from lanesight.common.sharding import SHARD_METADATA_KEY
from lanesight.device.drivers.base import HealthTracker
from lanesight.device.links.streams import run_until_either_ends
from lanesight.device.outbox import Outbox
from lanesight.device.readings import HealthState
from lanesight.v1 import alerts_pb2, fusion_pb2

log = logging.getLogger(__name__)

INGEST_METHOD = "/lanesight.v1.FusionService/Ingest"
WATCH_METHOD = "/lanesight.v1.FusionService/WatchAlerts"
ACK_COMMAND_METHOD = "/lanesight.v1.FusionService/AcknowledgeLaneCommand"
ACK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class _Outcome:
    """What came of a command the executor could not report on itself."""

    done: bool
    detail: str


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_ingest_request(payloads: list[bytes]) -> bytes:
    """An IngestRequest on the wire, from already serialized LaneEvents.

    Field 1 (``events``, length-delimited) repeated; the outbox keeps events
    serialized, so they are not parsed and serialized again on every send.
    """
    return b"".join(b"\x0a" + _varint(len(payload)) + payload for payload in payloads)


async def ended_status(call, exc: BaseException) -> str:
    """The status a finished call ended with, else a description of exc."""
    if call.done():
        try:
            return f"{(await call.code()).name}: {await call.details()}"
        except Exception:  # the status itself is unreadable: fall back to the exception
            pass
    return _rpc_detail(exc)


async def shard_owner(call) -> int | None:
    """The replica a finished Ingest call's refusal names (fusion refuses another shard's
    lane with FAILED_PRECONDITION and the owner in trailing metadata); None otherwise."""
    if not call.done():
        return None
    try:
        if await call.code() != grpc.StatusCode.FAILED_PRECONDITION:
            return None
        metadata = await call.trailing_metadata()
    except Exception:  # a cancelled or broken call has no status to read
        return None
    value = dict(metadata or ()).get(SHARD_METADATA_KEY, "")
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _rpc_detail(exc: BaseException) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"


class FusionLink:
    """Sends the outbox to FusionService.Ingest and deletes what fusion acknowledges.

    After any reconnect it resends from the last acknowledged sequence; fusion
    ignores what it has already processed, so every event arrives exactly once after
    de-duplication, in order.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        outbox: Outbox,
        health: HealthTracker,
        batch_max_events: int = 200,
        max_in_flight: int = 2000,
        backoff: Backoff | None = None,
        connect_timeout_s: float = 5.0,
        on_wrong_shard: Callable[[int], None] | None = None,
    ) -> None:
        self.use_channel(channel)
        #: Called with the replica fusion names when it refuses this lane as another
        #: shard's (after a re-shard); the agent then points the links at that replica.
        self.on_wrong_shard = on_wrong_shard
        self.outbox = outbox
        self.health = health
        self.batch_max_events = batch_max_events
        self.max_in_flight = max_in_flight
        self._backoff = backoff or Backoff()
        self._connect_timeout_s = connect_timeout_s
        self._wake = asyncio.Event()
        self._sent = outbox.acked_sequence
        self.batches_sent = 0
        self.rejections = 0
        self.connected = False
        outbox.commit_listeners.append(self._wake.set)

    def use_channel(self, channel: grpc.aio.Channel) -> None:
        """Send over this channel from the next connection on."""
        self._ingest = channel.stream_stream(
            INGEST_METHOD,
            request_serializer=lambda raw: raw,
            response_deserializer=fusion_pb2.IngestResponse.FromString,
        )

    async def run(self) -> None:
        """Keep a stream open and send; reconnect with backoff until cancelled."""
        while True:
            try:
                await self._session()
            except Exception as exc:  # any stream error: back off and reconnect, never die
                self.connected = False
                delay = self._backoff.next_delay()
                if self._backoff.first_failure:
                    log.warning(
                        "fusion link down (%s); events stay in the outbox, retrying with backoff",
                        _rpc_detail(exc),
                    )
                else:
                    log.debug("fusion link still down: %s", _rpc_detail(exc))
                await self.health.set(HealthState.DISCONNECTED, _rpc_detail(exc))
                await asyncio.sleep(delay)

    async def _session(self) -> None:
        call = self._ingest()
        try:
            await asyncio.wait_for(call.wait_for_connection(), self._connect_timeout_s)
            # Resend everything fusion has not acknowledged.
            self._sent = self.outbox.acked_sequence
            await run_until_either_ends(self._send_loop(call), self._receive_loop(call), "ingest")
        except (grpc.aio.AioRpcError, ConnectionError, TimeoutError):
            raise
        except Exception as exc:
            # e.g. InvalidStateError from a write after fusion ended the RPC: report why.
            raise ConnectionError(await ended_status(call, exc)) from exc
        finally:
            owner = await shard_owner(call)
            if owner is not None and self.on_wrong_shard is not None:
                self.on_wrong_shard(owner)
            call.cancel()

    async def _mark_connected(self) -> None:
        if not self.connected:
            self.connected = True
            if self._backoff.failures:
                log.info("fusion link up again; resending from sequence %d", self._sent + 1)
            self._backoff.reset()
            await self.health.set(HealthState.CONNECTED)

    async def _send_loop(self, call) -> None:
        outbox = self.outbox
        while True:
            in_flight = self._sent - outbox.acked_sequence
            room = min(self.batch_max_events, self.max_in_flight - in_flight)
            if room > 0 and outbox.committed_sequence > self._sent:
                rows = await outbox.read_after(self._sent, room)
                if rows:
                    await call.write(encode_ingest_request([row.payload for row in rows]))
                    self._sent = rows[-1].sequence
                    self.batches_sent += 1
                    continue
                # Rows between were dropped or acknowledged meanwhile.
                self._sent = max(self._sent, outbox.committed_sequence)
                continue
            self._wake.clear()
            in_flight = self._sent - outbox.acked_sequence
            if outbox.committed_sequence > self._sent and in_flight < self.max_in_flight:
                continue
            if in_flight == 0:
                # Connected with nothing awaiting an answer; otherwise only fusion's first
                # answer says the stream is up (it may refuse the lane, e.g. wrong shard).
                await self._mark_connected()
            await self._wake.wait()

    async def _receive_loop(self, call) -> None:
        while True:
            response = await call.read()
            if response is grpc.aio.EOF:
                raise ConnectionError("fusion closed the ingest stream")
            await self._mark_connected()
            if response.missing_events:
                log.warning(
                    "fusion saw %d sequence numbers missing before this batch "
                    "(dropped from a full outbox?)",
                    response.missing_events,
                )
            for rejection in response.rejections:
                self.rejections += 1
                log.warning(
                    "fusion rejected event %d (%s): %s %s",
                    rejection.sequence,
                    rejection.event_id,
                    rejection.field,
                    rejection.message,
                )
            if response.acked_sequence > self.outbox.acked_sequence:
                await self.outbox.ack(response.acked_sequence)
                self._wake.set()


class CommandWatcher:
    """Watches FusionService.WatchAlerts for this lane's commands and carries them out."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        store_id: str,
        lane_id: str,
        execute: Callable[[alerts_pb2.LaneCommand], Awaitable[object]],
        health: HealthTracker,
        backoff: Backoff | None = None,
    ) -> None:
        self._call: grpc.aio.UnaryStreamCall | None = None
        self._switching = False
        self.use_channel(channel)
        self.store_id = store_id
        self.commands_acknowledged = 0
        self._ack_failures = 0
        self._acks: set[asyncio.Task] = set()
        self.request = fusion_pb2.WatchAlertsRequest(
            store_ids=[store_id], lane_ids=[lane_id], include_commands=True
        )
        self.lane_id = lane_id
        self._execute = execute
        self.health = health
        self._backoff = backoff or Backoff()
        self.commands_received = 0

    def use_channel(self, channel: grpc.aio.Channel) -> None:
        """Watch over this channel: the current watch (on a replica that no longer owns
        the lane) is ended and the next one opened on the new channel."""
        self._watch = channel.unary_stream(
            WATCH_METHOD,
            request_serializer=fusion_pb2.WatchAlertsRequest.SerializeToString,
            response_deserializer=fusion_pb2.WatchAlertsResponse.FromString,
        )
        self._ack = channel.unary_unary(
            ACK_COMMAND_METHOD,
            request_serializer=fusion_pb2.AcknowledgeLaneCommandRequest.SerializeToString,
            response_deserializer=fusion_pb2.AcknowledgeLaneCommandResponse.FromString,
        )
        if self._call is not None and not self._call.done():
            self._switching = True
            self._call.cancel()

    def _spawn_ack(self, command: alerts_pb2.LaneCommand, result: object) -> None:
        """Tell fusion what came of a command, without holding up the watch."""
        task = asyncio.create_task(self._acknowledge(command, result))
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _acknowledge(self, command: alerts_pb2.LaneCommand, result: object) -> None:
        request = fusion_pb2.AcknowledgeLaneCommandRequest(
            command_id=command.command_id,
            store_id=command.store_id or self.store_id,
            lane_id=self.lane_id,
            done=bool(getattr(result, "done", False)),
            detail=str(getattr(result, "detail", "")),
        )
        try:
            await self._ack(request, timeout=ACK_TIMEOUT_S, wait_for_ready=True)
            self.commands_acknowledged += 1
        except grpc.aio.AioRpcError as exc:
            self._ack_failures += 1
            if self._ack_failures == 1:
                log.warning("cannot acknowledge lane commands to fusion: %s", _rpc_detail(exc))

    async def run(self) -> None:
        """Watch until cancelled, reconnecting with backoff."""
        try:
            await self._run()
        finally:
            for task in list(self._acks):
                task.cancel()
            await asyncio.gather(*self._acks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._switching = False
            call = self._call = self._watch(self.request)
            try:
                await call.wait_for_connection()
                self._backoff.reset()
                await self.health.set(HealthState.CONNECTED)
                while True:
                    response = await call.read()
                    if response is grpc.aio.EOF:
                        raise ConnectionError("fusion ended the watch")
                    if response.HasField("command") and response.command.lane_id in (
                        "",
                        self.lane_id,
                    ):
                        self.commands_received += 1
                        try:
                            result = await self._execute(response.command)
                        except Exception as exc:
                            log.exception("lane command %s failed", response.command.command_id)
                            result = _Outcome(False, f"agent error: {type(exc).__name__}")
                        self._spawn_ack(response.command, result)
                    elif response.HasField("gap"):
                        log.warning("missed %d alert/command messages", response.gap.missed)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not self._switching or (task is not None and task.cancelling()):
                    raise
                self._switching = False  # use_channel ended this watch: open the new one
            except Exception as exc:  # any stream error: back off and reconnect, never die
                delay = self._backoff.next_delay()
                if self._backoff.first_failure:
                    log.warning("lane command watch down (%s); retrying", _rpc_detail(exc))
                await self.health.set(HealthState.DISCONNECTED, _rpc_detail(exc))
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    call.cancel()
