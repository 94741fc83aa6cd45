"""Vision recognition benchmark: what a lane stream emits for items crossing the lane, per track.

Run: .venv/bin/python benchmarks/bench_vision_recognition.py        (CPU, about 30 s)

Each grocery label crosses a synthetic lane as the demo stages it: the item appears in the
cart, moves to the scanner in 0.8 s, rests there (0.3 to 1.5 s), moves to the bagging area
in 0.8 s and rests there. Two cameras: "demo" draws the items as the demo's camera does;
"carried" also draws a hand holding each moving item, and motion blur (1/60 s exposure). Frames go through the device's path: the lane agent's motion gate
(with a keyframe every 2 s), JPEG at quality 80, up to 8 FPS; then the real vision stream
(``LaneStream``: analysis, tracking, crops, the batcher and the shipped model). The table
shows the ItemRecognized observations the stream emitted, per zone: the first one and the
last one (the one fusion should hold), with the score of the true label (0 when it is not
among the top-k). "still" is the baseline measured in the same run: the model on a crop of
the item's true box (+10%) in a clean (not JPEG) resting frame, as a still photo would be
classified. "plain mean" is the unweighted mean score over every ItemRecognized of the track
up to the scan zone (what fusion held before it weighted recognitions by their top score
squared; see services/fusion/lane.py Track.add_recognition).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from lanesight.common.config import data_dir  # noqa: E402
from lanesight.device.camera.motion import MotionGate  # noqa: E402
from lanesight.simulation.camera import SyntheticLaneCamera, encode_jpeg  # noqa: E402
from lanesight.vision.analyzer import decode_image  # noqa: E402
from lanesight.vision.config import VisionConfig  # noqa: E402
from lanesight.vision.engine import VisionEngine  # noqa: E402
from lanesight.vision.observations import ItemSeen  # noqa: E402
from lanesight.vision.stream import FrameIn, StreamIdentity  # noqa: E402
from lanesight.vision.zones import Zone, ZoneMap  # noqa: E402

GROCERY_DIR = data_dir("grocery", "dataset")
LABELS = [
    "Valio-Vanilla-Yoghurt",
    "Kaiser",
    "Royal-Gala",
    "Plum",
    "Arla-Standard-Milk",
    "Banana",
    "Oatly-Oat-Milk",
    "Red-Grapefruit",
    "Bravo-Orange-Juice",
    "Tropicana-Apple-Juice",
    "Alpro-Blueberry-Soyghurt",
    "Red-Bell-Pepper",
    "Conference",
    "Yoggi-Strawberry-Yoghurt",
    "God-Morgon-Orange-Juice",
    "Cucumber",
]
STAYS_S = [0.3, 0.6, 1.0, 1.5]  # how long an item rests on the scanner (the demo: 0.05-1.65 s)
MOVE_S = 0.8
SIZE_FRACTION = 0.26
KEYFRAME_S = 2.0
ZONES = (Zone.CART, Zone.SCAN, Zone.BAGGING)


@dataclass
class Scene:
    label: str
    camera: SyntheticLaneCamera
    end_s: float
    rest_s: float
    quality: int = 80


@dataclass
class Result:
    """What the stream emitted for one scene."""

    label: str
    still: float
    # zone -> (top label, its score, the true label's score) of each ItemRecognized, in order.
    emitted: dict[Zone, list[tuple[str, float, float]]] = field(default_factory=dict)
    # What fusion's Track.add_recognition holds once the scan zone's ItemRecognized are in.
    fusion_now: tuple[str, float, float] | None = None
    still_jpeg: float = 0.0
    frames_sent: int = 0
    crops: int = 0


def build_scene(index: int, label: str, fps: float, carried: bool = False) -> Scene:
    camera = SyntheticLaneCamera(background_seed=index, fps=fps, grocery_dir=GROCERY_DIR)
    lane_y = 0.25 + 0.5 * (((index + 1) * 0.37) % 1.0)  # as the demo lays out tracks
    stay = STAYS_S[index % len(STAYS_S)]
    start = 2.0  # an empty lane first: the stream learns its background
    camera.add_item(label, start, "cart", "scan", MOVE_S, leave_s=stay, lane_y=lane_y,
                    size_fraction=SIZE_FRACTION, label=label, carried=carried)  # fmt: skip
    second = start + MOVE_S + stay
    camera.add_item(label, second, "scan", "bagging", MOVE_S, leave_s=1.2, lane_y=lane_y,
                    size_fraction=SIZE_FRACTION, label=label, carried=carried)  # fmt: skip
    return Scene(label, camera, second + MOVE_S + 1.2 + 0.8, stay)


def still_score(scene: Scene, recognizer, pad: float, quality: int | None) -> float:
    """The model on the true box (grown by ``pad``) of a resting frame in the scan zone."""
    t_s = 2.0 + MOVE_S + scene.rest_s / 2
    frame = scene.camera.at(t_s)
    if quality is not None:
        frame = decode_image(encode_jpeg(frame, quality))
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = scene.camera.ground_truth(t_s)[0].box
    pad_x, pad_y = pad * (x1 - x0), pad * (y1 - y0)
    crop = frame[
        max(0, round((y0 - pad_y) * height)) : min(height, round((y1 + pad_y) * height)),
        max(0, round((x0 - pad_x) * width)) : min(width, round((x1 + pad_x) * width)),
    ]
    scores = recognizer.run_batch([crop])[0]
    top = recognizer.labels(scores, 1)[0]
    return top.score if top.label == scene.label else 0.0


def gated_frames(scene: Scene, fps: float, quality: int) -> list[tuple[float, bytes]]:
    """The frames the lane agent sends: motion in a zone, or a keyframe every 2 s."""
    camera = scene.camera
    gate = MotionGate([points for _, points in camera.zones()], 96, 25, 0.01)
    frames, last_sent = [], -1e9
    while camera.now_s < scene.end_s:
        t_s = camera.now_s
        _, frame = camera.read()
        motion = gate.update(frame).motion
        if motion or t_s - last_sent >= KEYFRAME_S or len(frames) < 6:
            frames.append((t_s, encode_jpeg(frame, quality)))
            last_sent = t_s
    return frames


async def run_scene(engine: VisionEngine, scene: Scene, index: int, args) -> Result:
    zones = ZoneMap.from_points([(Zone(name), points) for name, points in scene.camera.zones()])
    stream = engine.open_stream(StreamIdentity("bench", f"{index}", f"cam-{index}"), zones, 3)
    frames = gated_frames(scene, args.fps, args.quality)
    before = engine.batcher.stats().processed

    async def frame_source() -> AsyncIterator[FrameIn]:
        for frame_id, (t_s, jpeg) in enumerate(frames, 1):
            yield FrameIn(frame_id, jpeg, captured_s=t_s)
            await asyncio.sleep(0)

    result = Result(scene.label, 0.0, {zone: [] for zone in ZONES}, frames_sent=len(frames))
    sums: dict[str, float] = {}
    count = 0
    try:
        async for output in stream.run(frame_source()):
            for seen in output.observations:
                if isinstance(seen, ItemSeen) and seen.zone is not None and seen.labels:
                    true = next((x.score for x in seen.labels if x.label == scene.label), 0.0)
                    top = seen.labels[0]
                    result.emitted[seen.zone].append((top.label, top.score, true))
                    if seen.zone is not Zone.BAGGING:
                        count += 1  # as fusion's Track.add_recognition folds them
                        for label in seen.labels:
                            sums[label.label] = sums.get(label.label, 0.0) + label.score
    finally:
        engine.close_stream(stream)
    if count:
        best = max(sums, key=sums.__getitem__)
        result.fusion_now = (best, sums[best] / count, sums.get(scene.label, 0.0) / count)
    result.crops = engine.batcher.stats().processed - before
    return result


def _cell(emitted: list[tuple[str, float, float]], which: int) -> str:
    if not emitted:
        return "-"
    label, score, true = emitted[which]
    return f"{true:.2f}" if true == score else f"{true:.2f} ({label[:10]} {score:.2f})"


def print_table(title: str, results: list[Result]) -> None:
    print(f"\n{title}")
    header = (
        f"{'label':<26}{'still':>6}  {'scan first':<26}{'scan last':<26}"
        f"{'bagging first':<26}{'bagging last':<26}{'emits':>6}{'crops':>6}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        scan, bag = r.emitted[Zone.SCAN], r.emitted[Zone.BAGGING]
        emits = sum(len(v) for v in r.emitted.values())
        print(
            f"{r.label[:25]:<26}{r.still:>6.2f}  {_cell(scan, 0):<26}{_cell(scan, -1):<26}"
            f"{_cell(bag, 0):<26}{_cell(bag, -1):<26}{emits:>6}{r.crops:>6}"
        )
    print()
    still = [r.still for r in results]
    still_jpeg = [r.still_jpeg for r in results]
    rows = [
        ("still, true box +10%, clean (baseline)", still, [s > 0 for s in still]),
        ("still, true box, JPEG", still_jpeg, [s > 0 for s in still_jpeg]),
    ]
    for zone in (Zone.SCAN, Zone.BAGGING):
        for name, which in (("first", 0), ("last", -1)):
            picks = [r.emitted[zone][which] if r.emitted[zone] else None for r in results]
            scores = [p[2] if p else 0.0 for p in picks]
            right = [bool(p) and p[0] == r.label for p, r in zip(picks, results, strict=True)]
            rows.append((f"{zone.value} zone, {name} ItemRecognized", scores, right))
    picks = [r.fusion_now for r in results]
    rows.append(
        (
            "plain mean of cart+scan ItemRecognized",
            [p[2] if p else 0.0 for p in picks],
            [bool(p) and p[0] == r.label for p, r in zip(picks, results, strict=True)],
        )
    )
    base = sum(still) / len(still)
    print(f"{'measure':<48}{'top-1':>7}{'mean true score':>17}{'>= 0.55':>9}{'vs still':>10}")
    print("-" * 91)
    for name, scores, right in rows:
        mean = sum(scores) / len(scores)
        sure = sum(1 for s in scores if s >= 0.55)
        print(
            f"{name:<48}{sum(right) / len(right):>7.0%}{mean:>17.2f}"
            f"{sure:>6}/{len(scores):<2}{mean / base if base else 0:>9.2f}x"
        )
    crops = sum(r.crops for r in results)
    emits = sum(sum(len(v) for v in r.emitted.values()) for r in results)
    frames = sum(r.frames_sent for r in results)
    print(
        f"{len(results)} items, {frames} frames sent, {crops} crops classified "
        f"({crops / len(results):.1f} per item), {emits} ItemRecognized "
        f"({emits / len(results):.1f} per item)"
    )


async def main_async(args) -> None:
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, key = key.rpartition(".")
        target = overrides.setdefault(section, {}) if section else overrides
        target[key] = value
    config = VisionConfig.model_validate(
        {
            "intra_op_threads": args.threads,
            "frame_workers": 1,
            "stream_frame_queue_max": 1024,
            "warmup": False,
            **overrides,
        }
    )
    engine = VisionEngine(config)
    await engine.start()
    tables = []
    try:
        for carried in (False, True):
            results = []
            for index, label in enumerate(args.labels):
                scene = build_scene(index, label, args.fps, carried)
                result = await run_scene(engine, scene, index, args)
                reference = build_scene(index, label, args.fps, carried)
                result.still = still_score(reference, engine.recognizer, 0.1, None)
                result.still_jpeg = still_score(reference, engine.recognizer, 0.0, args.quality)
                results.append(result)
            tables.append((carried, results))
    finally:
        await engine.stop()
    for carried, results in tables:
        title = (
            "carried: a hand holds each moving item, motion blur"
            if carried
            else "demo camera: items as the demo draws them"
        )
        print_table(title, results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", nargs="+", default=LABELS)
    parser.add_argument("--fps", type=float, default=8.0, help="camera rate (the demo: 8)")
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality (the agent: 80)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a [vision] setting, e.g. crop_pad_fraction=0.08 or tracker.settle_frames=3",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    print(
        f"vision recognition benchmark: {len(args.labels)} items cart -> scan -> bagging, "
        f"{args.fps:g} FPS, JPEG q{args.quality}, size {SIZE_FRACTION} of the frame height"
    )
    asyncio.run(main_async(args))
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
