"""Derives the report facts (transactions, items, POS exceptions, lane incidents) from events.

Pure Python: the store feeds lane events in lane order together with each lane's state, and
writes the rows this module returns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from lanesight.reporting.localtime import StoreZones
from lanesight.reporting.model import LaneEventRecord

#: The kind of a record standing for an event the shared validator refused (a lane incident).
REJECTED_KIND = "data_quality_rejected"
# Scale statuses that count as a fault episode, and the good readings that end one.
_SCALE_FAULTS = {"not_zeroed": "scale_not_zeroed", "over_capacity": "scale_over_capacity"}
_SCALE_GOOD = {"stable", "zero"}
# Discount kinds an operator or shopper chooses; promotions the POS computes are not counted.
_COUNTED_DISCOUNTS = {"manual", "coupon", "unspecified"}


def has_printed_label(code: str, plu: str, weighed: bool) -> bool:
    """Whether an item carries a barcode label a store could reprint.

    Loose produce (weighed, or sold by PLU) has none, nor do in-store codes: a GTIN-14 with
    at most six significant digits is a PLU or a store's own number, not a printed GTIN.
    """
    if weighed or plu or not code:
        return False
    return not (code.isdigit() and len(code.lstrip("0")) <= 6)


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


@dataclass(slots=True)
class LaneState:
    """What the store remembers about a lane between events (persisted per batch)."""

    operator_id: str = ""
    transaction_id: str = ""
    transaction_operator: str = ""
    tender_started: bool = False
    reads_since_item: int = 0
    no_reads_since_item: int = 0
    # device id (or "printer-id:paper" / ":cover") -> its current fault state.
    faults: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        """The state as JSON for the lane_clock table."""
        # Built by hand: asdict() deep-copies, and this runs for every lane of every batch.
        return _ENCODE(
            {
                "operator_id": self.operator_id,
                "transaction_id": self.transaction_id,
                "transaction_operator": self.transaction_operator,
                "tender_started": self.tender_started,
                "reads_since_item": self.reads_since_item,
                "no_reads_since_item": self.no_reads_since_item,
                "faults": self.faults,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> LaneState:
        """A state from its JSON; unknown keys are ignored."""
        data = json.loads(text) if text else {}
        known = {k: v for k, v in data.items() if k in cls.__slots__}
        return cls(**known)


@dataclass(slots=True)
class TransactionUpdate:
    """What a batch learned about one transaction; None means "not known from this batch"."""

    store_id: str
    lane_id: str
    transaction_id: str
    time_ms: int
    local_day: str
    source: str
    operator_id: str = ""
    kind: str | None = None
    self_checkout: int | None = None
    started_ms: int | None = None
    tender_started_ms: int | None = None
    ended_ms: int | None = None
    outcome: str | None = None
    total_minor: int | None = None
    currency: str | None = None
    item_count: int | None = None

    def row(self) -> tuple:
        """The upsert row, in TRANSACTION_COLUMNS order."""
        return (
            self.store_id,
            self.lane_id,
            self.transaction_id,
            self.time_ms,
            self.local_day,
            self.operator_id,
            self.kind,
            self.self_checkout,
            self.started_ms,
            self.tender_started_ms,
            self.ended_ms,
            self.outcome,
            self.total_minor,
            self.currency,
            self.item_count,
            self.source,
        )


TRANSACTION_COLUMNS = (
    "store_id, lane_id, transaction_id, time_ms, local_day, operator_id, kind, self_checkout, "
    "started_ms, tender_started_ms, ended_ms, outcome, total_minor, currency, item_count, source"
)


@dataclass(slots=True)
class FactBatch:
    """Rows derived from a batch of events, ready for executemany."""

    transactions: dict[tuple[str, str, str], TransactionUpdate] = field(default_factory=dict)
    items: list[tuple] = field(default_factory=list)
    pos_events: list[tuple] = field(default_factory=list)
    incidents: list[tuple] = field(default_factory=list)
    camera_changes: list[tuple] = field(default_factory=list)
    lane_clock: dict[tuple[str, str], int] = field(default_factory=dict)


class FactBuilder:
    """Turns lane events into fact rows, updating the lane states it is given."""

    def __init__(self, zones: StoreZones, source: str = "lane") -> None:
        self.zones = zones
        self.source = source

    def build(
        self, events: list[LaneEventRecord], states: dict[tuple[str, str], LaneState]
    ) -> FactBatch:
        """Facts of ``events`` (in lane order); missing lane states are created in ``states``."""
        batch = FactBatch()
        for event in events:
            lane = (event.store_id, event.lane_id)
            if event.kind == REJECTED_KIND:
                # Timed by its arrival, not by the lane's clock, which it must not move.
                day = self.zones.of(event.store_id).day(event.time_ms)
                self._incident(batch, event, day, event.source_device_id, REJECTED_KIND)
                continue
            state = states.get(lane)
            if state is None:
                state = states[lane] = LaneState()
            day = self.zones.of(event.store_id).day(event.time_ms)
            if batch.lane_clock.get(lane, -1) < event.time_ms:
                batch.lane_clock[lane] = event.time_ms
            handler = _HANDLERS.get(event.kind)
            txn = None
            if event.transaction_id:
                txn = self._touch(batch, event, day, state)
            if handler is not None:
                handler(self, batch, event, day, state, txn)
        return batch

    def _touch(
        self, batch: FactBatch, event: LaneEventRecord, day: str, state: LaneState
    ) -> TransactionUpdate:
        key = (event.store_id, event.lane_id, event.transaction_id)
        txn = batch.transactions.get(key)
        if txn is None:
            operator = (
                state.transaction_operator
                if state.transaction_id == event.transaction_id
                else state.operator_id
            )
            txn = TransactionUpdate(
                *key, time_ms=event.time_ms, local_day=day, source=self.source, operator_id=operator
            )
            batch.transactions[key] = txn
        elif event.time_ms < txn.time_ms:
            txn.time_ms, txn.local_day = event.time_ms, day
        return txn

    # --- POS -----------------------------------------------------------------------------

    def _transaction_started(self, batch, event, day, state, txn) -> None:
        data = event.data
        operator = data.get("operator_id") or state.operator_id
        state.transaction_id = event.transaction_id
        state.transaction_operator = operator
        state.tender_started = False
        if txn is not None:
            txn.operator_id = operator
            txn.kind = data.get("kind", "sale")
            txn.self_checkout = int(bool(data.get("self_checkout")))
            txn.started_ms = event.time_ms

    def _item_added(self, batch, event, day, state, txn) -> None:
        data = event.data
        method = data.get("entry_method", "unspecified")
        first_pass = None
        if method == "scanned":
            first_pass = int(state.no_reads_since_item == 0 and state.reads_since_item <= 1)
        state.reads_since_item = state.no_reads_since_item = 0
        weight_mg = int(data.get("weight_mg", 0))
        weighed = int(weight_mg > 0 or data.get("unit_of_measure") == "kilogram")
        plu = data.get("plu", "")
        code = data.get("gtin") or plu or data.get("barcode_data", "")
        batch.items.append(
            (
                event.event_id,
                event.store_id,
                event.lane_id,
                event.transaction_id,
                data.get("line_id", ""),
                event.time_ms,
                day,
                self._operator(event, state),
                code,
                data.get("description", ""),
                method,
                int(data.get("quantity", 1)),
                weighed,
                weight_mg,
                data.get("extended_minor"),
                data.get("currency"),
                first_pass,
                int(has_printed_label(code, plu, bool(weighed))),
            )
        )

    def _item_voided(self, batch, event, day, state, txn) -> None:
        after_tender = state.tender_started and state.transaction_id == event.transaction_id
        self._pos(batch, event, day, state, "void", after_tender=after_tender)

    def _price_override(self, batch, event, day, state, txn) -> None:
        self._pos(batch, event, day, state, "price_override")

    def _discount_applied(self, batch, event, day, state, txn) -> None:
        if event.data.get("kind", "unspecified") in _COUNTED_DISCOUNTS:
            self._pos(batch, event, day, state, "discount")

    def _tender_started(self, batch, event, day, state, txn) -> None:
        if not event.transaction_id or state.transaction_id in ("", event.transaction_id):
            state.tender_started = True
        if txn is not None and txn.tender_started_ms is None:
            txn.tender_started_ms = event.time_ms

    def _transaction_ended(self, batch, event, day, state, txn) -> None:
        data = event.data
        outcome = data.get("outcome", "completed")
        if txn is not None:
            txn.ended_ms = event.time_ms
            txn.outcome = outcome
            txn.total_minor = data.get("total_minor")
            txn.currency = data.get("currency")
            txn.item_count = data.get("item_count")
        if outcome == "cancelled":
            self._pos(batch, event, day, state, "cancelled")
        if state.transaction_id == event.transaction_id:
            state.transaction_id = state.transaction_operator = ""
            state.tender_started = False

    def _transaction_post_voided(self, batch, event, day, state, txn) -> None:
        self._pos(batch, event, day, state, "cancelled")

    def _no_sale(self, batch, event, day, state, txn) -> None:
        self._pos(batch, event, day, state, "no_sale")

    def _refund_issued(self, batch, event, day, state, txn) -> None:
        kind = "refund_with_receipt" if event.data.get("with_receipt") else "refund_without_receipt"
        self._pos(batch, event, day, state, kind)

    def _sign_on(self, batch, event, day, state, txn) -> None:
        state.operator_id = event.data.get("operator_id", "")

    def _sign_off(self, batch, event, day, state, txn) -> None:
        if event.data.get("operator_id", "") in ("", state.operator_id):
            state.operator_id = ""

    def _attendant_override(self, batch, event, day, state, txn) -> None:
        self._pos(batch, event, day, state, "attendant_override")

    # --- devices -------------------------------------------------------------------------

    def _barcode_read(self, batch, event, day, state, txn) -> None:
        state.reads_since_item += 1

    def _scanner_no_read(self, batch, event, day, state, txn) -> None:
        state.no_reads_since_item += 1
        self._incident(batch, event, day, event.data.get("scanner_id", ""), "scanner_no_read")

    def _scale_reading(self, batch, event, day, state, txn) -> None:
        scale = event.data.get("scale_id", "") or event.source_device_id
        status = event.data.get("status", "unspecified")
        key = f"scale:{scale}"
        if status in _SCALE_FAULTS:
            if state.faults.get(key) != status:
                self._incident(batch, event, day, scale, _SCALE_FAULTS[status])
            state.faults[key] = status
        elif status in _SCALE_GOOD:
            state.faults.pop(key, None)

    def _printer_status(self, batch, event, day, state, txn) -> None:
        data = event.data
        if not data.get("reachable", True):
            return  # the printer did not answer: its paper and cover are unknown
        printer = data.get("printer_id", "") or event.source_device_id
        for suffix, active, kind in (
            ("paper", data.get("paper") == "out", "printer_paper_out"),
            ("cover", bool(data.get("cover_open")), "printer_cover_open"),
        ):
            key = f"printer:{printer}:{suffix}"
            if active and key not in state.faults:
                self._incident(batch, event, day, printer, kind, suffix)
                state.faults[key] = kind
            elif not active:
                state.faults.pop(key, None)

    def _peripheral_health(self, batch, event, day, state, txn) -> None:
        device = event.data.get("device_id", "") or event.source_device_id
        new_state = event.data.get("state", "unspecified")
        key = f"device:{device}"
        if new_state == "disconnected" and state.faults.get(key) != "disconnected":
            self._incident(batch, event, day, device, "device_disconnected")
        state.faults[key] = new_state

    def _parse_error(self, batch, event, day, state, txn) -> None:
        device = event.data.get("device_id", "") or event.source_device_id
        self._incident(batch, event, day, device, "peripheral_parse_error")

    def _camera_health(self, batch, event, day, state, txn) -> None:
        health = event.data.get("health", "unspecified")
        batch.camera_changes.append(
            (
                event.event_id,
                event.store_id,
                event.lane_id,
                event.data.get("camera_id", "") or event.source_device_id,
                event.time_ms,
                day,
                int(health in ("ok", "unspecified")),
            )
        )

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def _operator(event: LaneEventRecord, state: LaneState) -> str:
        own = event.data.get("operator_id") or event.data.get("attendant_id")
        if own:
            return own
        if event.transaction_id and state.transaction_id == event.transaction_id:
            return state.transaction_operator
        return state.operator_id

    def _pos(self, batch, event, day, state, kind: str, after_tender: bool = False) -> None:
        batch.pos_events.append(
            (
                event.event_id,
                event.store_id,
                event.lane_id,
                event.transaction_id,
                self._operator(event, state),
                event.time_ms,
                day,
                kind,
                int(after_tender),
                event.data.get("amount_minor"),
                event.data.get("currency"),
            )
        )

    @staticmethod
    def _incident(batch, event, day, device_id: str, kind: str, suffix: str = "") -> None:
        event_id = f"{event.event_id}:{suffix}" if suffix else event.event_id
        batch.incidents.append(
            (event_id, event.store_id, event.lane_id, device_id, event.time_ms, day, kind)
        )


_HANDLERS: dict[str, Any] = {
    "transaction_started": FactBuilder._transaction_started,
    "item_added": FactBuilder._item_added,
    "item_voided": FactBuilder._item_voided,
    "price_override": FactBuilder._price_override,
    "discount_applied": FactBuilder._discount_applied,
    "tender_started": FactBuilder._tender_started,
    "transaction_ended": FactBuilder._transaction_ended,
    "transaction_post_voided": FactBuilder._transaction_post_voided,
    "no_sale_drawer_open": FactBuilder._no_sale,
    "refund_issued": FactBuilder._refund_issued,
    "operator_sign_on": FactBuilder._sign_on,
    "operator_sign_off": FactBuilder._sign_off,
    "attendant_override": FactBuilder._attendant_override,
    "barcode_read": FactBuilder._barcode_read,
    "scanner_no_read": FactBuilder._scanner_no_read,
    "scale_reading": FactBuilder._scale_reading,
    "printer_status_changed": FactBuilder._printer_status,
    "peripheral_health_changed": FactBuilder._peripheral_health,
    "camera_health_changed": FactBuilder._camera_health,
    "peripheral_parse_error": FactBuilder._parse_error,
}
#: Event kinds that yield facts (convert.py checks each is a payload of the API or our own).
HANDLED_KINDS = frozenset(_HANDLERS) | {REJECTED_KIND}
#: Kinds reporting makes itself: from POSLog import, and events the validator refused.
OWN_KINDS = frozenset({"transaction_post_voided", REJECTED_KIND})
