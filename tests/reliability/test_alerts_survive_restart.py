"""Alerts open when fusion stops can still be acknowledged and resolved after it restarts."""

from __future__ import annotations

import grpc
from lanesight.common.config import load_config
from lanesight.common.server import start_server
from lanesight.fusion.app import create_app
from lanesight.v1 import alerts_pb2, fusion_pb2, fusion_pb2_grpc

from tests.conftest import assert_eventually
from tests.fusion.test_fusion_forwarder import start_fake

from .test_identity import _unscanned_gain


async def test_an_alert_open_at_a_restart_is_resolved_and_reporting_hears_of_it(tmp_path):
    server, reporting, port = await start_fake()
    config = load_config(
        None,
        environ={
            "LANESIGHT_FUSION__STORE_PATH": str(tmp_path / "fusion.sqlite"),
            "LANESIGHT_PEERS__REPORTING": f"127.0.0.1:{port}",
            "LANESIGHT_FUSION__TICK_MS": "20",
        },
    )
    running = await start_server(create_app(config), config, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = fusion_pb2_grpc.FusionServiceStub(channel)
            call = stub.Ingest(timeout=10)
            await call.write(fusion_pb2.IngestRequest(events=_unscanned_gain("lane-01")))
            await call.read()
            await call.done_writing()
        alerts = running.app.engine.alerts.alerts
        [alert_id] = await assert_eventually(lambda: list(alerts))
        await assert_eventually(lambda: any(a.alert_id == alert_id for a in reporting.alerts))
        await running.stop()  # fusion restarts: its engine forgets the alert

        running = await start_server(create_app(config), config, port=0)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = fusion_pb2_grpc.FusionServiceStub(channel)
            acked = await stub.AcknowledgeAlert(
                fusion_pb2.AcknowledgeAlertRequest(alert_id=alert_id, attendant_id="att-1"),
                timeout=5,
            )
            assert acked.alert.state == alerts_pb2.ALERT_STATE_ACKNOWLEDGED
            done = await stub.ResolveAlert(
                fusion_pb2.ResolveAlertRequest(
                    alert_id=alert_id,
                    disposition=alerts_pb2.DISPOSITION_RECOVERED,
                    attendant_id="att-1",
                ),
                timeout=5,
            )
            assert done.alert.state == alerts_pb2.ALERT_STATE_RESOLVED
            assert done.alert.resolved_by == "att-1"
            assert done.alert.amount_recovered == done.alert.amount_at_risk
            assert done.alert.revision == acked.alert.revision + 1
            again = stub.ResolveAlert(
                fusion_pb2.ResolveAlertRequest(
                    alert_id=alert_id, disposition=alerts_pb2.DISPOSITION_RECOVERED
                ),
                timeout=5,
            )
            try:
                await again
                raise AssertionError("a resolved restored alert was resolved twice")
            except grpc.aio.AioRpcError as exc:
                assert exc.code() is grpc.StatusCode.NOT_FOUND

        def resolved_in_reporting() -> bool:
            revisions = [a for a in reporting.alerts if a.alert_id == alert_id]
            return revisions[-1].state == alerts_pb2.ALERT_STATE_RESOLVED

        await assert_eventually(resolved_in_reporting)
        await running.stop()
        running = await start_server(create_app(config), config, port=0)
        assert running.app.restored_alerts == {}  # resolved: not restored again
    finally:
        await running.stop()
        await server.stop(0)
