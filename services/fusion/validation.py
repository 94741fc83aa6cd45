"""Fusion ingest checks: stream-level errors, and per-event problems from the shared validator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lanesight.common.validation import DEFAULT as _VALIDATOR
from lanesight.common.validation import MAX_SEQUENCE
from lanesight.fusion import events as ev
from lanesight.fusion.convert import PAYLOAD_NAME

_MAX_ID = _VALIDATOR.bounds.max_id_length
#: The protobuf field name of each payload type, for field paths (derived from the schema).
PAYLOAD_FIELD: dict[type, str] = PAYLOAD_NAME


@dataclass(slots=True, frozen=True)
class Rejection:
    """An event recorded as a data-quality problem instead of applied."""

    event_id: str
    sequence: int
    field: str
    message: str


class StreamError(ValueError):
    """A problem with a whole ingest stream: it is answered INVALID_ARGUMENT."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


def check_batch(events: Sequence[ev.LaneEvent], lane_key: tuple[str, str] | None) -> None:
    """Raise StreamError for events no lane can own or a batch out of order."""
    previous = 0
    pinned = lane_key is not None
    store, lane = lane_key if lane_key is not None else ("", "")
    for i, event in enumerate(events):
        store_id = event.store_id
        lane_id = event.lane_id
        if not store_id:
            raise StreamError(f"events[{i}].store_id", "is required")
        if not lane_id:
            raise StreamError(f"events[{i}].lane_id", "is required")
        if len(store_id) > _MAX_ID or len(lane_id) > _MAX_ID:
            # The lane key would be kept as long as the lane lives: refuse the stream.
            field = "store_id" if len(store_id) > _MAX_ID else "lane_id"
            raise StreamError(f"events[{i}].{field}", f"must be at most {_MAX_ID} characters")
        if not pinned:
            pinned = True
            store, lane = store_id, lane_id
        elif store_id != store or lane_id != lane:
            raise StreamError(
                f"events[{i}].lane_id",
                f"{store_id}/{lane_id} differs from {store}/{lane}"
                " earlier in this stream; open one Ingest stream per lane",
            )
        sequence = event.sequence
        if sequence < 1:
            raise StreamError(f"events[{i}].sequence", "must be 1 or more")
        if sequence > MAX_SEQUENCE:
            # Refused for the whole stream: a lane at 2^63 would take every later event
            # for a duplicate, and no store downstream can keep the number.
            raise StreamError(f"events[{i}].sequence", "must be below 2^63")
        if sequence < previous:
            raise StreamError(
                f"events[{i}].sequence",
                f"{sequence} follows {previous}; a batch must be in sequence order",
            )
        previous = sequence


def validate_event(event: ev.LaneEvent) -> tuple[str, str] | None:
    """The first (field, problem) of an event that cannot be applied, or None.

    The shared validator (lanesight.common.validation) decides: events decoded from
    protobuf were checked then (against the wall clock); an event built in process gets
    the same checks now, on its dataclasses, without the lane-time window (simulations
    run in the past).
    """
    problem = event.problem
    if problem is ev.UNCHECKED:
        payload = event.payload
        kind = None if payload is None else PAYLOAD_NAME[type(payload)]
        problems = _VALIDATOR.validate_plain(event, kind)
        problem = (problems[0].field, problems[0].message) if problems else None
        event.problem = problem
    return problem
