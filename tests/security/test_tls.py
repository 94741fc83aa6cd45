"""TLS and mutual TLS between lanesight services, over real connections and certificates."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from lanesight.common.channels import open_channel
from lanesight.v1 import common_pb2, fusion_pb2, fusion_pb2_grpc

from tests.security.scoped_fusion import make_config, running_fusion

LANE_A = fusion_pb2.GetLaneStateRequest(lane=common_pb2.LaneRef(store_id="store-a", lane_id="1"))


def server_tls(pki, mode: str) -> dict:
    return {
        "mode": mode,
        "cert_file": pki.server_cert,
        "key_file": pki.server_key,
        "ca_file": pki.ca,
    }


def client_tls(pki, mode: str, cert=None, key=None, ca=None) -> dict:
    section = {"mode": mode, "ca_file": ca or pki.ca}
    if cert is not None:
        section |= {"cert_file": cert, "key_file": key}
    return section


async def lane_state(channel: grpc.aio.Channel) -> fusion_pb2.GetLaneStateResponse:
    return await fusion_pb2_grpc.FusionServiceStub(channel).GetLaneState(LANE_A, timeout=5)


async def test_tls_server_answers_a_client_that_trusts_its_ca(pki, tmp_path):
    async with running_fusion(make_config(tmp_path, tls=server_tls(pki, "tls"))) as server:
        client = make_config(tmp_path, tls=client_tls(pki, "tls"))
        async with open_channel(f"127.0.0.1:{server.port}", client) as channel:
            reply = await lane_state(channel)
            assert reply.state.lane.store_id == "store-a"
        # The certificate names localhost as well as 127.0.0.1.
        async with open_channel(f"localhost:{server.port}", client) as channel:
            assert (await lane_state(channel)).state.lane.lane_id == "1"


async def test_tls_client_rejects_a_server_its_ca_did_not_sign(pki, tmp_path):
    async with running_fusion(make_config(tmp_path, tls=server_tls(pki, "tls"))) as server:
        client = make_config(tmp_path, tls=client_tls(pki, "tls", ca=pki.other_ca))
        async with open_channel(f"127.0.0.1:{server.port}", client) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await lane_state(channel)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_plaintext_client_cannot_talk_to_a_tls_server(pki, tmp_path):
    async with running_fusion(make_config(tmp_path, tls=server_tls(pki, "tls"))) as server:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await lane_state(channel)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_mtls_accepts_a_client_certificate_from_the_ca(pki, tmp_path):
    async with running_fusion(make_config(tmp_path, tls=server_tls(pki, "mtls"))) as server:
        client = make_config(
            tmp_path, tls=client_tls(pki, "mtls", cert=pki.client_cert, key=pki.client_key)
        )
        async with open_channel(f"127.0.0.1:{server.port}", client) as channel:
            assert (await lane_state(channel)).state.lane.store_id == "store-a"


@pytest.mark.parametrize("certificate", ["none", "foreign CA"])
async def test_mtls_rejects_a_client_without_a_trusted_certificate(pki, tmp_path, certificate):
    async with running_fusion(make_config(tmp_path, tls=server_tls(pki, "mtls"))) as server:
        if certificate == "none":
            client = make_config(tmp_path, tls=client_tls(pki, "tls"))
        else:
            client = make_config(
                tmp_path,
                tls=client_tls(pki, "mtls", cert=pki.rogue_client_cert, key=pki.rogue_client_key),
            )
        async with open_channel(f"127.0.0.1:{server.port}", client) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await lane_state(channel)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_plaintext_health_port_serves_health_only(pki, tmp_path):
    """Kubelet gRPC probes speak plaintext: a separate listener answers health and nothing else."""
    config = make_config(tmp_path, tls={**server_tls(pki, "mtls"), "plaintext_health_port": 0})
    async with running_fusion(config) as server:
        assert server.health_port and server.health_port != server.port
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.health_port}") as channel:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="lanesight.v1.FusionService"), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await lane_state(channel)
            assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        await server.stop()
        # After stop the health listener is closed too.
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.health_port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=2
                )
