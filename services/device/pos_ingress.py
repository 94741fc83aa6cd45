"""POS ingress: submitted LaneEvents must be POS payloads that pass the shared validator."""

from __future__ import annotations

from lanesight.common import schema
from lanesight.common.validation import Problem, validate_lane_event
from lanesight.v1 import events_pb2


class InvalidPosEvent(ValueError):
    """Submitted events are not valid; ``problems`` name each bad field ("events[i]. ...")."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems
        self.field = problems[0].field
        self.message = problems[0].message


def pos_event_problems(event: events_pb2.LaneEvent) -> list[Problem]:
    """What is wrong with one submitted event, with the field paths fusion would report."""
    kind = event.WhichOneof("payload")
    if kind is not None and kind not in schema.POS_PAYLOADS:
        return [Problem(kind, "is not a POS payload; POS ingress takes transaction events only")]
    # The agent stamps store, lane, sequence and lane time after this check.
    return validate_lane_event(event, stamped=False)


def validate_pos_event(event: events_pb2.LaneEvent, index: int) -> None:
    """Raise InvalidPosEvent naming every bad field of events[index]; else normalise the
    event in place (GTINs to 14 digits) as fusion and reporting will read it."""
    problems = pos_event_problems(event)
    if problems:
        raise InvalidPosEvent([Problem(f"events[{index}].{p.field}", p.message) for p in problems])
    kind = event.WhichOneof("payload")
    for payload_name, field in schema.GTIN_FIELDS:
        if payload_name == kind:
            payload = getattr(event, kind)
            setattr(payload, field, schema.normalize_gtin(getattr(payload, field)))
