"""Which fusion replica owns a lane: a stable hash of store_id/lane_id modulo the replicas."""

from __future__ import annotations

import zlib


def lane_shard(store_id: str, lane_id: str, replicas: int) -> int:
    """The replica index (0-based) that owns a lane; the same on every host and restart."""
    if replicas <= 1:
        return 0
    return zlib.crc32(f"{store_id}/{lane_id}".encode()) % replicas
