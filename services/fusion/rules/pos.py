"""POS exception rules: void after tender, refund without receipt, no-sale, overrides, voids."""

from __future__ import annotations

from collections import deque

from lanesight.fusion.alerts import AlertType, ItemRef, PosExceptionKind
from lanesight.fusion.events import (
    LaneEvent,
    NoSaleDrawerOpen,
    PriceOverride,
    RefundIssued,
)
from lanesight.fusion.lane import Lane, Line
from lanesight.fusion.rules import RuleHost, item_ref_of_line
from lanesight.fusion.signals import Signal


class PosRules:
    """Judges the POS's own exceptions; the facts are certain, the intent is not."""

    def __init__(self, host: RuleHost) -> None:
        self.host = host
        self.settings = host.config.pos
        # (store, operator) -> lane times of recent voids; and when we last alerted.
        self.voids: dict[tuple[str, str], deque[tuple[int, str]]] = {}
        self.voids_alerted_ms: dict[tuple[str, str], int] = {}

    def _emit(
        self,
        lane: Lane,
        event: LaneEvent,
        kind: PosExceptionKind,
        amount_minor: int,
        currency: str,
        line: Line | None = None,
        event_ids: list[str] | None = None,
    ) -> None:
        self.host.emit(
            lane,
            Signal(
                type=AlertType.POS_EXCEPTION,
                confidence=0.95,
                amount_minor=amount_minor,
                currency=currency,
                event_ids=event_ids or [event.event_id],
                at_ms=event.lane_time_ms,
                item=item_ref_of_line(line) if line else ItemRef(),
                item_keys={f"pos:{event.event_id}"},
                pos_kind=kind,
                transaction_id=event.transaction_id,
            ),
        )

    def on_void(self, lane: Lane, event: LaneEvent, line: Line, operator_id: str) -> None:
        """A void after tender started, and too many voids by one operator."""
        txn = lane.txn
        if txn is not None and txn.tendering:
            self._emit(
                lane,
                event,
                PosExceptionKind.VOID_AFTER_TENDER,
                line.extended_minor,
                line.currency,
                line,
                [event.event_id, line.event_id],
            )
        operator = operator_id or (txn.operator_id if txn else "")
        if not operator:
            return
        key = (lane.store_id, operator)
        window = self.settings.excessive_voids_window_ms
        recent = self.voids.setdefault(key, deque())
        recent.append((event.lane_time_ms, event.event_id))
        while recent and recent[0][0] <= event.lane_time_ms - window:
            recent.popleft()
        last = self.voids_alerted_ms.get(key)
        if len(recent) >= self.settings.excessive_voids and (
            last is None or event.lane_time_ms - last > window
        ):
            self.voids_alerted_ms[key] = event.lane_time_ms
            self._emit(
                lane,
                event,
                PosExceptionKind.EXCESSIVE_VOIDS,
                0,
                line.currency,
                None,
                [event.event_id] + [event_id for _, event_id in recent][:-1],
            )

    def on_refund(self, lane: Lane, event: LaneEvent, refund: RefundIssued) -> None:
        """A refund without the original receipt."""
        if refund.with_receipt:
            return
        amount = refund.amount.amount_minor if refund.amount else 0
        currency = refund.amount.currency_code if refund.amount else self.host.currency_of(lane)
        self._emit(lane, event, PosExceptionKind.REFUND_WITHOUT_RECEIPT, amount, currency)

    def on_no_sale(self, lane: Lane, event: LaneEvent, no_sale: NoSaleDrawerOpen) -> None:
        """The drawer opened without a sale."""
        self._emit(
            lane, event, PosExceptionKind.NO_SALE_DRAWER_OPEN, 0, self.host.currency_of(lane)
        )

    def on_price_override(
        self, lane: Lane, event: LaneEvent, override: PriceOverride, line: Line | None
    ) -> None:
        """An override that takes off more than the policy allows."""
        if override.original_unit_price is None or override.new_unit_price is None:
            return
        original = override.original_unit_price.amount_minor
        reduction = original - override.new_unit_price.amount_minor
        quantity = line.quantity if line is not None and not line.sold_by_weight else 1
        reduction *= max(quantity, 1)
        limit = self.settings.large_override_minor
        share = reduction / original / max(quantity, 1) if original > 0 else 0.0
        if reduction >= limit or (
            share >= self.settings.large_override_pct and reduction >= limit // 4
        ):
            self._emit(
                lane,
                event,
                PosExceptionKind.LARGE_PRICE_OVERRIDE,
                reduction,
                override.original_unit_price.currency_code,
                line,
            )
