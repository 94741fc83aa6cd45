"""Bearer tokens over mutual TLS: authentication, roles per RPC, store scoping, no leaks."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from lanesight.common.auth import TokensFileError, hash_token
from lanesight.common.channels import open_channel
from lanesight.common.server import start_server
from lanesight.v1 import common_pb2, events_pb2, fusion_pb2, fusion_pb2_grpc

from tests.security.conftest import TOKENS, token
from tests.security.scoped_fusion import ScopedFusionApp, make_config, running_fusion


def mtls(pki, server: bool) -> dict:
    cert, key = (pki.server_cert, pki.server_key) if server else (pki.client_cert, pki.client_key)
    return {"mode": "mtls", "cert_file": cert, "key_file": key, "ca_file": pki.ca}


@pytest.fixture
async def fusion(pki, tmp_path, tokens_file):
    config = make_config(
        tmp_path, tls=mtls(pki, server=True), auth={"enabled": True, "tokens_file": tokens_file}
    )
    async with running_fusion(config) as server:
        yield server


def client_config(pki, tmp_path: Path, name: str | None):
    """A client config over mTLS presenting the named test token (or none)."""
    auth = {}
    if name is not None:
        path = tmp_path / f"{name}.token"
        path.write_text(token(name) + "\n")
        auth["client_token_file"] = path
    return make_config(tmp_path, tls=mtls(pki, server=False), auth=auth)


def stub_for(fusion, pki, tmp_path, name: str | None) -> tuple[grpc.aio.Channel, object]:
    channel = open_channel(f"127.0.0.1:{fusion.port}", client_config(pki, tmp_path, name))
    return channel, fusion_pb2_grpc.FusionServiceStub(channel)


def lane(store: str) -> fusion_pb2.GetLaneStateRequest:
    return fusion_pb2.GetLaneStateRequest(lane=common_pb2.LaneRef(store_id=store, lane_id="1"))


async def code_of(call) -> grpc.StatusCode:
    try:
        result = call()
        if hasattr(result, "__aiter__"):
            async for _ in result:
                pass
        else:
            await result
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


async def test_no_token_is_unauthenticated(fusion, pki, tmp_path):
    channel, stub = stub_for(fusion, pki, tmp_path, None)
    async with channel:
        assert await code_of(lambda: stub.GetLaneState(lane("store-a"), timeout=5)) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        watch = fusion_pb2.WatchAlertsRequest(store_ids=["store-a"])
        assert await code_of(lambda: stub.WatchAlerts(watch, timeout=5)) == (
            grpc.StatusCode.UNAUTHENTICATED
        )


@pytest.mark.parametrize(
    "header",
    [
        "Bearer lst_not-a-known-token",
        "Bearer " + hash_token(TOKENS["attendant-a"][0]),  # the digest is not the token
        "Basic " + TOKENS["attendant-a"][0],
        "Bearer ",
        TOKENS["attendant-a"][0],
    ],
    ids=["unknown", "digest-as-token", "wrong-scheme", "empty", "no-scheme"],
)
async def test_bad_token_is_unauthenticated(fusion, pki, tmp_path, header):
    channel, stub = stub_for(fusion, pki, tmp_path, None)
    async with channel:
        code = await code_of(
            lambda: stub.GetLaneState(
                lane("store-a"), metadata=(("authorization", header),), timeout=5
            )
        )
        assert code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    ("name", "rpc"),
    [("pos-a", "ResolveAlert"), ("attendant-a", "Ingest"), ("lane-a", "ResolveAlert")],
)
async def test_wrong_role_is_permission_denied(fusion, pki, tmp_path, name, rpc):
    channel, stub = stub_for(fusion, pki, tmp_path, name)
    async with channel:
        if rpc == "ResolveAlert":
            request = fusion_pb2.ResolveAlertRequest(alert_id="alert-a1")
            code = await code_of(lambda: stub.ResolveAlert(request, timeout=5))
        else:

            async def batches():
                yield fusion_pb2.IngestRequest()
                # No half-close racing the server's refusal: a client write after the
                # server ended the call turns its status into INTERNAL (grpc/grpc#36066).
                await asyncio.Event().wait()

            code = await code_of(lambda: stub.Ingest(batches(), timeout=5))
        assert code == grpc.StatusCode.PERMISSION_DENIED


async def test_store_a_token_cannot_act_on_store_b(fusion, pki, tmp_path):
    channel, stub = stub_for(fusion, pki, tmp_path, "attendant-a")
    async with channel:
        resolve_b = fusion_pb2.ResolveAlertRequest(alert_id="alert-b1")
        assert await code_of(lambda: stub.ResolveAlert(resolve_b, timeout=5)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        watch_b = fusion_pb2.WatchAlertsRequest(store_ids=["store-a", "store-b"])
        assert await code_of(lambda: stub.WatchAlerts(watch_b, timeout=5)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        assert await code_of(lambda: stub.GetLaneState(lane("store-b"), timeout=5)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )


async def test_chain_wide_changes_need_a_chain_wide_token(fusion, pki, tmp_path, tokens_file):
    channel, stub = stub_for(fusion, pki, tmp_path, "pos-a")
    async with channel:
        own = fusion_pb2.UpsertCatalogItemsRequest(store_id="store-a")
        assert (await stub.UpsertCatalogItems(own, timeout=5)).inserted == 0
        chain = fusion_pb2.UpsertCatalogItemsRequest(store_id="")
        assert await code_of(lambda: stub.UpsertCatalogItems(chain, timeout=5)) == (
            grpc.StatusCode.PERMISSION_DENIED
        )


async def test_lane_agent_cannot_feed_another_stores_events(fusion, pki, tmp_path):
    channel, stub = stub_for(fusion, pki, tmp_path, "lane-a")
    async with channel:

        def event(store: str, sequence: int) -> events_pb2.LaneEvent:
            return events_pb2.LaneEvent(
                event_id=f"e-{store}-{sequence}", store_id=store, lane_id="1", sequence=sequence
            )

        async def batches():
            yield fusion_pb2.IngestRequest(events=[event("store-a", 1)])
            yield fusion_pb2.IngestRequest(events=[event("store-b", 2)])
            await asyncio.Event().wait()  # no half-close racing the refusal (grpc/grpc#36066)

        call = stub.Ingest(batches(), timeout=5)
        first = await call.read()
        assert first.acked_sequence == 1
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_right_token_is_served_in_its_store(fusion, pki, tmp_path):
    channel, stub = stub_for(fusion, pki, tmp_path, "attendant-a")
    async with channel:
        resolved = await stub.ResolveAlert(
            fusion_pb2.ResolveAlertRequest(alert_id="alert-a1"), timeout=5
        )
        # The servicer sees who called (the token's name), for audit fields.
        assert (resolved.alert.store_id, resolved.alert.resolved_by) == ("store-a", "attendant-a")
        # "Every store" is narrowed to the caller's stores rather than refused.
        seen = [r.alert async for r in stub.WatchAlerts(fusion_pb2.WatchAlertsRequest(), timeout=5)]
        assert [(a.alert_id, a.acknowledged_by) for a in seen] == [("alert-a1", "attendant-a")]
        state = await stub.GetLaneState(lane("store-a"), timeout=5)
        assert state.state.lane.store_id == "store-a"


async def test_chain_wide_token_sees_every_store(fusion, pki, tmp_path):
    channel, stub = stub_for(fusion, pki, tmp_path, "manager-chain")
    async with channel:
        seen = [r.alert async for r in stub.WatchAlerts(fusion_pb2.WatchAlertsRequest(), timeout=5)]
        assert sorted(a.store_id for a in seen) == ["store-a", "store-b"]
        resolved = await stub.ResolveAlert(
            fusion_pb2.ResolveAlertRequest(alert_id="alert-b1"), timeout=5
        )
        assert resolved.alert.resolved_by == "manager-chain"


async def test_lane_agent_ingest_stream_is_served(fusion, pki, tmp_path):
    channel, stub = stub_for(fusion, pki, tmp_path, "lane-a")
    async with channel:

        async def batches():
            for sequence in (1, 2, 3):
                yield fusion_pb2.IngestRequest(
                    events=[
                        events_pb2.LaneEvent(
                            event_id=f"e{sequence}", store_id="store-a", sequence=sequence
                        )
                    ]
                )

        acks = [r.acked_sequence async for r in stub.Ingest(batches(), timeout=5)]
        assert acks == [1, 2, 3]


async def test_health_and_reflection_need_no_token(fusion, pki, tmp_path):
    channel, _ = stub_for(fusion, pki, tmp_path, None)
    async with channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

        async def ask():
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        async for response in stub.ServerReflectionInfo(ask(), timeout=5):
            names = {s.name for s in response.list_services_response.service}
            assert "lanesight.v1.FusionService" in names
            break


async def test_plaintext_dev_channel_sends_the_token_too(pki, tmp_path, tokens_file):
    """Plaintext (explicit, loopback) still authenticates: the token goes as metadata."""
    server_config = make_config(tmp_path, auth={"enabled": True, "tokens_file": tokens_file})
    async with running_fusion(server_config) as server:
        path = tmp_path / "lane.token"
        path.write_text(token("lane-a"))
        client = make_config(tmp_path, auth={"client_token_file": path})
        async with open_channel(f"127.0.0.1:{server.port}", client) as channel:
            stub = fusion_pb2_grpc.FusionServiceStub(channel)
            assert (await stub.GetLaneState(lane("store-a"), timeout=5)).state.lane.lane_id
            seen = [r async for r in stub.WatchAlerts(fusion_pb2.WatchAlertsRequest(), timeout=5)]
            assert [r.alert.store_id for r in seen] == ["store-a"]

            async def batches():
                yield fusion_pb2.IngestRequest(
                    events=[events_pb2.LaneEvent(event_id="e1", store_id="store-a", sequence=7)]
                )

            acks = [r.acked_sequence async for r in stub.Ingest(batches(), timeout=5)]
            assert acks == [7]
        no_token = make_config(tmp_path)
        async with open_channel(f"127.0.0.1:{server.port}", no_token) as channel:
            stub = fusion_pb2_grpc.FusionServiceStub(channel)
            assert await code_of(lambda: stub.GetLaneState(lane("store-a"), timeout=5)) == (
                grpc.StatusCode.UNAUTHENTICATED
            )


async def test_tokens_never_appear_in_logs(pki, tmp_path, tokens_file, caplog):
    caplog.set_level(logging.DEBUG)
    config = make_config(
        tmp_path, tls=mtls(pki, server=True), auth={"enabled": True, "tokens_file": tokens_file}
    )
    async with running_fusion(config) as server:
        for name in ("attendant-a", "pos-a", "lane-a"):
            channel, stub = stub_for(server, pki, tmp_path, name)
            async with channel:
                await code_of(lambda s=stub: s.GetLaneState(lane("store-b"), timeout=5))
                await code_of(
                    lambda s=stub: s.ResolveAlert(
                        fusion_pb2.ResolveAlertRequest(alert_id="alert-a1"), timeout=5
                    )
                )
        channel, stub = stub_for(server, pki, tmp_path, None)
        async with channel:
            for secret, *_ in TOKENS.values():
                header = ("authorization", f"Bearer {secret}x")
                await code_of(
                    lambda h=header: stub.GetLaneState(lane("store-a"), metadata=(h,), timeout=5)
                )
    text = caplog.text
    # Something was logged about each kind of refusal, and no token or digest of one.
    assert "invalid bearer token" in text and "may not call" in text
    assert "may not" in text and "store-b" in text
    for secret, *_ in TOKENS.values():
        assert secret not in text
        assert hash_token(secret) not in text


async def test_auth_on_without_a_readable_tokens_file_refuses_to_start(tmp_path):
    config = make_config(tmp_path, auth={"enabled": True, "tokens_file": tmp_path / "missing.yaml"})
    with pytest.raises(TokensFileError, match="cannot read"):
        await start_server(ScopedFusionApp(), config, port=0)
