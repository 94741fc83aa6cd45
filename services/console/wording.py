"""What the console says about alerts: neutral titles and labels, never an accusation."""

from __future__ import annotations

from lanesight.common.money import format_minor
from lanesight.v1 import alerts_pb2, common_pb2

#: A short neutral title per alert type: what may have happened, not who did it.
TITLES: dict[int, str] = {
    alerts_pb2.ALERT_TYPE_MISSED_SCAN: "Item may not have scanned",
    alerts_pb2.ALERT_TYPE_UNSCANNED_ITEM_IN_BAGGING: "Unexpected item in bagging area",
    alerts_pb2.ALERT_TYPE_ITEM_REMOVED_FROM_BAGGING: "Item moved from bagging area",
    alerts_pb2.ALERT_TYPE_WEIGHT_MISMATCH: "Weight check needed",
    alerts_pb2.ALERT_TYPE_ITEM_MISMATCH: "Item may not match the scan",
    alerts_pb2.ALERT_TYPE_WRONG_PRODUCE_PLU: "Produce code check needed",
    alerts_pb2.ALERT_TYPE_PRICE_EMBEDDED_LABEL_MISMATCH: "Price label check needed",
    alerts_pb2.ALERT_TYPE_QUANTITY_MISMATCH: "Item count check needed",
    alerts_pb2.ALERT_TYPE_ITEM_LEFT_IN_CART: "Item may still be in the cart",
    alerts_pb2.ALERT_TYPE_CAMERA_TAMPER: "Camera view is blocked or dark",
    alerts_pb2.ALERT_TYPE_POS_EXCEPTION: "Register activity to review",
}

SEVERITIES: dict[int, str] = {
    alerts_pb2.SEVERITY_LOW: "low",
    alerts_pb2.SEVERITY_MEDIUM: "medium",
    alerts_pb2.SEVERITY_HIGH: "high",
}

STATES: dict[int, str] = {
    alerts_pb2.ALERT_STATE_OPEN: "new",
    alerts_pb2.ALERT_STATE_ACKNOWLEDGED: "seen",
    alerts_pb2.ALERT_STATE_RESOLVED: "resolved",
    alerts_pb2.ALERT_STATE_WITHDRAWN: "withdrawn",
}

#: The dispositions an attendant may pick, in the order the buttons show them.
DISPOSITIONS: dict[str, tuple[int, str]] = {
    "recovered": (alerts_pb2.DISPOSITION_RECOVERED, "Item paid for or returned"),
    "shopper_corrected": (alerts_pb2.DISPOSITION_SHOPPER_CORRECTED, "Shopper corrected it"),
    "honest_mistake": (alerts_pb2.DISPOSITION_HONEST_MISTAKE, "Honest mistake"),
    "false_alert": (alerts_pb2.DISPOSITION_FALSE_ALERT, "Nothing was wrong"),
    "no_action": (alerts_pb2.DISPOSITION_NO_ACTION, "No action needed"),
}
DISPOSITION_LABELS = {number: label for number, label in DISPOSITIONS.values()}

#: Tile states, worst first, with the words the tile shows.
LANE_STATUSES: dict[str, str] = {
    "paused": "Paused",
    "attendant": "Attendant needed",
    "prompt": "Prompt shown",
    "transaction": "In transaction",
    "idle": "Idle",
}


def title(alert: alerts_pb2.Alert) -> str:
    """The alert's neutral title."""
    return TITLES.get(alert.type, "Check needed")


def lane_name(lane_id: str) -> str:
    """How a lane is named on screen: "Lane 3" for "3", "03" or "lane-3"."""
    bare = lane_id
    if bare.lower().startswith("lane"):
        bare = bare[4:].lstrip("-_ ") or lane_id
    return f"Lane {bare}"


def money(value: common_pb2.Money) -> str:
    """Money as text with its currency code, e.g. "4.29 USD"; empty when unset."""
    if not value.currency_code:
        return ""
    return f"{format_minor(value.amount_minor, value.currency_code)} {value.currency_code}"


def needs_attendant(alert: alerts_pb2.Alert) -> bool:
    """True for an open alert the store's policy escalated to an attendant (or higher)."""
    return is_open(alert) and (
        alert.escalation >= alerts_pb2.ESCALATION_ATTENDANT
        or alert.severity == alerts_pb2.SEVERITY_HIGH
    )


def is_open(alert: alerts_pb2.Alert) -> bool:
    """True while the alert waits for an attendant (new or seen, not closed)."""
    return alert.state in (alerts_pb2.ALERT_STATE_OPEN, alerts_pb2.ALERT_STATE_ACKNOWLEDGED)
