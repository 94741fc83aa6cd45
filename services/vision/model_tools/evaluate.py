"""Accuracy and speed of the grocery classifier on any folder in GroceryStoreDataset layout."""

from __future__ import annotations

import csv
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .calibration import expected_calibration_error
from .classifier import GroceryClassifier
from .enrolment import PrototypeIndex

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SplitEntry:
    """One `path, fine_id, coarse_id` line of a split file."""

    path: Path
    fine_id: int
    coarse_id: int


def read_split_file(dataset_dir: Path | str, split_file: Path | str) -> list[SplitEntry]:
    """Parse a split file; paths are relative to `dataset_dir`."""
    dataset_dir = Path(dataset_dir)
    entries = []
    for line_number, line in enumerate(Path(split_file).read_text().splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [part.strip() for part in line.split(",")]
        if len(parts) != 3:
            raise ValueError(f"{split_file}:{line_number}: expected 'path, fine_id, coarse_id'")
        entries.append(SplitEntry(dataset_dir / parts[0].lstrip("/"), int(parts[1]), int(parts[2])))
    return entries


def read_image(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read image {path}")
    return image


def _top_k_hits(probs: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    best = np.argsort(-probs, axis=1)[:, :k]
    return (best == truth[:, None]).any(axis=1)


def evaluate_dataset(
    dataset_dir: Path | str,
    split_file: Path | str,
    classifier: GroceryClassifier,
    batch_size: int = 32,
) -> dict:
    """Top-1/top-5 fine and coarse accuracy, for produce only and for all, plus images per second.

    Coarse scores are the summed probabilities of each coarse class's fine classes.
    `images_per_s` counts decoding, preprocessing and inference; `inference_images_per_s`
    counts only the onnxruntime calls.
    """
    entries = read_split_file(dataset_dir, split_file)
    if not entries:
        raise ValueError(f"{split_file} lists no images")
    probs_batches, inference_s = [], 0.0
    started = time.perf_counter()
    for start in range(0, len(entries), batch_size):
        images = [read_image(entry.path) for entry in entries[start : start + batch_size]]
        batch = classifier.preprocess(images)
        inference_started = time.perf_counter()
        probs, _ = classifier.predict(batch)
        inference_s += time.perf_counter() - inference_started
        probs_batches.append(probs)
    total_s = time.perf_counter() - started
    probs = np.concatenate(probs_batches)

    fine_truth = np.array([entry.fine_id for entry in entries])
    coarse_truth = np.array([entry.coarse_id for entry in entries])
    coarse_probs = classifier.coarse_probs(probs)
    hits = {
        "fine_top1": _top_k_hits(probs, fine_truth, 1),
        "fine_top5": _top_k_hits(probs, fine_truth, 5),
        "coarse_top1": _top_k_hits(coarse_probs, coarse_truth, 1),
        "coarse_top5": _top_k_hits(coarse_probs, coarse_truth, 5),
    }
    produce = classifier.is_produce[fine_truth]
    subsets = {"all": np.ones(len(entries), dtype=bool), "produce": produce}
    result: dict = {
        "count": len(entries),
        "produce_count": int(produce.sum()),
        "classes_present": len(set(fine_truth.tolist())),
        "images_per_s": len(entries) / total_s,
        "inference_images_per_s": len(entries) / inference_s,
    }
    for subset_name, mask in subsets.items():
        result[subset_name] = {
            metric: (float(hit[mask].mean()) if mask.any() else float("nan"))
            for metric, hit in hits.items()
        }
    result["temperature"] = classifier.temperature
    result["ece"] = expected_calibration_error(probs, fine_truth)
    result["mean_top1_score"] = float(probs.max(axis=1).mean())
    return result


def format_report(result: dict) -> str:
    """A plain-text table of an `evaluate_dataset` result."""
    lines = [
        f"{result['count']} images ({result['produce_count']} produce, "
        f"{result['classes_present']} classes); {result['images_per_s']:.1f} images/s end to end, "
        f"{result['inference_images_per_s']:.1f} images/s inference only",
        "",
        f"{'subset':<8} {'count':>5} {'fine top-1':>10} {'fine top-5':>10} "
        f"{'coarse top-1':>12} {'coarse top-5':>12}",
    ]
    for subset_name, count in (("produce", result["produce_count"]), ("all", result["count"])):
        scores = result[subset_name]
        lines.append(
            f"{subset_name:<8} {count:>5} {scores['fine_top1']:>10.1%} {scores['fine_top5']:>10.1%} "
            f"{scores['coarse_top1']:>12.1%} {scores['coarse_top5']:>12.1%}"
        )
    if "ece" in result:
        lines.append("")
        lines.append(
            f"calibration: temperature {result['temperature']:.3f}; fine top-1 mean score "
            f"{result['mean_top1_score']:.1%} vs accuracy {result['all']['fine_top1']:.1%}; "
            f"expected calibration error {result['ece']:.1%} (15 bins)"
        )
    if "prototype_top1" in result:
        lines.append("")
        lines.append(
            f"nearest prototype (one iconic image per class) top-1: {result['prototype_top1']:.1%}"
        )
    return "\n".join(lines)


def iconic_prototype_index(
    dataset_dir: Path | str, classifier: GroceryClassifier
) -> PrototypeIndex:
    """Enrol every class of classes.csv from its single iconic catalogue image."""
    dataset_dir = Path(dataset_dir)
    index = PrototypeIndex(classifier.embedding_dim)
    with open(dataset_dir / "classes.csv", newline="") as f:
        for row in csv.DictReader(f):
            image = read_image(dataset_dir / row["Iconic Image Path (str)"].lstrip("/"))
            index.enrol_images(classifier, row["Class Name (str)"], [image])
    return index


def evaluate_prototypes(
    dataset_dir: Path | str,
    split_file: Path | str,
    classifier: GroceryClassifier,
    index: PrototypeIndex,
    batch_size: int = 32,
) -> float:
    """Top-1 accuracy of nearest-prototype classification (prototype names are class names)."""
    entries = read_split_file(dataset_dir, split_file)
    correct = 0
    for start in range(0, len(entries), batch_size):
        chunk = entries[start : start + batch_size]
        _, embeddings = classifier.classify([read_image(entry.path) for entry in chunk])
        for entry, match in zip(chunk, index.classify(embeddings), strict=True):
            correct += match.name == classifier.labels[entry.fine_id].name
    return correct / len(entries)
