"""Identity: resolved_by is the token's identity; lane-agent tokens may be bound to lanes."""

from __future__ import annotations

import grpc
from lanesight.common.auth import bearer_token_interceptors, hash_token
from lanesight.common.config import AuthConfig, LanesightConfig
from lanesight.common.server import start_server
from lanesight.fusion.app import create_app
from lanesight.fusion.config import FusionConfig
from lanesight.fusion.convert import event_to_pb
from lanesight.v1 import alerts_pb2, fusion_pb2, fusion_pb2_grpc

from tests.conftest import assert_eventually
from tests.fusion.scripts import Script
from tests.security.test_store_scoping import DEMO, code_of, ingest

STORE = "store-1"
#: name -> (role, lanes); each token is "lst_identity_<name>".
IDENTITIES = {
    "agent-lane-01": ("lane_agent", ["lane-01"]),
    "attendant-1": ("attendant", []),
}


def _secret(name: str) -> str:
    return f"lst_identity_{name}_8c1d4e"


def _auth(tmp_path) -> AuthConfig:
    lines = ["tokens:"]
    for name, (role, lanes) in IDENTITIES.items():
        lines += [f"  - name: {name}", f"    role: {role}", f'    stores: ["{STORE}"]']
        if lanes:
            lines.append("    lanes: [" + ", ".join(f'"{lane}"' for lane in lanes) + "]")
        lines.append(f"    sha256: {hash_token(_secret(name))}")
    path = tmp_path / "tokens.yaml"
    path.write_text("\n".join(lines) + "\n")
    return AuthConfig(enabled=True, tokens_file=path)


def _stub(running, name: str):
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{running.port}", interceptors=bearer_token_interceptors(_secret(name))
    )
    return channel, fusion_pb2_grpc.FusionServiceStub(channel)


def _unscanned_gain(lane_id: str):
    s = Script(lane=lane_id)
    s.scan(DEMO["Arla-Medium-Fat-Milk"], weight_mg=1_066_000)
    s.place(905_000, dt_ms=3000)
    s.pay(wait_ms=8000)
    return [event_to_pb(e) for e in s.events(store_id=STORE)]


async def test_lane_bound_token_and_resolved_by_the_tokens_identity(tmp_path):
    config = LanesightConfig(
        store_id=STORE,
        auth=_auth(tmp_path),
        fusion=FusionConfig(
            store_path=tmp_path / "fusion.sqlite", forward_to_reporting=False, tick_ms=20
        ),
    )
    running = await start_server(create_app(config), config, port=0)
    agent_channel, agent = _stub(running, "agent-lane-01")
    attendant_channel, attendant = _stub(running, "attendant-1")
    try:
        call = agent.Ingest(timeout=10)
        await call.write(fusion_pb2.IngestRequest(events=_unscanned_gain("lane-02")[:3]))
        try:
            await call.read()
            raise AssertionError("a token bound to lane-01 fed lane-02")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() is grpc.StatusCode.PERMISSION_DENIED
            assert "lane_id" in exc.details() and "lane-02" in exc.details()
        await ingest(agent, _unscanned_gain("lane-01"))
        alerts = running.app.engine.alerts.alerts
        alert_id = (await assert_eventually(lambda: list(alerts)))[0]

        acked = await attendant.AcknowledgeAlert(
            fusion_pb2.AcknowledgeAlertRequest(alert_id=alert_id, attendant_id="mallory"),
            timeout=5,
        )
        assert acked.alert.acknowledged_by == "attendant-1"
        done = await attendant.ResolveAlert(
            fusion_pb2.ResolveAlertRequest(
                alert_id=alert_id,
                disposition=alerts_pb2.DISPOSITION_HONEST_MISTAKE,
                attendant_id="mallory",
                note="customer had two",
            ),
            timeout=5,
        )
        assert done.alert.resolved_by == "attendant-1"
        assert done.alert.resolution_note == "customer had two (attendant_id: mallory)"
        resolve_again = attendant.ResolveAlert(
            fusion_pb2.ResolveAlertRequest(
                alert_id="no-such-alert", disposition=alerts_pb2.DISPOSITION_NO_ACTION
            ),
            timeout=5,
        )
        assert await code_of(resolve_again) is grpc.StatusCode.NOT_FOUND
    finally:
        await agent_channel.close()
        await attendant_channel.close()
        await running.stop()
