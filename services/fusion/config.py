"""Configuration of the fusion service (the [fusion] section)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Literal

from lanesight.common.sharding import pod_ordinal
from lanesight.fusion.alerts import RULE_NAMES
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_rules(names: list[str] | dict[str, float]) -> None:
    unknown = sorted(set(names) - set(RULE_NAMES))
    if unknown:
        raise ValueError(f"unknown rule {unknown[0]!r}; rules are {', '.join(RULE_NAMES)}")


class BaggingSettings(_Section):
    """The bagging-area (security) scale ledger."""

    # A new stable weight counts as a change only beyond this (scale noise and drift).
    change_threshold_mg: int = Field(default=6_000, ge=0)
    # Tolerance = max(tolerance_floor_mg, tolerance_pct x expected); per-item tolerances win.
    tolerance_floor_mg: int = Field(default=15_000, ge=0)
    tolerance_pct: float = Field(default=0.06, ge=0, le=1)
    # An unexplained increase up to this is the shopper's own bag: one declared on the POS,
    # or one put down before anything scanned was bagged (reusable bags weigh up to ~350 g).
    own_bag_max_mg: int = Field(default=400_000, ge=0, le=5_000_000)
    # How long an increase may wait for its scan, and a drop for its void, in lane time.
    unmatched_increase_window_ms: int = Field(default=3_000, ge=0)
    # Long enough for a shopper rearranging the bag to put a lifted item back.
    unmatched_decrease_window_ms: int = Field(default=7_000, ge=0)
    # A drop the camera, watching, saw nothing leave the packing area with is an item held
    # over the bag (bags being rearranged): it may come back for this long, or until
    # payment starts, whichever is first.
    unseen_decrease_window_ms: int = Field(default=20_000, ge=0)
    # A drop this soon after a transaction starts is first taken as the previous shopper
    # lifting their bags off (weight that was on the scale when the transaction started).
    carry_lift_window_ms: int = Field(default=60_000, ge=0, le=3_600_000)
    # The most scanned items one increase is matched against as a subset.
    max_subset_items: int = Field(default=6, ge=1, le=8)
    # A weighed item reaches the bagging scale in a produce bag and is read by a coarser
    # scale than the one that priced it: its weight may differ by this much more.
    weighed_item_allowance_mg: int = Field(default=25_000, ge=0, le=1_000_000)


class VisionSettings(_Section):
    """How vision evidence is linked to scans."""

    # A crossing into the bagging area needs a scan from this long before to this long after.
    missed_scan_before_ms: int = Field(default=6_000, ge=0)
    missed_scan_after_ms: int = Field(default=2_500, ge=0)
    # An item that was held at the scanner may reach the bag this long before its POS line
    # (the shopper bags it while looking up its PLU).
    missed_scan_after_held_ms: int = Field(default=8_000, ge=0, le=120_000)
    # A recognition in the scan zone belongs to a POS line added up to this long after it
    # (longer for produce, which waits on the scale during the PLU lookup), or up to
    # scan_link_after_ms before it.
    scan_link_window_ms: int = Field(default=3_000, ge=0)
    produce_link_window_ms: int = Field(default=12_000, ge=0)
    scan_link_after_ms: int = Field(default=1_000, ge=0)
    # A scanned line is judged against what the camera saw this long after it was linked
    # to its track (more views of the item arrive meanwhile; one frame never decides).
    label_settle_ms: int = Field(default=1_500, ge=0, le=60_000)
    # A mismatch needs the disagreeing label at min_label_score (same_kind_min_score when
    # it is a variety of the scanned item's own kind, such as two melons), the scanned
    # item's own labels at no more than max_own_label_score, and a margin of label_margin.
    # Tuned on the shipped model's outputs on held-out photos: its wrong answers are
    # mostly within a kind, and it is confidently wrong on about one photo in fifty.
    min_label_score: float = Field(default=0.5, ge=0, le=1)
    same_kind_min_score: float = Field(default=0.99, ge=0, le=1)
    max_own_label_score: float = Field(default=0.05, ge=0, le=1)
    label_margin: float = Field(default=0.3, ge=0, le=1)
    # The model's known confusions: held-out photos (the vision model's
    # heldout_outputs.json when empty) where one item came out surely as another. Vision
    # alone does not call a scanned item X "really Y" when photos of X were seen as Y.
    confusions_file: str = ""
    confusion_min_score: float = Field(default=0.5, ge=0, le=1)
    # A camera must stay unhealthy this long in a transaction before it is reported.
    camera_tamper_min_ms: int = Field(default=5_000, ge=0, le=600_000)
    # The cart is judged this long after payment starts (its item count comes just after).
    cart_check_delay_ms: int = Field(default=1_000, ge=0, le=60_000)


class PosSettings(_Section):
    """POS exception limits."""

    large_override_minor: int = Field(default=1_000, ge=0)
    large_override_pct: float = Field(default=0.5, ge=0, le=1)
    excessive_voids: int = Field(default=10, ge=1)
    excessive_voids_window_ms: int = Field(default=3_600_000, ge=1)


def _default_thresholds() -> dict[str, float]:
    return {name: 0.5 for name in RULE_NAMES}


class RuleSettings(_Section):
    """Thresholds shared by every store (tuning from dispositions moves them per store)."""

    # The least confidence at which each rule raises an alert.
    min_confidence: dict[str, float] = Field(default_factory=_default_thresholds)
    # Signals about the same item within this window merge into one alert.
    merge_window_ms: int = Field(default=4_000, ge=0)
    # Events may arrive this late in lane time (vision latency); windows wait for it.
    jitter_ms: int = Field(default=300, ge=0)
    # Events that arrive late (a camera behind the scale and POS) are put back in lane-time
    # order: while a lane's events arrive up to this late, each waits as long as the
    # lateness seen lately before it is applied (alerts come that much later).
    reorder_max_ms: int = Field(default=4_000, ge=0, le=60_000)
    # Severity by amount at risk, in minor units.
    severity_high_minor: int = Field(default=2_000, ge=0)
    severity_medium_minor: int = Field(default=300, ge=0)

    @field_validator("min_confidence")
    @classmethod
    def _known_rules(cls, value: dict[str, float]) -> dict[str, float]:
        _check_rules(value)
        if any(not 0 <= v <= 1 for v in value.values()):
            raise ValueError("thresholds must be in 0..1")
        return {**_default_thresholds(), **value}


class EscalationPolicy(_Section):
    """A store's escalation: a lane prompt the shopper can fix, then the attendant, then pause."""

    # Rules whose alerts first prompt the shopper at a self-checkout lane.
    lane_prompt_rules: list[str] = Field(
        default_factory=lambda: [
            "missed_scan",
            "unscanned_item_in_bagging",
            "item_removed_from_bagging",
            "weight_mismatch",
            "quantity_mismatch",
            "item_left_in_cart",
        ]
    )
    # A prompt not corrected within this lane time goes to the attendant.
    prompt_timeout_ms: int = Field(default=15_000, ge=0)
    # Pause the lane for alerts at or above both of these.
    pause_min_severity: Literal["low", "medium", "high"] = "high"
    pause_min_confidence: float = Field(default=0.9, ge=0, le=1)
    # Pause once a transaction has this many open alerts (0 = never).
    pause_after_alerts_per_transaction: int = Field(default=3, ge=0)
    # Pause when payment starts while attendant-level alerts are open.
    pause_at_tender_with_open_alerts: bool = True
    # Print an audit slip when a transaction ends with open alerts.
    audit_slip_at_end: bool = True
    # Lane prompts and pauses per lane per minute; more alerts go to the attendant only.
    lane_interventions_per_minute: int = Field(default=4, ge=0)

    @field_validator("lane_prompt_rules")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        _check_rules(value)
        return value


class FeedbackSettings(_Section):
    """Tuning rule thresholds from dispositions toward a target false-alert rate."""

    enabled: bool = True
    target_false_alert_rate: float = Field(default=0.3, ge=0, le=1)
    step: float = Field(default=0.02, gt=0, le=0.5)
    max_threshold: float = Field(default=0.95, ge=0, le=1)
    min_samples: int = Field(default=10, ge=1)
    window: int = Field(default=50, ge=1)


class ProfileSettings(_Section):
    """Learning per-SKU weight profiles from clean transactions."""

    min_samples: int = Field(default=5, ge=1)
    outlier_sigma: float = Field(default=4.0, gt=0)
    outlier_floor_mg: int = Field(default=20_000, ge=0)
    range_sigma: float = Field(default=3.0, gt=0)


class FusionConfig(_Section):
    """Settings of the fusion service."""

    # Forward every processed event and alert revision to reporting (config.peers.reporting).
    forward_to_reporting: bool = True
    # The name this replica's records carry to reporting, which numbers them per sender;
    # empty: "fusion-<replica index>", so every shard is a sender of its own.
    sender_id: str = ""
    # Records kept for reporting while it is unreachable; the oldest are dropped beyond.
    forward_queue_max: int = Field(default=200_000, ge=10, le=10_000_000)
    forward_batch_max: int = Field(default=500, ge=1, le=10_000)
    # SQLite file for weight profiles and tuned thresholds (relative to the working dir).
    store_path: Path = Path("var/fusion.sqlite")
    # Catalog files (.csv or .json) loaded at start; the bundled demo catalog first if set.
    catalog_files: list[Path] = Field(default_factory=list)
    # The bundled demo catalog (92 grocery items): for the demo and trials only. Left on
    # in production it prices unidentified items from items the store does not sell.
    demo_catalog: bool = False
    # Messages buffered per watcher before it is told it missed some.
    watch_buffer: int = Field(default=1_000, ge=1, le=1_000_000)
    # How often live lane clocks advance pending windows, in ms.
    tick_ms: int = Field(default=20, ge=5, le=60_000)
    # Lane sharding (docs/deploy.md, "Fusion shards"): this replica owns the lanes whose
    # jump hash (lanesight.common.sharding) over replica_count is its index. None: the
    # ordinal of the StatefulSet pod this runs in (host name fusion-2 -> 2); 0 unsharded.
    replica_index: int | None = Field(default=None, ge=0, le=4095)
    replica_count: int = Field(default=1, ge=1, le=4096)
    bagging: BaggingSettings = BaggingSettings()
    vision: VisionSettings = VisionSettings()
    pos: PosSettings = PosSettings()
    rules: RuleSettings = RuleSettings()
    escalation: EscalationPolicy = EscalationPolicy()
    # Per-store escalation policies by store id; other stores use `escalation`.
    store_policies: dict[str, EscalationPolicy] = Field(default_factory=dict)
    feedback: FeedbackSettings = FeedbackSettings()
    profiles: ProfileSettings = ProfileSettings()

    @model_validator(mode="after")
    def _replica_in_range(self) -> FusionConfig:
        if self.replica_index is not None and self.replica_index >= self.replica_count:
            raise ValueError("replica_index must be less than replica_count")
        return self

    def replica(self, host_name: str | None = None) -> int:
        """This replica's index: replica_index, else the pod ordinal of the host name
        (socket.gethostname() unless given), else 0 when there is one replica.

        Raises ValueError naming the key when neither gives an index in range."""
        if self.replica_index is not None:
            return self.replica_index
        if self.replica_count == 1:
            return 0
        name = socket.gethostname() if host_name is None else host_name
        ordinal = pod_ordinal(name)
        if ordinal is None:
            raise ValueError(
                f"fusion.replica_index: not set, and host name {name!r} is not a StatefulSet "
                f"pod name (fusion-<N>); set it for each of the {self.replica_count} replicas"
            )
        if ordinal >= self.replica_count:
            raise ValueError(
                f"fusion.replica_index: pod ordinal {ordinal} of {name!r} is not below "
                f"fusion.replica_count {self.replica_count}: scale the StatefulSet and "
                "replica_count together"
            )
        return ordinal

    def sender(self, replica: int) -> str:
        """The sender id of this replica's records to reporting."""
        return self.sender_id or f"fusion-{replica}"

    def policy_for(self, store_id: str) -> EscalationPolicy:
        """The escalation policy of a store."""
        return self.store_policies.get(store_id, self.escalation)
