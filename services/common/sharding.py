"""Which fusion replica owns a lane: jump consistent hash of SHA-256("store_id/lane_id").

One function for everything that routes lanes: fusion (which lanes it accepts), the lane
agent (which replica it dials, device.fusion_shards) and deploy/fusion_shard.py. Stdlib
only. Growing the replicas from N to N+1 moves only 1/(N+1) of
the lanes; a moved lane's agent replays its outbox from the last ack to its new owner.
"""

from __future__ import annotations

import hashlib

_JUMP_MULTIPLIER = 2862933555777941757
_MASK64 = (1 << 64) - 1


def jump_consistent_hash(key: int, buckets: int) -> int:
    """Lamping & Veach's jump consistent hash: growing N to N+1 moves 1/(N+1) of keys."""
    if buckets < 1:
        raise ValueError("buckets must be at least 1")
    bucket, candidate = -1, 0
    while candidate < buckets:
        bucket = candidate
        key = (key * _JUMP_MULTIPLIER + 1) & _MASK64
        candidate = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def lane_key(store_id: str, lane_id: str) -> int:
    """The 64-bit key of a lane: the first 8 bytes of SHA-256 of "store_id/lane_id"."""
    digest = hashlib.sha256(f"{store_id}/{lane_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def fusion_shard(store_id: str, lane_id: str, replicas: int) -> int:
    """The ordinal of the fusion replica (fusion-<N>) that owns the lane."""
    return jump_consistent_hash(lane_key(store_id, lane_id), replicas)


def fusion_address(
    store_id: str,
    lane_id: str,
    replicas: int,
    template: str = "fusion-{shard}.fusion-headless.lanesight.svc:50063",
) -> str:
    """The address a lane agent dials for its shard ({shard} in template is the ordinal)."""
    return template.format(shard=lane_shard(store_id, lane_id, replicas))


def lane_shard(store_id: str, lane_id: str, replicas: int) -> int:
    """The replica index (0-based) that owns a lane; the same on every host and restart."""
    if replicas <= 1:
        return 0
    return fusion_shard(store_id, lane_id, replicas)


def pod_ordinal(pod_name: str) -> int | None:
    """The ordinal of a StatefulSet pod from its name ("fusion-2" -> 2); None without one."""
    head, sep, tail = pod_name.rpartition("-")
    if not sep or not head or not tail.isdigit():
        return None
    return int(tail)


#: Trailing metadata of fusion's refusal of another replica's lane: the owner's index.
SHARD_METADATA_KEY = "lanesight-fusion-replica"
