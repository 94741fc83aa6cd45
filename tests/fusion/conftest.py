"""Fixtures for fusion tests: the demo catalog, engines, scripted lanes, a real server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from lanesight.common.config import load_config
from lanesight.common.server import start_server
from lanesight.fusion.alertbook import AlertUpdate
from lanesight.fusion.alerts import Alert, AlertType, LaneCommand
from lanesight.fusion.app import create_app
from lanesight.fusion.catalog import DEMO_CATALOG, CatalogBook, CatalogItem, load_catalog_file
from lanesight.fusion.config import FusionConfig
from lanesight.fusion.engine import FusionEngine
from lanesight.fusion.events import LaneEvent
from lanesight.simulation.scenarios.actions import Action
from lanesight.simulation.scenarios.scenario import Scenario, TimedAction, lane_events

START_MS = 1_750_000_000_000


@pytest.fixture(scope="session")
def demo_items() -> list[CatalogItem]:
    return load_catalog_file(DEMO_CATALOG)


@pytest.fixture(scope="session")
def demo(demo_items) -> dict[str, CatalogItem]:
    """Demo items by vision label, and by SKU."""
    out = {item.sku: item for item in demo_items}
    for item in demo_items:
        for label in item.vision_labels:
            out[label] = item
    return out


def make_engine(items: list[CatalogItem], **settings) -> FusionEngine:
    """An engine over the demo catalog with config overrides."""
    catalog = CatalogBook()
    catalog.upsert("", items)
    return FusionEngine(FusionConfig(**settings), catalog)


@pytest.fixture
def engine(demo_items) -> FusionEngine:
    return make_engine(demo_items)


@dataclass
class Run:
    """What an engine made of a script."""

    events: list[LaneEvent]
    alerts: list[Alert] = field(default_factory=list)
    updates: list[Alert] = field(default_factory=list)
    commands: list[LaneCommand] = field(default_factory=list)

    def of_type(self, alert_type: AlertType) -> list[Alert]:
        return [a for a in self.alerts if alert_type in a.merged_types]

    @property
    def types(self) -> set[AlertType]:
        return {t for a in self.alerts for t in a.merged_types}


def script_events(
    actions: Sequence[tuple[int, Action]],
    lane_id: str = "lane-1",
    store_id: str = "store-1",
    transaction_id: str = "T1",
    self_checkout: bool = True,
    start_ms: int = START_MS,
    first_sequence: int = 1,
) -> list[LaneEvent]:
    """Lane events for (at_ms, action) pairs, numbered as a lane agent would."""
    scenario = Scenario(
        scenario_id="test",
        store_id=store_id,
        lane_id=lane_id,
        transaction_id=transaction_id,
        start_ms=start_ms,
        self_checkout=self_checkout,
        behaviour="test",
        actions=[TimedAction(at, action) for at, action in actions],
    )
    return lane_events([scenario], run_id=f"t-{transaction_id}", first_sequence=first_sequence)


def feed(engine: FusionEngine, events: Sequence[LaneEvent], batch: int = 1) -> Run:
    """Ingest events (in batches), close open windows, and collect the outputs."""
    run = Run(list(events))
    for start in range(0, len(events), batch):
        engine.ingest(events[start : start + batch])
    engine.flush()
    for output in engine.take_outputs():
        if isinstance(output, AlertUpdate):
            (run.alerts if output.is_new else run.updates).append(output.alert)
        else:
            run.commands.append(output)
    # The final state of each alert (merges add types after it was raised).
    final = engine.alerts.alerts
    run.alerts = [final[a.alert_id] for a in run.alerts]
    return run


@pytest.fixture
def fusion_config(tmp_path):
    """Config for a real fusion server: store in tmp, no reporting link, demo catalog."""
    return load_config(
        None,
        environ={
            "LANESIGHT_FUSION__STORE_PATH": str(tmp_path / "fusion.sqlite"),
            "LANESIGHT_FUSION__DEMO_CATALOG": "true",
            "LANESIGHT_FUSION__FORWARD_TO_REPORTING": "false",
            "LANESIGHT_FUSION__TICK_MS": "20",
        },
    )


@pytest.fixture
async def fusion_server(fusion_config):
    """A real fusion gRPC server on port 0."""
    app = create_app(fusion_config)
    running = await start_server(app, fusion_config, port=0)
    try:
        yield running
    finally:
        await running.stop()
