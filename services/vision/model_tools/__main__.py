"""Command line: `python -m lanesight.vision.model_tools --dataset DIR --split FILE`."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .classifier import GroceryClassifier
from .evaluate import evaluate_dataset, evaluate_prototypes, format_report, iconic_prototype_index


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lanesight.vision.model_tools",
        description="Evaluate the grocery classifier on a folder in GroceryStoreDataset layout.",
    )
    parser.add_argument(
        "--dataset", type=Path, required=True, help="folder the split paths are relative to"
    )
    parser.add_argument(
        "--split", type=Path, required=True, help="file of 'path, fine_id, coarse_id' lines"
    )
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="folder with the ONNX and metadata"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--threads", type=int, default=0, help="onnxruntime intra-op threads (0: auto)"
    )
    parser.add_argument("--hflip-tta", action="store_true", help="average with the mirrored image")
    parser.add_argument(
        "--iconic-prototypes",
        action="store_true",
        help="also score nearest-prototype matching with one iconic image per class "
        "(needs classes.csv in --dataset)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    classifier = GroceryClassifier(
        args.model_dir, intra_op_threads=args.threads, hflip_tta=args.hflip_tta
    )
    result = evaluate_dataset(args.dataset, args.split, classifier, args.batch_size)
    if args.iconic_prototypes:
        index = iconic_prototype_index(args.dataset, classifier)
        result["prototype_top1"] = evaluate_prototypes(
            args.dataset, args.split, classifier, index, args.batch_size
        )
    print(json.dumps(result, indent=1) if args.json else format_report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
