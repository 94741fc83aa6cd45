"""`lanesight replay`: feed recorded lane events through FusionService and print its alerts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf import json_format
from lanesight.common.channels import open_channel
from lanesight.common.config import LanesightConfig
from lanesight.fusion import events as ev
from lanesight.fusion.convert import event_to_pb
from lanesight.v1 import alerts_pb2, events_pb2, fusion_pb2, fusion_pb2_grpc


@dataclass
class ReplaySummary:
    """What a replay sent and what came back."""

    events: int = 0
    lanes: int = 0
    acked: dict[str, int] = field(default_factory=dict)
    rejections: list[str] = field(default_factory=list)
    duplicates: int = 0
    alerts: list[alerts_pb2.Alert] = field(default_factory=list)
    commands: int = 0


def read_jsonl(path: str | Path) -> list[events_pb2.LaneEvent]:
    """One LaneEvent per line, in protobuf's JSON mapping; raises ValueError with the line."""
    out = []
    with Path(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                out.append(json_format.Parse(line, events_pb2.LaneEvent()))
            except json_format.ParseError as exc:
                raise ValueError(f"{path}:{number}: not a LaneEvent: {exc}") from None
    return out


def write_jsonl(events: Iterable[ev.LaneEvent], path: str | Path) -> int:
    """Write domain events as JSONL that `replay` reads; returns the count."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as handle:
        for event in events:
            data = json_format.MessageToDict(event_to_pb(event), preserving_proto_field_name=False)
            handle.write(json.dumps(data, separators=(",", ":")) + "\n")
            count += 1
    return count


def batches(events: list[events_pb2.LaneEvent], size: int) -> list[list[events_pb2.LaneEvent]]:
    """Split one lane's events into batches in sequence order; a resent (lower or equal)
    sequence starts a new batch, as a lane agent's resend after a reconnect would."""
    out: list[list[events_pb2.LaneEvent]] = []
    current: list[events_pb2.LaneEvent] = []
    for event in events:
        if current and (len(current) >= size or event.sequence <= current[-1].sequence):
            out.append(current)
            current = []
        current.append(event)
    if current:
        out.append(current)
    return out


def describe(alert: alerts_pb2.Alert) -> str:
    """One line for an alert."""
    kind = alerts_pb2.AlertType.Name(alert.type).removeprefix("ALERT_TYPE_").lower()
    amount = alert.amount_at_risk.amount_minor / 100
    vision = "" if alert.vision_available else " [no vision]"
    return (
        f"{alert.store_id}/{alert.lane_id} {alert.transaction_id or '-'} {kind}"
        f" conf={alert.confidence:.2f} at-risk={amount:.2f} {alert.amount_at_risk.currency_code}"
        f" merged={alert.merged_signals}{vision}: {alert.reason}"
    )


async def _ingest_lane(
    stub: fusion_pb2_grpc.FusionServiceStub,
    lane_events: list[events_pb2.LaneEvent],
    batch_size: int,
    summary: ReplaySummary,
) -> None:
    call = stub.Ingest()
    key = f"{lane_events[0].store_id}/{lane_events[0].lane_id}"
    for batch in batches(lane_events, batch_size):
        await call.write(fusion_pb2.IngestRequest(events=batch))
        response = await call.read()
        summary.acked[key] = response.acked_sequence
        summary.duplicates += response.duplicates
        for rej in response.rejections:
            summary.rejections.append(f"{key} #{rej.sequence} {rej.field}: {rej.message}")
    await call.done_writing()
    while await call.read() is not grpc.aio.EOF:
        pass


async def replay(
    path: str | Path,
    address: str,
    config: LanesightConfig,
    batch_size: int = 100,
    idle_s: float = 1.0,
    settle_s: float = 6.0,
    out: Callable[[str], None] = print,
) -> ReplaySummary:
    """Send every lane's events on its own Ingest stream; print alerts from a watch stream.

    After the last acknowledgement it waits until no alert arrived for ``idle_s`` (at most
    ``settle_s``), since windows still open close on fusion's lane clock.
    """
    events = read_jsonl(path)
    by_lane: dict[tuple[str, str], list[events_pb2.LaneEvent]] = {}
    for event in events:
        by_lane.setdefault((event.store_id, event.lane_id), []).append(event)
    summary = ReplaySummary(events=len(events), lanes=len(by_lane))
    channel = open_channel(address, config)
    try:
        stub = fusion_pb2_grpc.FusionServiceStub(channel)
        watch = stub.WatchAlerts(
            fusion_pb2.WatchAlertsRequest(
                store_ids=sorted({key[0] for key in by_lane}),
                lane_ids=sorted({key[1] for key in by_lane}),
                include_commands=True,
            )
        )
        await asyncio.wait_for(watch.initial_metadata(), timeout=10)
        activity = asyncio.Event()

        async def follow() -> None:
            async for message in watch:
                activity.set()
                if message.HasField("alert"):
                    summary.alerts.append(message.alert)
                    out(describe(message.alert))
                elif message.HasField("command"):
                    summary.commands += 1
                elif message.HasField("gap"):
                    out(f"(missed {message.gap.missed} messages)")

        follower = asyncio.create_task(follow())
        try:
            await asyncio.gather(
                *(_ingest_lane(stub, lane, batch_size, summary) for lane in by_lane.values())
            )
            deadline = time.monotonic() + settle_s
            while (remaining := deadline - time.monotonic()) > 0:
                activity.clear()
                try:
                    await asyncio.wait_for(activity.wait(), timeout=min(idle_s, remaining))
                except TimeoutError:
                    break  # quiet for idle_s: the windows have closed
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await follower
    finally:
        await channel.close()
    return summary
