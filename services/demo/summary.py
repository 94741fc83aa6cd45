"""The demo's closing summary: per exception type, what was staged, caught and missed."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from lanesight.demo.attendant import SeenAlert
from lanesight.demo.plan import LanePlan
from lanesight.fusion.alerts import AlertType
from lanesight.v1 import alerts_pb2


@dataclass
class TypeRow:
    """One exception type's line of the summary."""

    staged: int = 0
    caught: int = 0
    false_alerts: int = 0
    latencies_s: list[float] = field(default_factory=list)


@dataclass
class Summary:
    """What the run staged and what lanesight caught."""

    rows: dict[str, TypeRow]
    missed: list[str]
    alerts: int
    transactions: int

    @property
    def all_caught(self) -> bool:
        """True when every staged loss raised an alert."""
        return not self.missed

    def format(self) -> str:
        """The summary as a table."""
        lines = [
            f"{'exception type':<32}{'staged':>7}{'caught':>7}{'false':>7}{'latency p50':>13}",
        ]
        for name, row in sorted(self.rows.items()):
            p50 = f"{statistics.median(row.latencies_s):.1f}s" if row.latencies_s else "-"
            lines.append(f"{name:<32}{row.staged:>7}{row.caught:>7}{row.false_alerts:>7}{p50:>13}")
        staged = sum(r.staged for r in self.rows.values())
        caught = sum(r.caught for r in self.rows.values())
        false = sum(r.false_alerts for r in self.rows.values())
        lines.append(f"{'all types':<32}{staged:>7}{caught:>7}{false:>7}")
        lines.append(
            f"{self.transactions} transactions, {self.alerts} alerts; "
            + (
                "every staged loss was caught"
                if self.all_caught
                else f"missed: {', '.join(self.missed)}"
            )
        )
        return "\n".join(lines)


def summarize(plans: list[LanePlan], alerts: dict[str, SeenAlert], ended_s: float) -> Summary:
    """Match staged losses with the alerts on the same lane (same transaction or soon after)."""
    rows: dict[str, TypeRow] = {}
    missed: list[str] = []
    by_lane: dict[str, list[SeenAlert]] = {}
    for seen in alerts.values():
        seen.matched = False
        by_lane.setdefault(seen.alert.lane_id, []).append(seen)
    transactions = 0
    for plan in plans:
        transactions += len(plan.scenarios)
        for scenario, loss, at_s in plan.staged():
            if at_s > ended_s:
                continue  # staged after the run was stopped
            name = AlertType(loss.type).name.lower()
            row = rows.setdefault(name, TypeRow())
            row.staged += 1
            acceptable = {t.value for t in loss.acceptable}
            match = None
            for seen in sorted(by_lane.get(plan.lane_id, []), key=lambda s: s.received_s):
                types = {seen.alert.type, *seen.alert.merged_types}
                same_txn = seen.alert.transaction_id == scenario.transaction_id
                soon = -2.0 <= seen.received_s - at_s <= 30.0
                if types & acceptable and (same_txn or soon):
                    match = seen
                    break
            if match is None:
                missed.append(f"{name} on {plan.lane_id} ({scenario.behaviour})")
                continue
            match.matched = True
            row.caught += 1
            row.latencies_s.append(max(match.received_s - at_s, 0.0))
    for seen in alerts.values():
        if not seen.matched:
            name = alerts_pb2.AlertType.Name(seen.alert.type).removeprefix("ALERT_TYPE_").lower()
            rows.setdefault(name, TypeRow()).false_alerts += 1
    return Summary(rows, missed, len(alerts), transactions)
