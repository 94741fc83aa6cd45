"""The demo lane camera: a synthetic camera playing a lane's camera script in real time.

A lane agent loads it through its camera config, ``source =
"python:lanesight.demo.camera:lane_camera"``; the script's path comes from the
``LSDEMO_CAMERA_SCRIPT`` environment variable the demo sets for that agent's process.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from lanesight.simulation.camera import SyntheticLaneCamera

log = logging.getLogger(__name__)
SCRIPT_ENV = "LSDEMO_CAMERA_SCRIPT"


class ScriptClock:
    """Seconds since the script's ``epoch_unix``; -1 until the demo has written it.

    The demo starts the lane agents (and so the cameras) before it knows when the run
    starts, then writes the epoch into the script; the clock looks again at most once a
    second until it finds one.
    """

    def __init__(self, path: Path, epoch: float | None) -> None:
        self.path = path
        self.epoch = epoch
        self._checked = 0.0

    def __call__(self) -> float:
        now = time.time()
        if self.epoch is None and now - self._checked >= 1.0:
            self._checked = now
            try:
                self.epoch = json.loads(self.path.read_text(encoding="utf-8")).get("epoch_unix")
            except (OSError, ValueError):
                self.epoch = None
        return -1.0 if self.epoch is None else now - self.epoch


def camera_from_script(path: Path, clock=None) -> SyntheticLaneCamera:
    """Build the synthetic camera a script describes; time runs from its ``epoch_unix``."""
    script = json.loads(path.read_text(encoding="utf-8"))
    camera = SyntheticLaneCamera(
        background_seed=int(script.get("seed", 0)),
        fps=float(script.get("fps", 10.0)),
        grocery_dir=script["grocery_dir"],
        clock=clock or ScriptClock(path, script.get("epoch_unix")),
    )
    skipped = 0
    for item in script.get("items", []):
        try:
            camera.add_item(
                item["label"],
                item["start_s"],
                item["from_zone"],
                item["to_zone"],
                item["duration_s"],
                leave_s=item.get("leave_s"),
                lane_y=item.get("lane_y", 0.5),
                size_fraction=item.get("size_fraction", 0.26),
                label=item["label"],
            )
        except FileNotFoundError:
            skipped += 1  # no photo of this product in the dataset: it stays invisible
    for effect in script.get("effects", []):
        if effect["kind"] == "cover":
            camera.cover(effect["start_s"], effect["end_s"])
        elif effect["kind"] == "darken":
            camera.darken(effect["start_s"], effect["end_s"])
    if skipped:
        log.info("camera script %s: %d items have no photo and are not drawn", path, skipped)
    return camera


def lane_camera() -> SyntheticLaneCamera:
    """The factory a lane agent's camera source names."""
    path = os.environ.get(SCRIPT_ENV)
    if not path:
        raise RuntimeError(f"{SCRIPT_ENV} is not set: the demo sets it for each lane agent")
    return camera_from_script(Path(path))
