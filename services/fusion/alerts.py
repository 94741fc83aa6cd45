"""Alerts and lane commands as plain dataclasses, with the wording rules use."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from lanesight.fusion.events import Money


class AlertType(IntEnum):
    UNSPECIFIED = 0
    MISSED_SCAN = 1
    UNSCANNED_ITEM_IN_BAGGING = 2
    ITEM_REMOVED_FROM_BAGGING = 3
    WEIGHT_MISMATCH = 4
    ITEM_MISMATCH = 5
    WRONG_PRODUCE_PLU = 6
    PRICE_EMBEDDED_LABEL_MISMATCH = 7
    QUANTITY_MISMATCH = 8
    ITEM_LEFT_IN_CART = 9
    CAMERA_TAMPER = 10
    POS_EXCEPTION = 11

    @property
    def rule_name(self) -> str:
        """The lower-case rule name used in config and in Alert.rule."""
        return self.name.lower()


RULE_NAMES = tuple(t.rule_name for t in AlertType if t is not AlertType.UNSPECIFIED)


class PosExceptionKind(IntEnum):
    UNSPECIFIED = 0
    VOID_AFTER_TENDER = 1
    REFUND_WITHOUT_RECEIPT = 2
    NO_SALE_DRAWER_OPEN = 3
    LARGE_PRICE_OVERRIDE = 4
    EXCESSIVE_VOIDS = 5


class Severity(IntEnum):
    UNSPECIFIED = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3


class Escalation(IntEnum):
    NONE = 0
    LANE_PROMPT = 1
    ATTENDANT = 2
    PAUSE_LANE = 3


class AlertState(IntEnum):
    UNSPECIFIED = 0
    OPEN = 1
    ACKNOWLEDGED = 2
    RESOLVED = 3
    WITHDRAWN = 4


class Disposition(IntEnum):
    UNSPECIFIED = 0
    RECOVERED = 1
    SHOPPER_CORRECTED = 2
    HONEST_MISTAKE = 3
    FALSE_ALERT = 4
    NO_ACTION = 5


@dataclass(slots=True)
class ItemRef:
    """The catalog item an alert is about, as far as it is known."""

    sku: str = ""
    gtin: str = ""
    plu: str = ""
    description: str = ""
    category: str = ""


@dataclass(slots=True)
class Alert:
    """One exception raised by fusion, with its evidence and lifecycle."""

    alert_id: str
    store_id: str
    lane_id: str
    transaction_id: str
    type: AlertType
    severity: Severity
    confidence: float
    amount_at_risk: Money
    supporting_event_ids: list[str]
    reason: str
    suggested_action: str
    raised_at_ms: int
    rule: str
    vision_available: bool
    item: ItemRef = field(default_factory=ItemRef)
    pos_exception_kind: PosExceptionKind = PosExceptionKind.UNSPECIFIED
    state: AlertState = AlertState.OPEN
    disposition: Disposition = Disposition.UNSPECIFIED
    escalation: Escalation = Escalation.NONE
    acknowledged_at_ms: int = 0
    resolved_at_ms: int = 0
    acknowledged_by: str = ""
    resolved_by: str = ""
    resolution_note: str = ""
    withdrawn_reason: str = ""
    amount_recovered: Money | None = None
    revision: int = 1
    merged_signals: int = 1
    merged_types: list[AlertType] = field(default_factory=list)
    # Engine bookkeeping, not part of the API: what links further signals to this alert.
    item_keys: set[str] = field(default_factory=set)
    evidence_ms: int = 0
    escalated_at_ms: int = 0

    @property
    def is_open(self) -> bool:
        """True until the alert is resolved or withdrawn."""
        return self.state in (AlertState.OPEN, AlertState.ACKNOWLEDGED)


class CommandKind(IntEnum):
    PROMPT = 10
    PAUSE = 11
    RESUME = 12
    PRINT_AUDIT_SLIP = 13
    KICK_DRAWER = 14


@dataclass(slots=True)
class LaneCommand:
    """An instruction to a lane agent; exactly one of the payload fields matters per kind."""

    command_id: str
    store_id: str
    lane_id: str
    alert_id: str
    issued_at_ms: int
    kind: CommandKind
    message: str = ""
    attendant_id: str = ""
    lines: tuple[str, ...] = ()
    drawer_pin: int = 2


# The words an alert must never use: alerts suggest a review, they never accuse.
FORBIDDEN_WORDS = ("theft", "thief", "steal", "stole", "shoplift", "fraud")
