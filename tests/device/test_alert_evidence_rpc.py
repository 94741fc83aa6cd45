"""DeviceService.GetAlertEvidence: the face-blurred frames kept around an alert, read back
over gRPC (for the attendant console); store scoping, missing evidence, bad ids."""

from __future__ import annotations

import time

import cv2
import grpc
import numpy as np
import pytest
from lanesight.common.auth import hash_token
from lanesight.common.config import AuthConfig
from lanesight.device.camera.motion import encode_jpeg
from lanesight.device.evidence import BufferedFrame, write_alert_evidence
from lanesight.device.privacy import FaceBlurrer
from lanesight.v1 import device_pb2, device_pb2_grpc

from tests.device.conftest import agent_config, start_agent
from tests.device.test_evidence import astronaut_bgr, grocery_bgr

ATTENDANT_A, ATTENDANT_B = "lst_evidence-attendant-a-1f", "lst_evidence-attendant-b-2e"


async def test_evidence_frames_come_back_blurred_oldest_first_and_only_to_the_store(tmp_path):
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text(
        "tokens:\n"
        f"  - {{name: att-a, role: attendant, stores: [store-7], sha256: {hash_token(ATTENDANT_A)}}}\n"
        f"  - {{name: att-b, role: attendant, stores: [store-8], sha256: {hash_token(ATTENDANT_B)}}}\n"
    )
    config = agent_config(tmp_path).model_copy(
        update={"auth": AuthConfig(enabled=True, tokens_file=tokens)}
    )
    now = time.time_ns()
    portrait, banana = encode_jpeg(astronaut_bgr(), 90), encode_jpeg(grocery_bgr(), 90)
    written = write_alert_evidence(
        tmp_path / "evidence",
        "alert-9",
        {
            "cam-1": [BufferedFrame(now - 2_000_000_000, portrait)],
            "cam-2": [BufferedFrame(now - 1_000_000_000, banana)],
        },
        FaceBlurrer(),
        {"store_id": "store-7", "lane_id": "lane-3"},
    )
    assert written is not None and written.faces_blurred == 1
    running = await start_agent(config)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = device_pb2_grpc.DeviceServiceStub(channel)

            async def call(alert_id: str, token: str = ATTENDANT_A):
                return await stub.GetAlertEvidence(
                    device_pb2.GetAlertEvidenceRequest(alert_id=alert_id),
                    metadata=(("authorization", f"Bearer {token}"),),
                    timeout=5,
                )

            reply = await call("alert-9")
            assert [f.camera_id for f in reply.frames] == ["cam-1", "cam-2"]
            assert reply.frames_left_out == 0
            assert [f.faces_blurred for f in reply.frames] == [1, 0]
            assert abs(reply.frames[0].captured_at.ToNanoseconds() - (now - 2_000_000_000)) < 2e6
            # What comes back is what was stored: the portrait blurred, not the original.
            stored = (tmp_path / "evidence" / "alert-9" / "cam-1-1.jpg").read_bytes()
            assert reply.frames[0].jpeg == stored and stored != portrait
            image = cv2.imdecode(np.frombuffer(reply.frames[0].jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None and FaceBlurrer().detect(image) == []
            assert reply.frames[1].jpeg == banana  # no face: kept as captured
            for alert_id, token, code in (
                ("alert-9", ATTENDANT_B, grpc.StatusCode.PERMISSION_DENIED),
                ("alert-10", ATTENDANT_A, grpc.StatusCode.NOT_FOUND),
                ("../alert-9", ATTENDANT_A, grpc.StatusCode.NOT_FOUND),
                ("", ATTENDANT_A, grpc.StatusCode.INVALID_ARGUMENT),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as failed:
                    await call(alert_id, token)
                assert failed.value.code() is code, (alert_id, failed.value.details())
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await call("")
            assert "alert_id" in missing.value.details()
    finally:
        await running.stop()
