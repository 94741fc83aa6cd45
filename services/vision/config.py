"""Configuration of the vision service (the [vision] section)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Section(BaseModel):
    """Unknown keys are errors; values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TrackerConfig(_Section):
    """Background subtraction, contours and IoU/centroid tracking ([vision.tracker])."""

    # Frames are tracked at this width (aspect kept); crops come from the full frame.
    process_width_px: int = Field(default=320, ge=64, le=1920)
    # "mog2" or "knn" (OpenCV background subtractors).
    subtractor: Literal["mog2", "knn"] = "mog2"
    history_frames: int = Field(default=500, ge=10)
    var_threshold: float = Field(default=25.0, gt=0)
    # Background learning rate once the background is established; low so resting items stay.
    learning_rate: float = Field(default=0.002, ge=0, le=1)
    # Frames learned quickly at stream start (and after a scene change).
    warmup_frames: int = Field(default=5, ge=1)
    # Blobs smaller than this fraction of the frame are noise.
    min_area_fraction: float = Field(default=0.004, gt=0, lt=1)
    # More foreground than this fraction is a lighting or camera change, not items.
    max_foreground_fraction: float = Field(default=0.5, gt=0, le=1)
    iou_match_min: float = Field(default=0.2, ge=0, le=1)
    # Centroid distance (fraction of the frame diagonal) for matching when IoU fails.
    centroid_match_max: float = Field(default=0.12, gt=0, le=1)
    # A track is reported after this many matched frames.
    confirm_frames: int = Field(default=3, ge=1)
    # A track is dropped after this many frames without a match.
    max_missed_frames: int = Field(default=8, ge=1)
    # A track's zone changes after its centroid was in the new zone this many frames.
    zone_confirm_frames: int = Field(default=2, ge=1)
    # An item's box that overlaps its box in the previous frame this much (IoU) stood still...
    settle_iou_min: float = Field(default=0.9, gt=0, le=1)
    # ...and an item that stood still this many frames in a row has settled (is resting).
    settle_frames: int = Field(default=1, ge=1)


class HealthConfig(_Section):
    """Camera health thresholds ([vision.health])."""

    # Health is measured at this width.
    analysis_width_px: int = Field(default=160, ge=32, le=640)
    # Mean luminance (0..255) below this is dark.
    dark_luma_max: float = Field(default=35.0, ge=0, le=255)
    # Variance of the Laplacian below this AND edge density below the next is blocked.
    blocked_laplacian_var_max: float = Field(default=20.0, ge=0)
    blocked_edge_density_max: float = Field(default=0.01, ge=0, le=1)
    # Mean absolute difference (0..255) to the previous frame at or below this is "identical".
    frozen_diff_max: float = Field(default=0.25, ge=0)
    frozen_after_s: float = Field(default=3.0, gt=0)
    # Scene shift against the reference beyond this fraction of the width is moved...
    moved_shift_fraction_min: float = Field(default=0.03, gt=0, le=1)
    # ...as is an edge-map correlation with the reference below this.
    moved_edge_correlation_min: float = Field(default=0.35, ge=-1, le=1)
    # A new state must hold this long before it is reported (frozen has its own timer).
    confirm_s: float = Field(default=1.0, ge=0)


class VisionConfig(_Section):
    """Settings of the vision service."""

    # Folder with grocery_effnet_lite0.onnx, labels.json and preprocess.json;
    # None: the model shipped in services/vision/models/.
    model_dir: Path | None = None
    # onnxruntime execution providers in order of preference; unavailable ones are skipped.
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    # onnxruntime intra-op threads; 0 lets onnxruntime choose.
    intra_op_threads: int = Field(default=0, ge=0, le=256)
    # Dynamic batching across all lane streams. On CPU, batches beyond a few crops do not
    # pay for this network (see docs/vision.md); raise it on GPUs.
    max_batch: int = Field(default=8, ge=1, le=256)
    max_wait_ms: float = Field(default=10.0, ge=0, le=1000)
    # Crops waiting for inference; beyond it crops are dropped and counted.
    crop_queue_max: int = Field(default=64, ge=1)
    # Frames waiting per stream; beyond it frames are dropped and counted.
    stream_frame_queue_max: int = Field(default=4, ge=1)
    # Crops of one stream in flight at once; beyond it crops are dropped and counted.
    stream_inflight_crops_max: int = Field(default=8, ge=1)
    # Threads that decode JPEG and track (CPU work off the event loop); 0: one per core.
    frame_workers: int = Field(default=0, ge=0, le=256)
    # Labels per recognised item when the stream does not say.
    top_k: int = Field(default=3, ge=1, le=81)
    # Run a batch through the model at start so the first lane does not pay for it.
    warmup: bool = True
    # An enrolled product is reported on a lane stream at this cosine similarity or more.
    enrolled_match_min: float = Field(default=0.75, ge=-1, le=1)
    # Where enrolled products are kept (.npz); None keeps them in memory only.
    enrolment_store_path: Path | None = None
    # Look for barcodes in a tracked item's crop every N frames while it is in view.
    barcode_every_frames: int = Field(default=3, ge=1)
    # A code is reported once this many looks at the track read it, and more than twice as
    # often as any code differing from it in at most half its digits (a misread).
    barcode_confirm_reads: int = Field(default=2, ge=1)
    # Crops narrower than this (pixels) are not classified or searched for barcodes.
    min_crop_px: int = Field(default=24, ge=1)
    # Crops are cut from the item's box grown by this fraction of its size on each side.
    crop_pad_fraction: float = Field(default=0.0, ge=0, le=1)
    # A resting item is classified when it settles and then every N frames it stays put...
    rest_recognise_every_frames: int = Field(default=8, ge=1)
    # ...up to this many crops per track per zone visit (the zone entry's crop included).
    zone_crops_max: int = Field(default=3, ge=1)
    # After the first ItemRecognized of a track in a zone, an update is sent when the top
    # label changes or its score rose by at least this much...
    recognition_update_min_gain: float = Field(default=0.1, ge=0, le=1)
    # ...at most this many updates per track per zone visit.
    recognition_updates_max: int = Field(default=3, ge=0)
    tracker: TrackerConfig = TrackerConfig()
    health: HealthConfig = HealthConfig()
