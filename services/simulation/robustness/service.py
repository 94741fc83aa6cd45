"""Run lane streams through a real FusionService.Ingest stream on a port-0 server."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import grpc
from lanesight.fusion import events as ev
from lanesight.fusion.alerts import Alert
from lanesight.fusion.config import FusionConfig
from lanesight.fusion.convert import event_to_pb
from lanesight.fusion.replay import batches
from lanesight.simulation.robustness.stores import STORES, Store
from lanesight.v1 import fusion_pb2, fusion_pb2_grpc

BATCH = 64
DEADLINE_S = 60.0


def run_over_grpc(
    streams: list[list[ev.LaneEvent]],
    config: FusionConfig | None = None,
    stores: tuple[Store, ...] = STORES,
) -> tuple[list[Alert], int]:
    """Start fusion on port 0, send each lane on its own Ingest stream, return its alerts."""
    return asyncio.run(_run(streams, config, stores))


async def _run(
    streams: list[list[ev.LaneEvent]], fusion: FusionConfig | None, stores: tuple[Store, ...]
) -> tuple[list[Alert], int]:
    from lanesight.common.config import load_config
    from lanesight.common.server import start_server
    from lanesight.fusion.app import create_app

    with tempfile.TemporaryDirectory(prefix="lanesight-robustness-") as tmp:
        config = load_config(
            None,
            environ={
                "LANESIGHT_FUSION__STORE_PATH": str(Path(tmp) / "fusion.sqlite"),
                "LANESIGHT_FUSION__FORWARD_TO_REPORTING": "false",
                # Only the corpus stores' catalogs, as in process.
                "LANESIGHT_FUSION__DEMO_CATALOG": "false",
                # The corpus is sent as fast as fusion takes it, not in real time: the live
                # ticker would move lane clocks by wall time while a loaded machine stalls.
                "LANESIGHT_FUSION__TICK_MS": "60000",
            },
        )
        if fusion is not None:
            kept = {
                "store_path": config.fusion.store_path,
                "forward_to_reporting": False,
                "demo_catalog": False,
                "tick_ms": 60_000,
            }
            config = config.model_copy(update={"fusion": fusion.model_copy(update=kept)})
        app = create_app(config)
        running = await start_server(app, config, port=0)
        try:
            for store in stores:
                app.upsert_catalog(store.store_id, store.catalog)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = fusion_pb2_grpc.FusionServiceStub(channel)
                counts = await asyncio.gather(*(_ingest(stub, s) for s in streams if s))
            # Windows still open close on the lane clock; end them as a quiet lane would.
            app.engine.flush()
            alerts = list(app.engine.alerts.alerts.values())
        finally:
            await running.stop()
    return alerts, sum(counts)


async def _ingest(stub: fusion_pb2_grpc.FusionServiceStub, stream: list[ev.LaneEvent]) -> int:
    """One lane's Ingest stream, batch by batch, each acknowledged; returns the rejections."""
    rejected = 0
    call = stub.Ingest(timeout=DEADLINE_S * 20)
    for batch in batches([event_to_pb(e) for e in stream], BATCH):
        await call.write(fusion_pb2.IngestRequest(events=batch))
        response = await asyncio.wait_for(call.read(), DEADLINE_S)
        rejected += len(response.rejections)
    await call.done_writing()
    while await call.read() is not grpc.aio.EOF:
        pass
    return rejected
