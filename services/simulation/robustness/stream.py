"""Timed lane events with scene tags, shoppers' visits with ground truth, and the lane stream."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lanesight.fusion import events as ev
from lanesight.fusion.alerts import AlertType, PosExceptionKind

POS, SCANNER, BAGGING_SCALE, PRODUCE_SCALE, CAMERA = (
    "pos",
    "scanner-1",
    "bagging-scale-1",
    "produce-scale-1",
    "camera-1",
)
SCALE_SOURCES = (BAGGING_SCALE, PRODUCE_SCALE)
SENSOR_SOURCES = (BAGGING_SCALE, PRODUCE_SCALE, CAMERA)


@dataclass(frozen=True)
class Emitted:
    """One event as it happens at the lane.

    ``at_ms`` is when it reaches the lane agent (its place in the stream); ``stamp_ms``
    the lane time it carries (its source's clock), ``at_ms`` when None. ``tag`` says what
    it is in the scene ("bag:<line>", "lift", "ownbag", "vbag:<line>", ...) so that
    perturbations can find the events of one physical act. ``resend`` marks a copy of an
    earlier event (same id and sequence).
    """

    at_ms: int
    payload: ev.Payload
    source: str
    transaction_id: str = ""
    tag: str = ""
    stamp_ms: int | None = None
    resend: bool = False

    def moved(self, delta_ms: int) -> Emitted:
        """The same event, happening ``delta_ms`` later (its stamp moves with it)."""
        stamp = None if self.stamp_ms is None else self.stamp_ms + delta_ms
        return replace(self, at_ms=self.at_ms + delta_ms, stamp_ms=stamp)

    @property
    def is_bagging_weight(self) -> bool:
        p = self.payload
        return isinstance(p, ev.ScaleReading) and p.role is ev.ScaleRole.BAGGING


@dataclass(frozen=True)
class Loss:
    """Ground truth of one staged loss.

    ``acceptable`` are the alert types that fairly describe the act; ``evidence`` is False
    when the lane holds no evidence of it at all (e.g. a barcode switch between items of
    equal weight that vision has no class for): such losses are scored separately.
    """

    type: AlertType
    behaviour: str
    at_ms: int
    acceptable: frozenset[AlertType]
    evidence: bool = True
    pos_kind: PosExceptionKind = PosExceptionKind.UNSPECIFIED
    sku: str = ""


@dataclass
class Visit:
    """One transaction (or one POS act) at a lane, with its events and its ground truth."""

    store_id: str
    lane_id: str
    transaction_id: str
    self_checkout: bool
    behaviour: str
    start_ms: int
    events: list[Emitted] = field(default_factory=list)
    losses: list[Loss] = field(default_factory=list)
    quirks: list[str] = field(default_factory=list)
    # POS lines whose goods are part of a staged loss (perturbations leave them alone).
    loss_lines: set[str] = field(default_factory=set)

    @property
    def honest(self) -> bool:
        return not self.losses

    @property
    def end_ms(self) -> int:
        return max((e.at_ms for e in self.events), default=self.start_ms)


@dataclass
class Lane:
    """One lane's visits, and the lane's whole stream once perturbed."""

    store_id: str
    lane_id: str
    self_checkout: bool
    currency: str
    visits: list[Visit] = field(default_factory=list)

    def stream(self) -> list[Emitted]:
        """Every visit's events in arrival order (stable for equal times)."""
        return sorted((e for v in self.visits for e in v.events), key=lambda e: e.at_ms)


def to_lane_events(
    stream: list[Emitted], store_id: str, lane_id: str, run_id: str = "rb"
) -> list[ev.LaneEvent]:
    """Number the stream in arrival order as the lane agent does.

    The agent stamps each event with the transaction open when it arrives (a reading
    between two transactions belongs to none); a resend repeats the previous event.
    """
    events: list[ev.LaneEvent] = []
    sequence = 0
    open_txn = ""
    previous: ev.LaneEvent | None = None
    for emitted in sorted(stream, key=lambda e: e.at_ms):
        if emitted.resend:
            if previous is not None:
                events.append(previous)
            continue
        if isinstance(emitted.payload, ev.TransactionStarted):
            open_txn = emitted.transaction_id
        # A no-sale is a POS act of its own, outside any sale.
        no_sale = isinstance(emitted.payload, ev.NoSaleDrawerOpen)
        sequence += 1
        previous = ev.LaneEvent(
            event_id=f"{run_id}-{store_id}-{lane_id}-{sequence:07d}",
            store_id=store_id,
            lane_id=lane_id,
            sequence=sequence,
            lane_time_ms=emitted.at_ms if emitted.stamp_ms is None else emitted.stamp_ms,
            payload=emitted.payload,
            transaction_id=emitted.transaction_id if no_sale else open_txn,
            source_device_id=emitted.source,
        )
        events.append(previous)
        if isinstance(emitted.payload, ev.TransactionEnded):
            open_txn = ""
    return events
