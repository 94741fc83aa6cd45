"""Detection quality: run generated scenarios through the engine and score against truth."""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field

from lanesight.fusion.alerts import Alert, AlertType
from lanesight.fusion.catalog import CatalogBook, CatalogItem
from lanesight.fusion.config import FusionConfig
from lanesight.fusion.engine import FusionEngine
from lanesight.simulation.scenarios.scenario import Noise, Scenario, lane_events
from lanesight.simulation.scenarios.shoppers import generate_lanes

BATCH = 16


@dataclass
class TypeQuality:
    """Detection quality of one exception type."""

    staged: int = 0
    caught: int = 0
    alerts: int = 0
    true_alerts: int = 0
    honest_alerts: int = 0
    latencies_ms: list[int] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        return self.caught / self.staged if self.staged else None

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None


@dataclass
class QualityReport:
    """The quality table of one simulation run."""

    by_type: dict[AlertType, TypeQuality]
    by_behaviour: dict[str, tuple[int, int]]
    transactions: int
    honest_transactions: int
    events: int
    alerts: int
    seconds: float
    missed: list[tuple[str, str]] = field(default_factory=list)
    false_alerts: list[tuple[str, str, str]] = field(default_factory=list)

    def false_per_100(self, quality: TypeQuality) -> float:
        return 100.0 * quality.honest_alerts / max(self.honest_transactions, 1)

    @property
    def total_false_per_100(self) -> float:
        return sum(self.false_per_100(q) for q in self.by_type.values())


def run_engine(
    lanes: list[list[Scenario]],
    config: FusionConfig,
    items: list[CatalogItem],
    noise: Noise,
    seed: int,
) -> tuple[FusionEngine, int, float]:
    """Feed every lane's events through one engine in batches; returns (engine, events, s)."""
    catalog = CatalogBook()
    catalog.upsert("", items)
    engine = FusionEngine(config, catalog)
    streams = [
        lane_events(scenarios, "sim", noise, seed + index) for index, scenarios in enumerate(lanes)
    ]
    started = time.perf_counter()
    count = 0
    for stream in streams:
        for start in range(0, len(stream), BATCH):
            batch = stream[start : start + BATCH]
            engine.ingest(batch)
            count += len(batch)
        engine.take_outputs()
    engine.flush()
    engine.take_outputs()
    return engine, count, time.perf_counter() - started


def score(lanes: list[list[Scenario]], alerts: list[Alert]) -> dict:
    """Match alerts to staged losses by lane and transaction."""
    by_txn: dict[tuple[str, str, str], list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_txn[(alert.store_id, alert.lane_id, alert.transaction_id)].append(alert)
    quality: dict[AlertType, TypeQuality] = {
        t: TypeQuality() for t in AlertType if t is not AlertType.UNSPECIFIED
    }
    behaviours: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    missed: list[tuple[str, str]] = []
    false_alerts: list[tuple[str, str, str]] = []
    transactions = honest = 0
    for scenarios in lanes:
        for sc in scenarios:
            transactions += 1
            honest += sc.honest
            found = by_txn.get((sc.store_id, sc.lane_id, sc.transaction_id), [])
            for loss in sc.losses:
                q = quality[loss.type]
                q.staged += 1
                behaviours[loss.behaviour][0] += 1
                # Caught by any alert that fairly describes the act (a barcode switch to a
                # lighter item raised as a weight mismatch is caught), as the robustness
                # harness scores it; precision below uses the same test.
                hits = [
                    a
                    for a in found
                    if set(a.merged_types) & loss.acceptable
                    and (not loss.pos_kind or a.pos_exception_kind is loss.pos_kind)
                ]
                if hits:
                    q.caught += 1
                    behaviours[loss.behaviour][1] += 1
                    first = min(hits, key=lambda a: a.raised_at_ms)
                    q.latencies_ms.append(first.raised_at_ms - (sc.start_ms + loss.at_ms))
                else:
                    missed.append((sc.scenario_id, loss.behaviour))
            for alert in found:
                q = quality[alert.type]
                q.alerts += 1
                fair = any(set(alert.merged_types) & loss.acceptable for loss in sc.losses)
                if fair:
                    q.true_alerts += 1
                else:
                    false_alerts.append((sc.scenario_id, alert.type.rule_name, alert.reason))
                if sc.honest:
                    q.honest_alerts += 1
    return {
        "by_type": quality,
        "by_behaviour": {k: (v[0], v[1]) for k, v in behaviours.items()},
        "transactions": transactions,
        "honest_transactions": honest,
        "missed": missed,
        "false_alerts": false_alerts,
    }


def evaluate(
    seed: int,
    lanes: int,
    transactions: int,
    items: list[CatalogItem],
    config: FusionConfig | None = None,
    noise: Noise | None = None,
    loss_rate: float = 0.3,
) -> QualityReport:
    """Generate scenarios, run them through the engine, and score the alerts."""
    config = config or FusionConfig()
    noise = noise or Noise()
    generated = generate_lanes(seed, lanes, transactions, items, noise, loss_rate)
    engine, count, seconds = run_engine(generated, config, items, noise, seed)
    alerts = list(engine.alerts.alerts.values())
    scored = score(generated, alerts)
    return QualityReport(events=count, alerts=len(alerts), seconds=seconds, **scored)


def _pct(value: float | None) -> str:
    return "   -" if value is None else f"{value:4.2f}"


def format_report(report: QualityReport) -> str:
    """The quality table as text."""
    lines = [
        f"{report.transactions} transactions ({report.honest_transactions} honest), "
        f"{report.events} events, {report.alerts} alerts, "
        f"engine {report.events / max(report.seconds, 1e-9):,.0f} events/s",
        "",
        f"{'exception type':<31}{'staged':>7}{'caught':>7}{'recall':>7}{'alerts':>7}"
        f"{'precis.':>8}{'FA/100':>7}{'p50 ms':>8}{'p95 ms':>8}",
    ]
    for alert_type, q in report.by_type.items():
        if not q.staged and not q.alerts:
            continue
        lat = sorted(q.latencies_ms)
        p50 = f"{statistics.median(lat):.0f}" if lat else "-"
        p95 = f"{lat[min(len(lat) - 1, int(0.95 * len(lat)))]:.0f}" if lat else "-"
        lines.append(
            f"{alert_type.rule_name:<31}{q.staged:>7}{q.caught:>7}{_pct(q.recall):>7}"
            f"{q.alerts:>7}{_pct(q.precision):>8}{report.false_per_100(q):>7.2f}"
            f"{p50:>8}{p95:>8}"
        )
    lines.append(f"{'all types':<31}{'':>51}{report.total_false_per_100:>7.2f}")
    return "\n".join(lines)


def format_behaviours(report: QualityReport) -> str:
    """Recall per staged behaviour."""
    lines = [f"{'behaviour':<28}{'staged':>7}{'caught':>7}"]
    for name, (staged, caught) in sorted(report.by_behaviour.items()):
        lines.append(f"{name:<28}{staged:>7}{caught:>7}")
    return "\n".join(lines)


def format_sweep(reports: dict[float, QualityReport]) -> str:
    """Recall and precision per type as vision confusion grows."""
    levels = list(reports)
    header = f"{'exception type':<31}" + "".join(f"{f'conf {lvl:.0%}':>16}" for lvl in levels)
    lines = [header, f"{'':<31}" + "".join(f"{'recall  prec':>16}" for _ in levels)]
    first = reports[levels[0]]
    for alert_type in first.by_type:
        cells = []
        any_row = False
        for lvl in levels:
            q = reports[lvl].by_type[alert_type]
            any_row |= bool(q.staged or q.alerts)
            cells.append(f"{_pct(q.recall):>10}{_pct(q.precision):>6}")
        if any_row:
            lines.append(f"{alert_type.rule_name:<31}" + "".join(cells))
    lines.append(
        f"{'false alerts / 100 honest':<31}"
        + "".join(f"{reports[lvl].total_false_per_100:>16.2f}" for lvl in levels)
    )
    return "\n".join(lines)
