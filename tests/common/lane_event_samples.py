"""A valid LaneEvent of every payload kind, built by walking the proto descriptors."""

from __future__ import annotations

import time
import uuid

from google.protobuf.message import Message
from lanesight.common import schema
from lanesight.v1 import events_pb2

GTIN = "00012345678905"


def fill(message: Message, payload: str) -> None:
    """Set every field of ``message`` to a valid value that differs from its default."""
    for field in message.DESCRIPTOR.fields:
        name = field.name
        if field.is_repeated:
            item = getattr(message, name).add()
            fill(item, payload)
        elif field.message_type is schema.MONEY:
            getattr(message, name).amount_minor = 123
            getattr(message, name).currency_code = "EUR"
        elif field.message_type is not None:
            fill(getattr(message, name), payload)
        elif field.enum_type is not None:
            setattr(message, name, field.enum_type.values[-1].number)
        elif field.type == field.TYPE_STRING:
            value = {"gtin": GTIN, "plu": "4011", "ai": "01"}.get(name, f"x-{name}")
            setattr(message, name, value)
        elif field.type == field.TYPE_BOOL:
            setattr(message, name, True)
        elif field.type == field.TYPE_FLOAT:
            setattr(message, name, 0.5)
        else:
            setattr(message, name, 1_000 if name.endswith("_mg") else 3)


def sample(kind: str, sequence: int = 1, now_ms: int | None = None) -> events_pb2.LaneEvent:
    """A stamped LaneEvent carrying a fully set, valid ``kind`` payload."""
    event = events_pb2.LaneEvent(
        event_id=str(uuid.uuid4()),
        store_id="store-1",
        lane_id="lane-1",
        sequence=sequence,
        transaction_id="t-1",
        source_device_id="dev-1",
    )
    event.lane_time.FromMilliseconds(now_ms if now_ms is not None else time.time_ns() // 10**6)
    fill(getattr(event, kind), kind)
    return event
