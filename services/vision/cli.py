"""`lanesight eval barcodes DIR` and `lanesight eval vision --dataset DIR --split FILE`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _eval_barcodes(args: argparse.Namespace) -> int:
    from lanesight.vision.barcodes import evaluate_barcode_folder, format_barcode_report

    root = Path(args.dir)
    if not root.is_dir():
        print(f"{root}: not a folder", file=sys.stderr)
        return 2
    scores = evaluate_barcode_folder(root)
    if not scores:
        print(f"{root}: no N.png + N.txt pairs found", file=sys.stderr)
        return 1
    print(format_barcode_report(scores))
    if args.show_misses:
        for folder, score in scores.items():
            if score.misses:
                print(f"{folder}: not decoded: {' '.join(score.misses)}")
    return 0


def _eval_vision(args: argparse.Namespace) -> int:
    from lanesight.vision.model_tools import GroceryClassifier, evaluate_dataset, format_report
    from lanesight.vision.recognizer import usable_providers

    classifier = GroceryClassifier(
        args.model_dir,
        providers=usable_providers(args.providers.split(",")),
        intra_op_threads=args.threads,
        hflip_tta=args.hflip_tta,
    )
    result = evaluate_dataset(args.dataset, args.split, classifier, args.batch_size)
    print(json.dumps(result, indent=1) if args.json else format_report(result))
    return 0


def register_eval(which: argparse._SubParsersAction) -> None:
    """Add the vision service's commands under `lanesight eval`."""

    barcodes = which.add_parser(
        "barcodes",
        help="decode rate over N.png + N.txt pairs found recursively, per folder and in total",
    )
    barcodes.add_argument("dir", help="folder searched recursively, e.g. shared/data/barcodes")
    barcodes.add_argument("--show-misses", action="store_true", help="list images not decoded")
    barcodes.set_defaults(handler=_eval_barcodes)

    vision = which.add_parser(
        "vision",
        help="top-1/top-5 accuracy (fine, coarse; produce, all), calibration error and images/s",
    )
    vision.add_argument("--dataset", required=True, type=Path, help="GroceryStoreDataset folder")
    vision.add_argument("--split", required=True, type=Path, help="'path, fine_id, coarse_id' file")
    vision.add_argument("--model-dir", type=Path, default=None, help="default: the shipped model")
    vision.add_argument("--batch-size", type=int, default=32)
    vision.add_argument("--threads", type=int, default=0, help="intra-op threads (0: auto)")
    vision.add_argument(
        "--providers",
        default="CPUExecutionProvider",
        help="comma-separated onnxruntime providers, e.g. CUDAExecutionProvider,CPUExecutionProvider",
    )
    vision.add_argument(
        "--hflip-tta", action="store_true", help="average with the mirrored image (twice the cost)"
    )
    vision.add_argument("--json", action="store_true", help="print the result as JSON")
    vision.set_defaults(handler=_eval_vision)
