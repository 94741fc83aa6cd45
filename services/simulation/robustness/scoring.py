"""Run lane streams through the real fusion engine and score its alerts against ground truth."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from lanesight.fusion import events as ev
from lanesight.fusion.alerts import Alert, AlertState, AlertType, Disposition, PosExceptionKind
from lanesight.fusion.catalog import CatalogBook
from lanesight.fusion.config import FusionConfig
from lanesight.fusion.engine import FusionEngine
from lanesight.simulation.robustness.stores import STORES, Store
from lanesight.simulation.robustness.stream import Lane

BATCH = 32
_WITHDRAWN = getattr(AlertState, "WITHDRAWN", None)
TYPES = tuple(t for t in AlertType if t is not AlertType.UNSPECIFIED)


@dataclass
class Cell:
    """Detection of one loss type under one perturbation."""

    staged: int = 0
    caught: int = 0

    @property
    def recall(self) -> float | None:
        return self.caught / self.staged if self.staged else None


@dataclass
class Score:
    """The quality of one run: per-type recall, false alerts, precision, withdrawals."""

    by_type: dict[AlertType, Cell] = field(default_factory=lambda: {t: Cell() for t in TYPES})
    # Losses the lane holds no evidence of, by type (reported apart, never in recall).
    no_evidence_by_type: dict[AlertType, Cell] = field(
        default_factory=lambda: {t: Cell() for t in TYPES}
    )
    transactions: int = 0
    honest: int = 0
    alerts: int = 0
    true_alerts: int = 0
    false_on_honest: int = 0
    false_on_staged: int = 0
    false_outside: int = 0
    withdrawn: int = 0
    rejected: int = 0
    # True alerts that closed as "shopper corrected": no shopper in the corpus corrects a
    # staged loss, so each of these is a recovery that never happened.
    self_closed: int = 0
    # Alerts whose amount at risk is not in the store's currency.
    wrong_currency: int = 0
    false_by_type: dict[AlertType, int] = field(default_factory=lambda: defaultdict(int))
    # False alerts on honest transactions, by the honest quirks staged in them.
    false_by_quirk: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    false_examples: list[str] = field(default_factory=list)

    @property
    def no_evidence(self) -> Cell:
        """Every loss without evidence, of any type."""
        cells = self.no_evidence_by_type.values()
        return Cell(sum(c.staged for c in cells), sum(c.caught for c in cells))

    @property
    def false_alerts(self) -> int:
        return self.false_on_honest + self.false_on_staged + self.false_outside

    @property
    def false_per_100_honest(self) -> float:
        """False alerts on honest transactions (or on none) per 100 honest transactions."""
        return 100.0 * (self.false_on_honest + self.false_outside) / max(self.honest, 1)

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None

    @property
    def lowest_recall(self) -> tuple[AlertType, float] | None:
        cells = [(t, c.recall) for t, c in self.by_type.items() if c.recall is not None]
        return min(cells, key=lambda tc: tc[1]) if cells else None

    def add(self, other: Score) -> None:
        """Fold another run (another seed) into this one."""
        for t, cell in other.by_type.items():
            self.by_type[t].staged += cell.staged
            self.by_type[t].caught += cell.caught
        for t, cell in other.no_evidence_by_type.items():
            self.no_evidence_by_type[t].staged += cell.staged
            self.no_evidence_by_type[t].caught += cell.caught
        for name in (
            "transactions",
            "honest",
            "alerts",
            "true_alerts",
            "false_on_honest",
            "false_on_staged",
            "false_outside",
            "withdrawn",
            "rejected",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for t, n in other.false_by_type.items():
            self.false_by_type[t] += n
        for quirk, n in other.false_by_quirk.items():
            self.false_by_quirk[quirk] += n
        self.false_examples.extend(other.false_examples[: max(0, 20 - len(self.false_examples))])


def new_engine(config: FusionConfig | None = None, stores: tuple[Store, ...] = STORES):
    """A fusion engine with the corpus stores' catalogs."""
    catalog = CatalogBook()
    for store in stores:
        catalog.upsert(store.store_id, store.catalog)
    return FusionEngine(config or FusionConfig(), catalog)


def run_in_process(
    streams: list[list[ev.LaneEvent]],
    config: FusionConfig | None = None,
    stores: tuple[Store, ...] = STORES,
) -> tuple[list[Alert], int]:
    """Feed each lane's events through one in-process engine; returns (alerts, rejected)."""
    engine = new_engine(config, stores)
    rejected = 0
    for stream in streams:
        for start in range(0, len(stream), BATCH):
            rejected += len(engine.ingest(stream[start : start + BATCH]).rejections)
        engine.take_outputs()
    engine.flush()
    engine.take_outputs()
    return list(engine.alerts.alerts.values()), rejected


def _types(alert: Alert) -> set[AlertType]:
    return {alert.type, *alert.merged_types}


def score(
    lanes: list[Lane],
    alerts: list[Alert],
    rejected: int = 0,
    config: FusionConfig | None = None,
    streams: list[list[ev.LaneEvent]] | None = None,
) -> Score:
    """Match alerts to staged losses: an alert is true only for a loss of its transaction.

    "Excessive voids" is a fact about an operator, not a staged loss: it is true when the
    lane's events (``streams`` as sent, else the visits) hold that many voids within the
    configured window, false otherwise.
    """
    pos = (config or FusionConfig()).pos
    voids: dict[tuple[str, str], list[int]] = defaultdict(list)
    if streams is not None:
        for stream in streams:
            # A resent void is one void.
            unique = {e.event_id: e for e in stream if isinstance(e.payload, ev.ItemVoided)}
            for e in unique.values():
                voids[e.lane_key].append(e.lane_time_ms)
    else:
        for lane in lanes:
            for v in lane.visits:
                voids[(lane.store_id, lane.lane_id)].extend(
                    e.at_ms for e in v.events if isinstance(e.payload, ev.ItemVoided)
                )

    def voids_are_many(alert: Alert) -> bool:
        times = voids.get((alert.store_id, alert.lane_id), [])
        start = alert.raised_at_ms - pos.excessive_voids_window_ms - 1_000
        return sum(start <= t <= alert.raised_at_ms + 1_000 for t in times) >= pos.excessive_voids

    result = Score(rejected=rejected)
    by_txn: dict[tuple[str, str, str], list[Alert]] = defaultdict(list)
    for alert in alerts:
        if _WITHDRAWN is not None and alert.state is _WITHDRAWN:
            result.withdrawn += 1
            continue
        by_txn[(alert.store_id, alert.lane_id, alert.transaction_id)].append(alert)
    matched: set[tuple[str, str, str]] = set()
    currency = {lane.store_id: lane.currency for lane in lanes}
    for alert in alerts:
        money = alert.amount_at_risk
        if (
            money is not None
            and money.amount_minor
            and money.currency_code != currency.get(alert.store_id, money.currency_code)
        ):
            result.wrong_currency += 1
    for lane in lanes:
        for visit in lane.visits:
            key = (visit.store_id, visit.lane_id, visit.transaction_id)
            matched.add(key)
            found = by_txn.get(key, [])
            result.transactions += 1
            result.honest += visit.honest
            for loss in visit.losses:
                cells = result.by_type if loss.evidence else result.no_evidence_by_type
                cell = cells[loss.type]
                cell.staged += 1
                if any(_fits(a, loss) for a in found):
                    cell.caught += 1
            for alert in found:
                result.alerts += 1
                if alert.pos_exception_kind is PosExceptionKind.EXCESSIVE_VOIDS and voids_are_many(
                    alert
                ):
                    result.true_alerts += 1
                    continue
                if any(_fits(alert, loss) for loss in visit.losses):
                    result.true_alerts += 1
                    result.self_closed += alert.disposition is Disposition.SHOPPER_CORRECTED
                    continue
                if visit.honest:
                    result.false_on_honest += 1
                    for quirk in set(visit.quirks) or {"(no quirk)"}:
                        result.false_by_quirk[quirk] += 1
                else:
                    result.false_on_staged += 1
                result.false_by_type[alert.type] += 1
                if len(result.false_examples) < 20:
                    result.false_examples.append(
                        f"{visit.transaction_id} ({visit.behaviour}): {alert.rule}: {alert.reason}"
                    )
    for key, found in by_txn.items():
        if key not in matched:
            # Raised outside any transaction the corpus staged: still an attendant's time.
            for alert in found:
                result.alerts += 1
                result.false_outside += 1
                result.false_by_type[alert.type] += 1
    return result


def _fits(alert: Alert, loss) -> bool:
    if not (_types(alert) & loss.acceptable):
        return False
    return not loss.pos_kind or alert.pos_exception_kind is loss.pos_kind
