"""The real VisionService on port 0 with the shipped ONNX model and synthetic lane video."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import cv2
import grpc
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from lanesight.common.config import LanesightConfig
from lanesight.common.server import RunningServer, start_server
from lanesight.simulation.camera import SyntheticLaneCamera, encode_jpeg
from lanesight.v1 import common_pb2, events_pb2, vision_pb2, vision_pb2_grpc
from lanesight.vision.app import create_app
from lanesight.vision.config import VisionConfig

from tests.conftest import assert_eventually

from .conftest import GROCERY_DIR

pytestmark = pytest.mark.asyncio(loop_scope="module")

ZONE = {
    "cart": common_pb2.LANE_ZONE_CART,
    "scan": common_pb2.LANE_ZONE_SCAN,
    "bagging": common_pb2.LANE_ZONE_BAGGING,
}
ENTERED, LEFT = events_pb2.ZONE_DIRECTION_ENTERED, events_pb2.ZONE_DIRECTION_LEFT
DEADLINE_S = 60


def lane_config(vision: VisionConfig) -> LanesightConfig:
    return LanesightConfig(vision=vision)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def enrol_store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("vision") / "enrolled.npz"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def server(enrol_store) -> AsyncIterator[RunningServer]:
    # A deep frame queue: these tests check results, test_overload_* checks dropping.
    vision = VisionConfig(
        max_wait_ms=40.0,
        enrolment_store_path=enrol_store,
        intra_op_threads=2,
        stream_frame_queue_max=256,
    )
    running = await start_server(create_app(lane_config(vision)), lane_config(vision), port=0)
    yield running
    await running.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def stub(server) -> AsyncIterator[vision_pb2_grpc.VisionServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield vision_pb2_grpc.VisionServiceStub(channel)


def stream_config(camera: SyntheticLaneCamera, lane_id: str = "7", top_k: int = 3):
    zones = [
        vision_pb2.ZonePolygon(zone=ZONE[name], points=[vision_pb2.Point(x=x, y=y) for x, y in pts])
        for name, pts in camera.zones()
    ]
    return vision_pb2.AnalyzeRequest(
        config=vision_pb2.StreamConfig(
            lane=common_pb2.LaneRef(store_id="s1", lane_id=lane_id),
            camera_id=f"cam-{lane_id}",
            zones=zones,
            top_k=top_k,
        )
    )


async def camera_requests(camera: SyntheticLaneCamera, until_s: float, pace_s: float = 0.004):
    """The config, then every frame up to until_s as JPEG with its capture time."""
    yield stream_config(camera)
    frame_id = 0
    while camera.now_s < until_s:
        t_s = camera.now_s
        _, frame = camera.read()
        frame_id += 1
        stamp = Timestamp()
        stamp.FromNanoseconds(int(1_700_000_000e9 + t_s * 1e9))
        yield vision_pb2.AnalyzeRequest(
            frame=vision_pb2.Frame(frame_id=frame_id, captured_at=stamp, jpeg=encode_jpeg(frame))
        )
        # Roughly camera pace, fast enough to keep the test short.
        await asyncio.sleep(pace_s)


async def analyze(stub, requests) -> list[vision_pb2.AnalyzeResponse]:
    return [response async for response in stub.Analyze(requests, timeout=DEADLINE_S)]


def observations(responses, kind: str):
    return [
        (r.frame_id, getattr(o, kind))
        for r in responses
        for o in r.observations
        if o.WhichOneof("observation") == kind
    ]


async def test_an_item_crossing_the_lane_is_tracked_and_recognised(stub) -> None:
    camera = SyntheticLaneCamera(background_seed=5, grocery_dir=GROCERY_DIR)
    # A held-out (val) photo: the model never trained on it.
    photo = GROCERY_DIR / "val" / "Fruit" / "Apple" / "Granny-Smith" / "Granny-Smith_001.jpg"
    camera.add_item(photo, 1.0, "cart", "bagging", duration_s=3.0, size_fraction=0.35)
    responses = await analyze(stub, camera_requests(camera, 5.0))

    crossings = [
        (c.track_id, c.zone, c.direction) for _, c in observations(responses, "zone_crossing")
    ]
    assert crossings == [
        ("1", ZONE["cart"], ENTERED),
        ("1", ZONE["cart"], LEFT),
        ("1", ZONE["scan"], ENTERED),
        ("1", ZONE["scan"], LEFT),
        ("1", ZONE["bagging"], ENTERED),
    ]
    counts = [(c.zone, c.count) for _, c in observations(responses, "zone_item_count")]
    assert counts[-1] == (ZONE["bagging"], 1)

    recognised = [r for _, r in observations(responses, "item_recognized")]
    # One ItemRecognized per zone entered; later ones of a zone are updates (bounded).
    visits = [
        r.zone for i, r in enumerate(recognised) if i == 0 or recognised[i - 1].zone != r.zone
    ]
    assert visits == [ZONE["cart"], ZONE["scan"], ZONE["bagging"]]
    assert len(recognised) <= 3 * (1 + VisionConfig().recognition_updates_max)
    for item in recognised:
        assert item.camera_id == "cam-7" and item.track_id == "1"
        assert len(item.labels) == 3
        scores = [label.score for label in item.labels]
        assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= scores[0] <= 1
        assert all(label.coarse_label for label in item.labels)
    # A real model on a real photo: the apple is recognised on the scanner.
    scan = [r for r in recognised if r.zone == ZONE["scan"]][0]
    assert (scan.labels[0].label, scan.labels[0].coarse_label) == ("Granny-Smith", "Apple"), scan
    # Every frame was analysed and answered, echoing ids and capture times.
    frame_ids = sorted({r.frame_id for r in responses})
    assert frame_ids == list(range(1, 76))
    assert all(r.dropped_frames == 0 and r.HasField("captured_at") for r in responses)
    health = [h.health for _, h in observations(responses, "camera_health_changed")]
    assert health == [events_pb2.CAMERA_HEALTH_OK]


async def test_a_barcode_on_an_item_in_view_is_decoded(stub) -> None:
    camera = SyntheticLaneCamera(background_seed=6, width=960, height=540, grocery_dir=GROCERY_DIR)
    camera.add_item(
        "Arla-Standard-Milk", 0.8, "cart", "scan", 1.5, size_fraction=0.5, barcode="036602301467"
    )
    responses = await analyze(stub, camera_requests(camera, 3.0))
    seen = [b for _, b in observations(responses, "barcode_seen")]
    assert [(b.data, b.gtin, b.symbology, b.track_id) for b in seen] == [
        ("036602301467", "00036602301467", "UPC-A", "1")
    ]


async def test_camera_health_changes_come_on_the_stream(stub) -> None:
    camera = SyntheticLaneCamera(background_seed=7, grocery_dir=GROCERY_DIR)
    camera.cover(1.0, 3.0)
    camera.darken(4.5, 6.5)
    responses = await analyze(stub, camera_requests(camera, 8.0, pace_s=0.002))
    changes = [(h.health, h.reason) for _, h in observations(responses, "camera_health_changed")]
    assert [health for health, _ in changes] == [
        events_pb2.CAMERA_HEALTH_OK,
        events_pb2.CAMERA_HEALTH_BLOCKED,
        events_pb2.CAMERA_HEALTH_OK,
        events_pb2.CAMERA_HEALTH_DARK,
        events_pb2.CAMERA_HEALTH_OK,
    ]
    assert "Laplacian" in changes[1][1] and "luminance" in changes[3][1]


@pytest.mark.parametrize(
    "requests, field",
    [
        ([vision_pb2.AnalyzeRequest(frame=vision_pb2.Frame(frame_id=1, jpeg=b"x"))], "config"),
        (
            [
                vision_pb2.AnalyzeRequest(
                    config=vision_pb2.StreamConfig(
                        lane=common_pb2.LaneRef(lane_id="1"),
                        camera_id="c",
                        zones=[
                            vision_pb2.ZonePolygon(
                                zone=common_pb2.LANE_ZONE_SCAN,
                                points=[vision_pb2.Point(x=0, y=0), vision_pb2.Point(x=1, y=1)],
                            )
                        ],
                    )
                )
            ],
            "config.zones[0].points",
        ),
        (
            [
                vision_pb2.AnalyzeRequest(
                    config=vision_pb2.StreamConfig(
                        lane=common_pb2.LaneRef(lane_id="1"),
                        camera_id="c",
                        zones=[
                            vision_pb2.ZonePolygon(
                                zone=common_pb2.LANE_ZONE_CART,
                                points=[
                                    vision_pb2.Point(x=0, y=0),
                                    vision_pb2.Point(x=1.5, y=0),
                                    vision_pb2.Point(x=1, y=1),
                                ],
                            )
                        ],
                    )
                )
            ],
            "config.zones[0].points[1]",
        ),
        (
            [
                vision_pb2.AnalyzeRequest(
                    config=vision_pb2.StreamConfig(
                        lane=common_pb2.LaneRef(lane_id="1"), camera_id="c"
                    )
                ),
                vision_pb2.AnalyzeRequest(frame=vision_pb2.Frame(frame_id=9, jpeg=b"not a jpeg")),
            ],
            "frame.jpeg",
        ),
        (
            [
                vision_pb2.AnalyzeRequest(
                    config=vision_pb2.StreamConfig(
                        lane=common_pb2.LaneRef(lane_id="1"), camera_id="c"
                    )
                ),
                vision_pb2.AnalyzeRequest(
                    config=vision_pb2.StreamConfig(
                        lane=common_pb2.LaneRef(lane_id="1"), camera_id="c"
                    )
                ),
            ],
            "config",
        ),
        (
            [vision_pb2.AnalyzeRequest(config=vision_pb2.StreamConfig(camera_id="c"))],
            "config.lane.lane_id",
        ),
    ],
)
async def test_invalid_streams_end_with_invalid_argument_naming_the_field(
    stub, requests, field
) -> None:
    async def send():
        for request in requests:
            yield request

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await analyze(stub, send())
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith(f"{field}:"), error.value.details()
    # The server is fine afterwards.
    stats = await stub.GetVisionStats(vision_pb2.GetVisionStatsRequest(), timeout=5)
    assert stats.providers == ["CPUExecutionProvider"]


def read_jpeg(relative: str) -> bytes:
    image = cv2.imread(str(GROCERY_DIR / relative))
    assert image is not None, relative
    return encode_jpeg(image, 95)


async def test_classify_images_returns_top_k_per_image_in_order(stub) -> None:
    images = [
        read_jpeg("val/Fruit/Banana/Banana_001.jpg"),
        read_jpeg("val/Vegetables/Carrots/Carrots_001.jpg"),
    ]
    response = await stub.ClassifyImages(
        vision_pb2.ClassifyImagesRequest(images=images), timeout=DEADLINE_S
    )
    assert len(response.results) == 2
    assert [len(r.labels) for r in response.results] == [5, 5]
    assert response.results[0].labels[0].label == "Banana"
    assert response.results[1].labels[0].label == "Carrots"
    assert response.results[0].labels[0].coarse_label == "Banana"

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.ClassifyImages(
            vision_pb2.ClassifyImagesRequest(images=[images[0], b"garbage"]), timeout=DEADLINE_S
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith("images[1]:")


async def test_an_enrolled_product_is_matched_and_persisted(stub, enrol_store) -> None:
    iconic = "iconic-images-and-descriptions/Packages/Juice/Bravo-Apple-Juice/Bravo-Apple-Juice_Iconic.jpg"
    enrolled = await stub.EnrolProduct(
        vision_pb2.EnrolProductRequest(label="sku-7310865071323", images=[read_jpeg(iconic)]),
        timeout=DEADLINE_S,
    )
    assert enrolled.enrolled_products >= 1
    assert enrol_store.is_file()
    photo = read_jpeg("train/Packages/Juice/Bravo-Apple-Juice/Bravo-Apple-Juice_001.jpg")
    response = await stub.ClassifyImages(
        vision_pb2.ClassifyImagesRequest(images=[photo], top_k=2), timeout=DEADLINE_S
    )
    match = response.results[0].enrolled_match
    assert match.label == "sku-7310865071323" and 0 < match.score <= 1
    assert len(response.results[0].labels) == 2

    # A new replica with the same store knows the product.
    vision = VisionConfig(enrolment_store_path=enrol_store, warmup=False)
    other = await start_server(create_app(lane_config(vision)), lane_config(vision), port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{other.port}") as channel:
            again = await vision_pb2_grpc.VisionServiceStub(channel).ClassifyImages(
                vision_pb2.ClassifyImagesRequest(images=[photo]), timeout=DEADLINE_S
            )
        assert again.results[0].enrolled_match.label == "sku-7310865071323"
    finally:
        await other.stop()

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stub.EnrolProduct(vision_pb2.EnrolProductRequest(label="x"), timeout=DEADLINE_S)
    assert error.value.details().startswith("images:")


async def test_requests_from_several_callers_share_batches(stub) -> None:
    before = await stub.GetVisionStats(vision_pb2.GetVisionStatsRequest(), timeout=5)
    image = read_jpeg("val/Fruit/Kiwi/Kiwi_001.jpg")
    await asyncio.gather(
        *(
            stub.ClassifyImages(
                vision_pb2.ClassifyImagesRequest(images=[image]), timeout=DEADLINE_S
            )
            for _ in range(6)
        )
    )
    after = await stub.GetVisionStats(vision_pb2.GetVisionStatsRequest(), timeout=5)
    assert after.crops_classified - before.crops_classified == 6
    # Six concurrent one-image calls within the 40 ms window need fewer than six batches.
    assert after.batches - before.batches < 6
    assert after.mean_batch_size > 1.0
    assert after.inference_ms_avg > 0 and after.inference_ms_per_crop_avg > 0


async def test_stats_report_open_streams_per_lane(stub) -> None:
    camera = SyntheticLaneCamera(background_seed=8, grocery_dir=GROCERY_DIR)
    release = asyncio.Event()

    async def held_open():
        async for request in camera_requests(camera, 1.0):
            yield request
        await release.wait()

    call = stub.Analyze(held_open(), timeout=DEADLINE_S)
    reader = asyncio.ensure_future(analyze_call(call))

    async def lane_listed():
        stats = await stub.GetVisionStats(vision_pb2.GetVisionStatsRequest(), timeout=5)
        lanes = [s for s in stats.streams if s.camera_id == "cam-7"]
        return stats if lanes and lanes[0].frames_received == 15 else None

    stats = await assert_eventually(lane_listed, timeout_s=30)
    assert stats.open_streams >= 1
    lane = next(s for s in stats.streams if s.camera_id == "cam-7")
    assert lane.lane.lane_id == "7" and lane.lane.store_id == "s1"
    assert lane.camera_fps > 0 and lane.health == events_pb2.CAMERA_HEALTH_OK
    release.set()
    await reader
    stats = await stub.GetVisionStats(vision_pb2.GetVisionStatsRequest(), timeout=5)
    assert not [s for s in stats.streams if s.camera_id == "cam-7"]


async def analyze_call(call) -> list:
    return [response async for response in call]


async def test_overload_drops_frames_and_counts_them() -> None:
    vision = VisionConfig(stream_frame_queue_max=1, warmup=False, frame_workers=1)
    running = await start_server(create_app(lane_config(vision)), lane_config(vision), port=0)
    camera = SyntheticLaneCamera(background_seed=9, grocery_dir=GROCERY_DIR)
    camera.add_item("Lemon", 0.5, "cart", "bagging", 2.0)
    frames = []
    while camera.now_s < 4.0:
        _, frame = camera.read()
        frames.append(encode_jpeg(frame))

    async def burst():
        yield stream_config(camera, lane_id="9")
        for frame_id, jpeg in enumerate(frames, start=1):
            yield vision_pb2.AnalyzeRequest(frame=vision_pb2.Frame(frame_id=frame_id, jpeg=jpeg))

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = vision_pb2_grpc.VisionServiceStub(channel)
            responses = await analyze(stub, burst())
            stats = await stub.GetVisionStats(vision_pb2.GetVisionStatsRequest(), timeout=5)
    finally:
        await running.stop()
    analysed = {r.frame_id for r in responses}
    dropped = max(r.dropped_frames for r in responses)
    assert dropped > 0, "a burst of 60 frames into a queue of 1 must drop some"
    assert len(analysed) + dropped == len(frames) == 60
    assert stats.frames_received == 60 and stats.frames_dropped == dropped
    # Drops are counted as they happen: the counter in responses never decreases.
    counters = [r.dropped_frames for r in responses]
    assert counters == sorted(counters)


async def test_shutdown_ends_open_lane_streams_cleanly() -> None:
    vision = VisionConfig(warmup=False)
    running = await start_server(create_app(lane_config(vision)), lane_config(vision), port=0)
    camera = SyntheticLaneCamera(background_seed=10, grocery_dir=GROCERY_DIR)
    never = asyncio.Event()
    sent = asyncio.Event()

    async def held_open():
        async for request in camera_requests(camera, 0.5):
            yield request
        sent.set()
        await never.wait()

    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
        stub = vision_pb2_grpc.VisionServiceStub(channel)
        call = stub.Analyze(held_open(), timeout=DEADLINE_S)
        first = await call.read()
        assert first.frame_id == 1
        # Stop once every frame was written: a write racing the shutdown fails on the client
        # with INTERNAL, which is not what this test is about.
        await asyncio.wait_for(sent.wait(), DEADLINE_S)
        started = asyncio.get_running_loop().time()
        await running.stop()
        # The stream ended with OK well within the grace period instead of being cut off
        # (the status comes after the responses already sent).
        while await call.read() is not grpc.aio.EOF:
            pass
        assert await call.code() == grpc.StatusCode.OK
        assert asyncio.get_running_loop().time() - started < running.grace_s
