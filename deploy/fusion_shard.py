#!/usr/bin/env python3
"""Which fusion replica owns a lane: jump consistent hash of SHA-256("store_id/lane_id").

    python3 deploy/fusion_shard.py --replicas 3 store-0042/lane-07 store-0042/lane-08
    python3 deploy/fusion_shard.py --replicas 3 --moves-to 4 --lanes-file lanes.txt

Stdlib only, so it runs anywhere configs are rendered. The mapping is documented in
docs/deploy.md ("Fusion shards"); anything that routes lanes must use this function.
"""

from __future__ import annotations

import argparse
import hashlib
import sys

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
    """The address a lane agent dials for its shard."""
    return template.format(shard=fusion_shard(store_id, lane_id, replicas))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, required=True, help="fusion replicas now")
    parser.add_argument("--moves-to", type=int, help="show only lanes that move at this count")
    parser.add_argument(
        "--template",
        default="fusion-{shard}.fusion-headless.lanesight.svc:50063",
        help="address template with {shard}",
    )
    parser.add_argument("--lanes-file", help="one STORE/LANE per line")
    parser.add_argument("lanes", nargs="*", help="STORE/LANE")
    args = parser.parse_args(argv)
    lanes = list(args.lanes)
    if args.lanes_file:
        with open(args.lanes_file, encoding="utf-8") as lines:
            lanes += [line.strip() for line in lines if line.strip()]
    for lane in lanes:
        store_id, sep, lane_id = lane.partition("/")
        if not sep or not store_id or not lane_id:
            print(f"not STORE/LANE: {lane!r}", file=sys.stderr)
            return 2
        shard = fusion_shard(store_id, lane_id, args.replicas)
        if args.moves_to is not None:
            new = fusion_shard(store_id, lane_id, args.moves_to)
            if new != shard:
                print(f"{lane}\tfusion-{shard} -> fusion-{new}")
            continue
        print(f"{lane}\t{shard}\t{args.template.format(shard=shard)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
