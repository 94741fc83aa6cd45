"""The lane agent's OpenTelemetry instruments (names, units, attributes: docs/telemetry.md).

Everything is read from what the agent already keeps (its outbox, health trackers, camera
counters, command executor) or from the events it records, so the agent's code paths
carry no metric calls. watch(agent) at start, unwatch(agent) at stop.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from lanesight.common.telemetry import duration_histogram, service_meter
from lanesight.device.readings import DeviceKindName, HealthState
from lanesight.v1 import common_pb2, events_pb2
from opentelemetry.metrics import CallbackOptions, Observation

if TYPE_CHECKING:
    from lanesight.device.agent import LaneAgent

_meter = service_meter("device")
_agents: weakref.WeakSet[LaneAgent] = weakref.WeakSet()

_FIELD_NUMBERS = {f.name: f.number for f in events_pb2.LaneEvent.DESCRIPTOR.fields}
_LINK_PEERS = {
    common_pb2.DEVICE_KIND_FUSION_LINK: "fusion",
    common_pb2.DEVICE_KIND_VISION_LINK: "vision",
}
_KIND_NAMES = {
    value.number: value.name.removeprefix("DEVICE_KIND_").lower()
    for value in common_pb2.DeviceKind.DESCRIPTOR.values
}


def event_source(payload: str | None) -> str:
    """lanesight.event.source of a LaneEvent payload, by its field number's range."""
    number = _FIELD_NUMBERS.get(payload or "", 0)
    if 10 <= number < 40:
        return "pos"
    if 40 <= number < 50:
        return "scanner"
    if 50 <= number < 60:
        return "scale"
    if 60 <= number < 70:
        return "vision"
    if number == 72:
        return "drawer"
    if 70 <= number < 80:
        return "printer"
    return "device"


events_recorded = _meter.create_counter(
    "lanesight.device.events.recorded",
    unit="{event}",
    description="Events committed to the lane outbox.",
)
event_latency = duration_histogram(
    _meter,
    "lanesight.device.event.latency",
    "An event's lane time (when the agent stamped it) to its commit in the outbox.",
)
peripheral_errors = _meter.create_counter(
    "lanesight.device.peripheral.errors",
    unit="{error}",
    description="Peripheral parse errors (parse) and losses of connection (io).",
)
link_reconnects = _meter.create_counter(
    "lanesight.device.link.reconnects",
    unit="{reconnect}",
    description="Links to fusion or vision lost; the agent reconnects with backoff.",
)


def _lane(agent: LaneAgent) -> dict[str, str]:
    return {"lanesight.store.id": agent.store_id, "lanesight.lane.id": agent.lane_id}


def _on_event(agent: LaneAgent, event: events_pb2.LaneEvent) -> None:
    payload = event.WhichOneof("payload")
    source = event_source(payload)
    lane = _lane(agent)
    events_recorded.add(1, {**lane, "lanesight.event.source": source})
    event_latency.record(
        max(0.0, time.time() - event.lane_time.ToNanoseconds() / 1e9),
        {**lane, "lanesight.event.source": source},
    )
    if payload == "peripheral_parse_error":
        kind = _KIND_NAMES.get(event.peripheral_parse_error.kind, "unspecified")
        peripheral_errors.add(1, {**lane, "lanesight.peripheral.kind": kind, "error.type": "parse"})
    elif payload == "peripheral_health_changed":
        change = event.peripheral_health_changed
        if change.state != events_pb2.PERIPHERAL_STATE_DISCONNECTED:
            return
        peer = _LINK_PEERS.get(change.kind)
        if peer is not None:
            link_reconnects.add(1, {**lane, "lanesight.peer": peer})
        else:
            kind = _KIND_NAMES.get(change.kind, "unspecified")
            peripheral_errors.add(
                1, {**lane, "lanesight.peripheral.kind": kind, "error.type": "io"}
            )


def watch(agent: LaneAgent) -> None:
    """Report this agent's metrics (its recorder must exist)."""
    _agents.add(agent)
    agent.recorder.listeners.append(lambda event: _on_event(agent, event))


def unwatch(agent: LaneAgent) -> None:
    """Stop reporting this agent's gauges."""
    _agents.discard(agent)


def _outbox_pending(options: CallbackOptions) -> Iterable[Observation]:
    for agent in list(_agents):
        yield Observation(agent.outbox.pending, _lane(agent))


def _outbox_oldest_age(options: CallbackOptions) -> Iterable[Observation]:
    now_ns = time.time_ns()
    for agent in list(_agents):
        oldest = agent.outbox.oldest_pending_ns
        age_s = 0.0 if oldest is None or not agent.outbox.pending else (now_ns - oldest) / 1e9
        yield Observation(max(0.0, age_s), _lane(agent))


def _outbox_dropped(options: CallbackOptions) -> Iterable[Observation]:
    for agent in list(_agents):
        yield Observation(agent.outbox.dropped, _lane(agent))


def _connected(options: CallbackOptions) -> Iterable[Observation]:
    for agent in list(_agents):
        lane = _lane(agent)
        for tracker in list(agent.trackers):
            if tracker.kind in (DeviceKindName.FUSION_LINK, DeviceKindName.VISION_LINK):
                kind_attributes = {"lanesight.peer": tracker.kind.value.removesuffix("_link")}
            else:
                kind_attributes = {"lanesight.peripheral.kind": tracker.kind.value}
            yield Observation(
                1 if tracker.state is HealthState.CONNECTED else 0,
                {**lane, "lanesight.peripheral.id": tracker.device_id, **kind_attributes},
            )


def _camera_frames(options: CallbackOptions) -> Iterable[Observation]:
    for agent in list(_agents):
        lane = _lane(agent)
        for camera_id, pipeline in list(agent.cameras.items()):
            counters = pipeline.counters
            for outcome in ("captured", "sent", "skipped_no_motion", "dropped"):
                yield Observation(
                    getattr(counters, outcome),
                    {**lane, "lanesight.camera.id": camera_id, "lanesight.frame.outcome": outcome},
                )


def _commands(options: CallbackOptions) -> Iterable[Observation]:
    for agent in list(_agents):
        if agent.commands is not None:
            yield Observation(agent.commands.executed, _lane(agent))


_meter.create_observable_gauge(
    "lanesight.device.outbox.pending",
    callbacks=[_outbox_pending],
    unit="{event}",
    description="Events written and not yet acknowledged by fusion.",
)
_meter.create_observable_gauge(
    "lanesight.device.outbox.oldest_age",
    callbacks=[_outbox_oldest_age],
    unit="s",
    description="Age of the oldest event not yet acknowledged by fusion (0 when none).",
)
_meter.create_observable_counter(
    "lanesight.device.outbox.dropped",
    callbacks=[_outbox_dropped],
    unit="{event}",
    description="Events dropped at the outbox bounds since the agent started (should stay 0).",
)
_meter.create_observable_gauge(
    "lanesight.device.peripheral.connected",
    callbacks=[_connected],
    unit="1",
    description="1 while a peripheral or link is connected, else 0.",
)
_meter.create_observable_counter(
    "lanesight.device.camera.frames",
    callbacks=[_camera_frames],
    unit="{frame}",
    description="Camera frames by what happened to them.",
)
_meter.create_observable_counter(
    "lanesight.device.commands.executed",
    callbacks=[_commands],
    unit="{command}",
    description="Lane commands carried out since the agent started.",
)
