#!/usr/bin/env python3
"""Which fusion replica owns a lane: jump consistent hash of SHA-256("store_id/lane_id").

    python3 deploy/fusion_shard.py --replicas 3 store-0042/lane-07 store-0042/lane-08
    python3 deploy/fusion_shard.py --replicas 3 --moves-to 4 --lanes-file lanes.txt

Stdlib only, so it runs anywhere configs are rendered. The mapping is documented in
docs/deploy.md ("Fusion shards"); anything that routes lanes must use this function.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# The mapping lives in lanesight.common.sharding; this script only adds a command line.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from lanesight.common.sharding import (
    fusion_address,
    fusion_shard,
    jump_consistent_hash,
    lane_key,
)

__all__ = ["fusion_address", "fusion_shard", "jump_consistent_hash", "lane_key", "main"]


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
