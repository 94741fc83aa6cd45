"""Produce suggestions at the scale: PLU hit rate on held-out photos and scale-settled →
suggestions latency through the real services, each against a baseline from the same run.

Run: .venv/bin/python benchmarks/bench_produce_suggestions.py [--settles 40] [--threads 2]

1. Hit rate: every val photo of a class the demo catalog sells by PLU is classified as the
   lane would (calibrated top-20 labels → PLUs by summed score); top-1/3/5 PLU hit rate.
   Baseline: the model's own fine-class top-k on the same photos (mapping labels to PLUs
   should lose nothing).
2. Latency: a simulated 8217 produce scale, the real lane agent (camera frames from a
   fixed overhead view with the photo on the scale) and the real VisionService in this
   process. Each settle puts a different held-out photo on the scale; the agent's
   scale-settled → suggestions-ready time is taken from the message (latency_ms) and
   the client's set-weight → message-received time is measured around it. Baseline: a
   direct ClassifyImages call with the same crop.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cv2
import grpc
import numpy as np
from lanesight.common.config import LanesightConfig, PeersConfig, ServerConfig, data_dir
from lanesight.common.server import start_server
from lanesight.device.app import create_app as create_device_app
from lanesight.device.config import (
    CameraConfig,
    DeviceConfig,
    OutboxConfig,
    ProduceSuggestionsConfig,
    ZoneConfig,
)
from lanesight.device.suggestions import crop_zone, load_plu_choices, rank_plus
from lanesight.simulation.devices import LaneSimulators, ScaleSpec
from lanesight.v1 import device_pb2, device_pb2_grpc, vision_pb2, vision_pb2_grpc
from lanesight.vision.app import create_app as create_vision_app
from lanesight.vision.config import VisionConfig
from lanesight.vision.model_tools import GroceryClassifier
from lanesight.vision.model_tools.evaluate import read_image, read_split_file

GROCERY_DIR = data_dir("grocery", "dataset")
SCALE_ZONE = [(0.55, 0.1), (0.95, 0.1), (0.95, 0.9), (0.55, 0.9)]
TOP_K_LABELS = 20


def held_out_produce(choices) -> list[tuple[Path, str, str]]:
    """(photo, fine label, PLU) for every val photo whose class the catalog sells by PLU."""
    plu_of = {label: choice.plu for choice in choices for label in choice.labels}
    classifier_labels = GroceryClassifier().labels
    out = []
    for entry in read_split_file(GROCERY_DIR, GROCERY_DIR / "val.txt"):
        name = classifier_labels[entry.fine_id].name
        if name in plu_of:
            out.append((entry.path, name, plu_of[name]))
    return out


def hit_rates(photos, choices, threads: int) -> dict[str, float]:
    classifier = GroceryClassifier(intra_op_threads=threads)
    hits = {f"plu@{k}": 0 for k in (1, 3, 5)} | {f"fine@{k}": 0 for k in (1, 3, 5)}
    for start in range(0, len(photos), 32):
        chunk = photos[start : start + 32]
        probs, _ = classifier.classify([read_image(path) for path, _, _ in chunk])
        for (_, label, plu), row in zip(chunk, probs, strict=True):
            top = [(s.name, s.score) for s in classifier.top_k(row[None, :], TOP_K_LABELS)[0]]
            ranked = [r.choice.plu for r in rank_plus(top, choices, 5)]
            for k in (1, 3, 5):
                hits[f"plu@{k}"] += plu in ranked[:k]
                hits[f"fine@{k}"] += label in [name for name, _ in top[:k]]
    return {name: count / len(photos) for name, count in hits.items()}


def overhead_view(photo_path: Path) -> np.ndarray:
    frame = np.full((360, 640, 3), 90, dtype=np.uint8)
    x0, y0, x1, y1 = int(0.55 * 640), int(0.1 * 360), int(0.95 * 640), int(0.9 * 360)
    frame[y0:y1, x0:x1] = cv2.resize(cv2.imread(str(photo_path)), (x1 - x0, y1 - y0))
    return frame


class Camera:
    def __init__(self) -> None:
        self.frame = np.full((360, 640, 3), 90, dtype=np.uint8)

    def read(self):
        return True, self.frame


async def end_to_end(photos, settles: int, threads: int) -> dict[str, object]:
    vision_config = LanesightConfig(vision=VisionConfig(intra_op_threads=threads, max_wait_ms=2.0))
    vision = await start_server(create_vision_app(vision_config), vision_config, port=0)
    sims = await LaneSimulators.start(
        scanner=None, scales=[ScaleSpec("scale-produce", "8217", "produce")], printer=None
    )
    camera = Camera()
    tmp = tempfile.mkdtemp(prefix="bench-suggest-")
    device = DeviceConfig(
        lane_id="lane-1",
        outbox=OutboxConfig(path=f"{tmp}/outbox.db", synchronous="normal"),
        evidence_enabled=False,
        fusion_link=False,
        fusion_commands=False,
        peripherals=sims.peripherals(poll_interval_s=0.02),
        cameras=[
            CameraConfig(
                id="cam-produce",
                source="python:unused",
                zones=[ZoneConfig(zone="scan", points=[(0, 0), (1, 0), (1, 1), (0, 1)])],
            )
        ],
        produce_suggestions=ProduceSuggestionsConfig(
            enabled=True, demo_catalog=True, scale_zone=SCALE_ZONE
        ),
    )
    config = LanesightConfig(
        store_id="store-1",
        server=ServerConfig(grace_s=0.2),
        peers=PeersConfig(vision=f"127.0.0.1:{vision.port}"),
        device=device,
    )
    agent = await start_server(create_device_app(config, {"cam-produce": camera}), config, port=0)
    agent_ms, client_ms, direct_ms, hits = [], [], [], {1: 0, 3: 0, 5: 0}
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{agent.port}") as agent_channel,
            grpc.aio.insecure_channel(f"127.0.0.1:{vision.port}") as vision_channel,
        ):
            stream = device_pb2_grpc.DeviceServiceStub(agent_channel).WatchProduceSuggestions(
                device_pb2.WatchProduceSuggestionsRequest()
            )
            direct = vision_pb2_grpc.VisionServiceStub(vision_channel)
            scale = sims.scale("scale-produce")
            await asyncio.sleep(0.5)
            for i in range(settles):
                path, _, plu = photos[(i * 7) % len(photos)]
                camera.frame = overhead_view(path)
                await asyncio.sleep(0.1)  # the camera has moved on to the new view
                started = time.perf_counter()
                scale.set_weight(400_000 + 1000 * i, stable=True)
                while True:
                    message = (await asyncio.wait_for(stream.read(), 30)).suggestions
                    if not message.cleared:
                        break
                client_ms.append((time.perf_counter() - started) * 1000)
                agent_ms.append(message.latency_ms)
                ranked = [s.plu for s in message.suggestions]
                for k in hits:
                    hits[k] += plu in ranked[:k]
                scale.set_weight(0, stable=True)
                while not (await asyncio.wait_for(stream.read(), 30)).suggestions.cleared:
                    pass
                _, jpeg = cv2.imencode(
                    ".jpg", crop_zone(camera.frame, SCALE_ZONE), [cv2.IMWRITE_JPEG_QUALITY, 90]
                )
                t0 = time.perf_counter()
                await direct.ClassifyImages(
                    vision_pb2.ClassifyImagesRequest(images=[jpeg.tobytes()], top_k=TOP_K_LABELS)
                )
                direct_ms.append((time.perf_counter() - t0) * 1000)
            stream.cancel()
    finally:
        await agent.stop()
        await sims.stop()
        await vision.stop()
    return {
        "agent_ms": np.array(agent_ms),
        "client_ms": np.array(client_ms),
        "direct_ms": np.array(direct_ms),
        "hits": {k: v / settles for k, v in hits.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settles", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    args = parser.parse_args()

    choices = load_plu_choices(ProduceSuggestionsConfig(demo_catalog=True))
    photos = held_out_produce(choices)
    rates = hit_rates(photos, choices, args.threads)
    e2e = asyncio.run(end_to_end(photos, args.settles, args.threads))

    print(
        f"produce suggestions: {len(choices)} PLUs with vision labels in the demo catalog; "
        f"{len(photos)} held-out val photos of those classes"
    )
    print()
    print(
        f"{'PLU hit rate (held-out val)':<44} {'suggestions':>11} {'fine top-k':>10} {'ratio':>6}"
    )
    for k in (1, 3, 5):
        plu, fine = rates[f"plu@{k}"], rates[f"fine@{k}"]
        print(f"{f'top-{k}':<44} {plu:>11.1%} {fine:>10.1%} {plu / fine:>5.2f}x")
    print()
    settles = len(e2e["agent_ms"])
    hits = e2e["hits"]
    print(
        f"end to end, {settles} settles through scale → agent → vision → WatchProduceSuggestions: "
        f"PLU hit top-1 {hits[1]:.1%}, top-3 {hits[3]:.1%}, top-5 {hits[5]:.1%}"
    )
    print(f"{'latency (ms)':<44} {'p50':>8} {'p95':>8} {'max':>8} {'p95 ratio':>10}")
    direct_p95 = float(np.percentile(e2e["direct_ms"], 95))
    for name, key in (
        ("direct ClassifyImages of the crop (baseline)", "direct_ms"),
        ("scale settled → suggestions (agent)", "agent_ms"),
        ("set weight → suggestions at the client", "client_ms"),
    ):
        values = e2e[key]
        p95 = float(np.percentile(values, 95))
        print(
            f"{name:<44} {np.percentile(values, 50):>8.1f} {p95:>8.1f} {values.max():>8.1f} "
            f"{p95 / direct_p95:>9.2f}x"
        )


if __name__ == "__main__":
    main()
