"""Configuration of the device service (the [device] section): lane, outbox, peripherals, cameras."""

from __future__ import annotations

from typing import Literal

from lanesight.common.sharding import fusion_address
from lanesight.device.protocols.barcodes import Market
from lanesight.device.protocols.variable_measure import VariableMeasureRule
from pydantic import BaseModel, ConfigDict, Field, model_validator

PeripheralKind = Literal["scanner", "scale", "scanner_scale", "printer"]
PeripheralProtocol = Literal["cr", "crlf", "magellan", "8217", "nci", "escpos"]
ScaleRoleName = Literal["", "produce", "bagging"]
ZoneName = Literal["scan", "bagging", "cart"]
Region = Literal["us", "dk", "ee", "fi", "de", "gb", "lv", "lt", "no", "se"]

_PROTOCOLS_BY_KIND = {
    "scanner": {"cr", "crlf", "magellan"},
    "scale": {"8217", "nci", "magellan"},
    "scanner_scale": {"magellan"},
    "printer": {"escpos"},
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PeripheralConfig(_Section):
    """One serial or network peripheral of the lane."""

    id: str = Field(min_length=1)
    kind: PeripheralKind
    #: Scales only: which scale this is; the same drivers serve both roles.
    role: ScaleRoleName = ""
    protocol: PeripheralProtocol
    #: A pyserial URL (/dev/ttyUSB0, socket://host:port, rfc2217://...) or tcp://host:port.
    url: str = Field(min_length=1)
    baudrate: int = Field(default=9600, gt=0)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: Literal[1, 2] = 1
    #: Scales: how often to ask for the weight; printers: how often to read the status.
    poll_interval_s: float = Field(default=0.2, gt=0)
    #: How long to wait for a reply before treating the device as not answering.
    response_timeout_s: float = Field(default=1.0, gt=0)
    #: Printers: the id the attached cash drawer reports under; empty when none.
    drawer_id: str = ""
    #: Scales: the change in stable weight (mg) below which no new reading is recorded.
    stable_change_mg: int = Field(default=0, ge=0)
    #: NCI scales: whether status lines start with "S"; "auto" accepts both (SCP-01 omits it).
    nci_status_prefix: Literal["auto", "S", "none"] = "auto"

    @model_validator(mode="after")
    def _check(self) -> PeripheralConfig:
        if self.protocol not in _PROTOCOLS_BY_KIND[self.kind]:
            allowed = ", ".join(sorted(_PROTOCOLS_BY_KIND[self.kind]))
            raise ValueError(f"protocol {self.protocol!r} is not one of {allowed} for {self.kind}")
        if self.kind in ("scale", "scanner_scale") and not self.role:
            raise ValueError("scales need a role: produce or bagging")
        if self.kind in ("scanner", "printer") and self.role:
            raise ValueError("role applies to scales only")
        if self.nci_status_prefix != "auto" and self.protocol != "nci":
            raise ValueError("nci_status_prefix applies to NCI scales only")
        return self


class ZoneConfig(_Section):
    """One lane zone on a camera image, as a polygon of normalised (x, y) points."""

    zone: ZoneName
    points: list[tuple[float, float]] = Field(min_length=3)

    @model_validator(mode="after")
    def _check(self) -> ZoneConfig:
        for x, y in self.points:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError("zone points are normalised: x and y must be within 0..1")
        return self


class CameraConfig(_Section):
    """One lane camera and its motion gating."""

    id: str = Field(min_length=1)
    #: A video file, an RTSP/HTTP URL, a device index ("0"), or "python:module:factory".
    source: str = Field(min_length=1)
    zones: list[ZoneConfig] = Field(default_factory=list)
    #: Send a frame at least this often even without motion, for camera health checks.
    keyframe_interval_s: float = Field(default=5.0, gt=0)
    #: Fraction of zone pixels that must change for a frame to count as motion.
    motion_threshold: float = Field(default=0.01, gt=0, le=1)
    #: Grey-level difference (0..255) above which a pixel counts as changed.
    pixel_threshold: int = Field(default=25, ge=1, le=255)
    #: The most frames per second to capture.
    max_fps: float = Field(default=15.0, gt=0, le=120)
    #: Width of the downscaled frame motion is computed on.
    analysis_width: int = Field(default=96, ge=16, le=640)
    jpeg_quality: int = Field(default=80, ge=10, le=100)
    #: Files only: start again at the end instead of reporting the camera gone.
    loop: bool = False
    #: Frames waiting for the vision stream; more are dropped and counted.
    send_queue_frames: int = Field(default=2, ge=1, le=64)
    #: Labels per recognised item to ask vision for (0: vision's default).
    top_k: int = Field(default=0, ge=0, le=20)


class VariableMeasureRuleConfig(_Section):
    """One variable-measure (price/weight-embedded) label format of the store's market."""

    #: The first 1-3 digits of the label's GTIN-13 form ("02" is UPC-A number system 2).
    prefix: str
    measure: Literal["price", "weight"]
    #: 12 characters over the GTIN-13 before its check digit: P item, C verifier, V value.
    pattern: str
    #: Decimal places of the value (prices in the market's currency, weights in kg).
    decimals: int = Field(ge=0, le=5)

    @model_validator(mode="after")
    def _check(self) -> VariableMeasureRuleConfig:
        self.rule()  # raises ValueError naming what is wrong
        return self

    def rule(self) -> VariableMeasureRule:
        """The rule the barcode decoder uses."""
        return VariableMeasureRule(self.prefix, self.measure, self.pattern, self.decimals)


class OutboxConfig(_Section):
    """The durable outbox every event is written to before it is sent to fusion."""

    path: str = "var/device/outbox.db"
    max_events: int = Field(default=100_000, ge=10, le=100_000_000)
    max_age_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    #: Warn when the outbox reaches this fraction of either bound.
    warn_fraction: float = Field(default=0.8, gt=0, lt=1)
    #: "full" survives power loss; "normal" only a crash of the agent.
    synchronous: Literal["full", "normal"] = "full"
    #: Events per Ingest batch.
    batch_max_events: int = Field(default=200, ge=1, le=10_000)
    #: Events sent and not yet acknowledged before the link waits for acks.
    max_in_flight: int = Field(default=2000, ge=1, le=1_000_000)


class ProduceSuggestionsConfig(_Section):
    """Produce suggestions at the scale: when a loose item settles on the produce scale,
    vision ranks the catalog's PLUs from the scale-zone crop (docs/vision.md)."""

    enabled: bool = False
    #: The camera that sees the produce scale (empty: the lane's first camera).
    camera_id: str = ""
    #: The produce scale to watch (empty: any scale with role "produce").
    scale_id: str = ""
    #: The produce scale's area on the camera image (normalised polygon); its bounding box
    #: is cropped and classified.
    scale_zone: list[tuple[float, float]] = Field(
        default_factory=lambda: [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)], min_length=3
    )
    #: Settled weights below this (mg) are an empty scale: suggestions are cleared.
    min_weight_mg: int = Field(default=5_000, ge=0)
    #: Suggestions offered, best first, and the least confidence a suggestion needs.
    max_suggestions: int = Field(default=5, ge=1, le=20)
    min_confidence: float = Field(default=0.01, ge=0, le=1)
    #: Labels asked of vision per crop (several labels may map to one PLU).
    vision_top_k: int = Field(default=20, ge=1, le=100)
    #: How long to wait for a camera frame taken after the scale settled.
    frame_wait_s: float = Field(default=0.25, ge=0, le=5)
    #: Deadline of the ClassifyImages call.
    timeout_s: float = Field(default=2.0, gt=0, le=60)
    #: Catalog files (.csv or .json, as fusion reads them) with PLUs, vision labels and prices.
    catalog_files: list[str] = Field(default_factory=list)
    #: The bundled demo catalog (for the demo and trials only).
    demo_catalog: bool = False

    @model_validator(mode="after")
    def _check(self) -> ProduceSuggestionsConfig:
        for x, y in self.scale_zone:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError("scale_zone points are normalised: x and y must be within 0..1")
        if self.enabled and not (self.catalog_files or self.demo_catalog):
            raise ValueError("enabled needs catalog_files (or demo_catalog) to map labels to PLUs")
        return self


class DeviceConfig(_Section):
    """Settings of the device service (the lane agent)."""

    lane_id: str = Field(default="lane-1", min_length=1)
    outbox: OutboxConfig = OutboxConfig()
    peripherals: list[PeripheralConfig] = Field(default_factory=list)
    cameras: list[CameraConfig] = Field(default_factory=list)
    #: Which level of drawer-kick pin 3 means the drawer is open (depends on the drawer).
    drawer_open_level: Literal["high", "low"] = "high"
    #: Rules for price/weight-embedded barcodes: "us" or one of biip's European regions.
    scanner_region: Region = "us"
    #: Variable-measure rules replacing the built-in ones of scanner_region (None: built-in).
    variable_measure_rules: list[VariableMeasureRuleConfig] | None = None
    #: Send events to fusion (FusionService.Ingest).
    fusion_link: bool = True
    #: Watch fusion for lane commands (FusionService.WatchAlerts with commands).
    fusion_commands: bool = True
    #: Fusion replicas the lanes are sharded over (fusion.replica_count); with more than
    #: one, the agent dials fusion_shard_address for its lane's shard (docs/deploy.md).
    fusion_shards: int = Field(default=1, ge=1, le=4096)
    #: The address of shard {shard}; empty: peers.fusion is the only fusion there is.
    fusion_shard_address: str = ""
    #: Send camera frames to vision (VisionService.Analyze).
    vision_link: bool = True
    #: Per-call deadline for unary calls and stream set-up to peers.
    link_timeout_s: float = Field(default=5.0, gt=0, le=3600)
    #: Backoff between reconnect attempts, for peripherals and links.
    reconnect_initial_s: float = Field(default=0.2, gt=0, le=3600)
    reconnect_max_s: float = Field(default=10.0, gt=0, le=3600)
    #: Keep face-blurred camera frames around alerts as evidence (docs/device.md).
    evidence_enabled: bool = True
    #: Folder evidence is written to: one sub-folder per alert.
    evidence_dir: str = Field(default="var/evidence", min_length=1)
    #: Seconds of frames before an alert that each camera keeps in memory.
    evidence_before_s: float = Field(default=10.0, gt=0, le=300)
    #: Seconds of frames after an alert that are added before the evidence is written.
    evidence_after_s: float = Field(default=5.0, ge=0, le=300)
    #: Days after which an evidence folder is deleted.
    evidence_retention_days: float = Field(default=30.0, gt=0)
    #: Most frames per camera per alert (frames are sampled evenly over the window).
    evidence_max_frames: int = Field(default=45, ge=1, le=1000)
    #: Ranked PLU suggestions for loose items on the produce scale (WatchProduceSuggestions).
    produce_suggestions: ProduceSuggestionsConfig = ProduceSuggestionsConfig()

    def fusion_address(self, store_id: str, lane_id: str, peers_fusion: str) -> str:
        """The fusion replica this lane's events go to: its shard's address when sharded,
        else peers.fusion (the mapping is lanesight.common.sharding, as fusion's)."""
        if self.fusion_shards == 1 or not self.fusion_shard_address:
            return peers_fusion
        return fusion_address(store_id, lane_id, self.fusion_shards, self.fusion_shard_address)

    @model_validator(mode="after")
    def _shard_address(self) -> DeviceConfig:
        if self.fusion_shards > 1 and "{shard}" not in self.fusion_shard_address:
            raise ValueError(
                "fusion_shard_address: with fusion_shards > 1 it must contain {shard}, e.g."
                ' "fusion-{shard}.fusion-headless.lanesight.svc:50063"'
            )
        return self

    def barcode_market(self) -> Market:
        """The market barcode decoding follows: scanner_region and its variable-measure rules."""
        rules = self.variable_measure_rules
        return Market(
            self.scanner_region, None if rules is None else tuple(r.rule() for r in rules)
        )

    @model_validator(mode="after")
    def _produce_camera(self) -> DeviceConfig:
        wanted = self.produce_suggestions
        if wanted.enabled:
            ids = [camera.id for camera in self.cameras]
            if not ids:
                raise ValueError("produce_suggestions.enabled: the lane has no camera")
            if wanted.camera_id and wanted.camera_id not in ids:
                raise ValueError(f"produce_suggestions.camera_id: no camera {wanted.camera_id!r}")
        return self

    @model_validator(mode="after")
    def _unique_ids(self) -> DeviceConfig:
        ids = [p.id for p in self.peripherals] + [c.id for c in self.cameras]
        ids += [p.drawer_id for p in self.peripherals if p.drawer_id]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"device ids must be unique: {', '.join(duplicates)}")
        return self
