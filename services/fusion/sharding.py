"""Fusion's view of lane sharding: the one mapping lives in lanesight.common.sharding."""

from lanesight.common.sharding import (
    fusion_address,
    fusion_shard,
    jump_consistent_hash,
    lane_key,
    lane_shard,
    pod_ordinal,
)

__all__ = [
    "fusion_address",
    "fusion_shard",
    "jump_consistent_hash",
    "lane_key",
    "lane_shard",
    "pod_ordinal",
]
