"""Produce suggestions at the scale, end to end: simulated produce scale → real lane agent →
real VisionService (shipped ONNX model) → WatchProduceSuggestions on the DeviceService."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import cv2
import grpc
import numpy as np
import pytest
import pytest_asyncio
from lanesight.common.config import LanesightConfig
from lanesight.common.server import RunningServer, start_server
from lanesight.device.config import CameraConfig, ProduceSuggestionsConfig, ZoneConfig
from lanesight.device.suggestions import PluChoice, crop_zone, load_plu_choices, rank_plus
from lanesight.simulation.devices import LaneSimulators, ScaleSpec
from lanesight.v1 import common_pb2, device_pb2, device_pb2_grpc, vision_pb2, vision_pb2_grpc
from lanesight.vision.app import create_app
from lanesight.vision.config import VisionConfig
from pydantic import ValidationError

from tests.device.conftest import agent_config, start_agent

from .conftest import GROCERY_DIR

module_loop = pytest.mark.asyncio(loop_scope="module")

SCALE_ZONE = [(0.55, 0.1), (0.95, 0.1), (0.95, 0.9), (0.55, 0.9)]
BANANA = GROCERY_DIR / "val" / "Fruit" / "Banana" / "Banana_001.jpg"


class ScaleCamera:
    """A fixed overhead view: a grey counter with a photo on the produce scale's area."""

    def __init__(self) -> None:
        self.frame = np.full((360, 640, 3), 90, dtype=np.uint8)

    def show(self, photo_path) -> None:
        frame = np.full((360, 640, 3), 90, dtype=np.uint8)
        if photo_path is not None:
            x0, y0 = int(0.55 * 640), int(0.1 * 360)
            x1, y1 = int(0.95 * 640), int(0.9 * 360)
            photo = cv2.imread(str(photo_path))
            frame[y0:y1, x0:x1] = cv2.resize(photo, (x1 - x0, y1 - y0))
        self.frame = frame

    def read(self):
        return True, self.frame.copy()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def vision() -> AsyncIterator[RunningServer]:
    config = LanesightConfig(vision=VisionConfig(intra_op_threads=2, max_wait_ms=5.0))
    running = await start_server(create_app(config), config, port=0)
    yield running
    await running.stop()


def lane(tmp_path, vision_port: int, scale_url_peripherals, **suggestions) -> LanesightConfig:
    camera = CameraConfig(
        id="cam-produce",
        source="python:unused",
        zones=[ZoneConfig(zone="scan", points=[(0, 0), (1, 0), (1, 1), (0, 1)])],
        max_fps=15,
    )
    suggestions.setdefault("enabled", True)
    suggestions.setdefault("demo_catalog", True)
    return agent_config(
        tmp_path,
        vision=f"127.0.0.1:{vision_port}",
        peripherals=scale_url_peripherals,
        cameras=[camera],
        produce_suggestions=ProduceSuggestionsConfig(scale_zone=SCALE_ZONE, **suggestions),
    )


async def next_suggestions(stream) -> device_pb2.ProduceSuggestions:
    response = await asyncio.wait_for(stream.read(), 30)
    assert response is not grpc.aio.EOF
    return response.suggestions


@module_loop
async def test_a_settled_banana_gets_ranked_plu_suggestions_with_prices(tmp_path, vision) -> None:
    sims = await LaneSimulators.start(
        scanner=None, scales=[ScaleSpec("scale-produce", "8217", "produce")], printer=None
    )
    camera = ScaleCamera()
    config = lane(tmp_path, vision.port, sims.peripherals())
    agent = await start_agent(config, frame_sources={"cam-produce": camera})
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{agent.port}") as channel:
            device = device_pb2_grpc.DeviceServiceStub(channel)
            stream = device.WatchProduceSuggestions(device_pb2.WatchProduceSuggestionsRequest())
            await asyncio.sleep(0.3)  # the subscription and the first frames are in place
            camera.show(BANANA)
            sims.scale("scale-produce").set_weight(1_234_000, stable=True)
            got = await next_suggestions(stream)

            assert got.scale_id == "scale-produce" and got.camera_id == "cam-produce"
            assert got.weight_mg == 1_234_000 and got.suggestion_id and not got.cleared
            assert 0 < got.latency_ms < 10_000
            assert 1 <= len(got.suggestions) <= 5
            plus = [s.plu for s in got.suggestions]
            assert "4011" in plus[:3], plus  # Bananas
            confidences = [s.confidence for s in got.suggestions]
            assert confidences == sorted(confidences, reverse=True)
            assert all(0.01 <= c <= 1.0 for c in confidences)
            banana = got.suggestions[plus.index("4011")]
            assert banana.description == "Bananas" and banana.vision_label == "Banana"
            assert banana.unit_of_measure == common_pb2.UNIT_OF_MEASURE_KILOGRAM
            assert (banana.price_per_kg.amount_minor, banana.price_per_kg.currency_code) == (
                130,
                "USD",
            )

            # The same crop, classified directly, ranks the same way.
            ok, jpeg = cv2.imencode(".jpg", crop_zone(camera.frame, SCALE_ZONE))
            async with grpc.aio.insecure_channel(f"127.0.0.1:{vision.port}") as vision_channel:
                direct = await vision_pb2_grpc.VisionServiceStub(vision_channel).ClassifyImages(
                    vision_pb2.ClassifyImagesRequest(images=[jpeg.tobytes()], top_k=20)
                )
            labels = [(label.label, label.score) for label in direct.results[0].labels]
            expected = rank_plus(labels, load_plu_choices(config.device.produce_suggestions), 5)
            assert plus[0] == expected[0].choice.plu

            # A display that connects while the item is on the scale gets it at once.
            late = device.WatchProduceSuggestions(device_pb2.WatchProduceSuggestionsRequest())
            assert (await next_suggestions(late)).suggestion_id == got.suggestion_id

            # Taking the item off clears the suggestions on every display.
            sims.scale("scale-produce").set_weight(0, stable=True)
            cleared = await next_suggestions(stream)
            assert cleared.cleared and cleared.suggestion_id == got.suggestion_id
            assert not cleared.suggestions
            assert (await next_suggestions(late)).cleared
            stream.cancel()
            late.cancel()
    finally:
        await agent.stop()
        await sims.stop()


@module_loop
async def test_with_vision_away_the_display_is_told_why(tmp_path) -> None:
    sims = await LaneSimulators.start(
        scanner=None, scales=[ScaleSpec("scale-produce", "8217", "produce")], printer=None
    )
    camera = ScaleCamera()
    camera.show(BANANA)
    config = lane(tmp_path, 1, sims.peripherals(), timeout_s=0.5)  # nothing listens on :1
    agent = await start_agent(config, frame_sources={"cam-produce": camera})
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{agent.port}") as channel:
            device = device_pb2_grpc.DeviceServiceStub(channel)
            stream = device.WatchProduceSuggestions(device_pb2.WatchProduceSuggestionsRequest())
            await asyncio.sleep(0.3)
            sims.scale("scale-produce").set_weight(800_000, stable=True)
            got = await next_suggestions(stream)
            assert not got.suggestions and got.detail.startswith("vision unavailable")
            stream.cancel()
    finally:
        await agent.stop()
        await sims.stop()


@module_loop
async def test_a_lane_without_suggestions_refuses_the_watch(tmp_path) -> None:
    agent = await start_agent(agent_config(tmp_path))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{agent.port}") as channel:
            stream = device_pb2_grpc.DeviceServiceStub(channel).WatchProduceSuggestions(
                device_pb2.WatchProduceSuggestionsRequest()
            )
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await stream.read()
            assert failure.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "produce_suggestions" in failure.value.details()
    finally:
        await agent.stop()


def test_plus_are_ranked_by_the_summed_scores_of_their_labels() -> None:
    def choice(plu: str, *labels: str) -> PluChoice:
        return PluChoice(plu, f"SKU-{plu}", plu, labels, True, (100, "USD"), None)

    choices = [choice("1", "Lime"), choice("2", "Lemon", "Meyer-Lemon"), choice("3", "Kiwi")]
    labels = [("Lime", 0.4), ("Lemon", 0.3), ("Meyer-Lemon", 0.2), ("Banana", 0.1)]
    ranked = rank_plus(labels, choices, limit=5, min_confidence=0.05)
    assert [(r.choice.plu, round(r.confidence, 3), r.label) for r in ranked] == [
        ("2", 0.5, "Lemon"),
        ("1", 0.4, "Lime"),
    ]
    assert [r.choice.plu for r in rank_plus(labels, choices, limit=1)] == ["2"]
    assert rank_plus(labels, choices, limit=5, min_confidence=0.45)[0].choice.plu == "2"


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValidationError, match="catalog_files"):
        ProduceSuggestionsConfig(enabled=True)
    with pytest.raises(ValidationError, match="scale_zone"):
        ProduceSuggestionsConfig(scale_zone=[(0, 0), (1.5, 0), (1, 1)])
