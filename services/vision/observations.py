"""What vision reports about a lane stream, as plain objects (the servicer turns them into protobuf)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from lanesight.vision.zones import Zone


class Direction(enum.Enum):
    """Whether a track entered or left a zone."""

    ENTERED = "entered"
    LEFT = "left"


class Health(enum.Enum):
    """What the camera's picture looks like."""

    OK = "ok"
    DARK = "dark"
    BLOCKED = "blocked"
    FROZEN = "frozen"
    MOVED = "moved"


@dataclass(frozen=True)
class ZoneCrossingSeen:
    """A track entered or left a zone."""

    track_id: str
    zone: Zone
    direction: Direction


@dataclass(frozen=True)
class ZoneCountChanged:
    """The number of tracked items in a zone changed."""

    zone: Zone
    count: int


@dataclass(frozen=True)
class Label:
    """One candidate label and its score (probability, or cosine similarity when enrolled)."""

    label: str
    score: float
    coarse_label: str = ""


@dataclass(frozen=True)
class ItemSeen:
    """A tracked item was recognised while in a zone (None: outside every zone)."""

    track_id: str
    zone: Zone | None
    labels: tuple[Label, ...]


@dataclass(frozen=True)
class BarcodeDecoded:
    """A barcode decoded in view, on a track when track_id is set."""

    track_id: str
    data: str
    symbology: str
    gtin: str


@dataclass(frozen=True)
class HealthChanged:
    """The camera's health changed; reason carries the measurement that decided it."""

    health: Health
    reason: str


Observation = ZoneCrossingSeen | ZoneCountChanged | ItemSeen | BarcodeDecoded | HealthChanged
