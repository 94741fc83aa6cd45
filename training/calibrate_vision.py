"""Fit the shipped model's temperature on held-out photos and export its held-out outputs.

Run from the repository root after training (no torch needed; matplotlib draws the
reliability diagram when it is installed, as in `.venv-train`):

    PYTHONPATH=build/mypy .venv-train/bin/python training/calibrate_vision.py \
        --data-dir ../shared/data/grocery/dataset

It classifies `val.txt` with the raw softmax, fits one temperature T by minimising the
negative log-likelihood (temperature scaling, Guo et al. 2017), and writes next to the
model:

- `calibration.json`: T, the ECE before and after (after = 2-fold cross-fitted, so T
  never saw the images it is scored on), and the reliability bins;
- `heldout_outputs.json`: per val photo its true fine/coarse class and the top-5 labels
  with calibrated scores (T fitted on all of val), which the fusion robustness harness
  samples recognition results from;
- `docs/images/vision_reliability.png`: the reliability diagram.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lanesight.vision.model_tools.calibration import (  # noqa: E402
    CALIBRATION_FILE_NAME,
    DEFAULT_BINS,
    cross_fitted_probs,
    expected_calibration_error,
    fit_temperature,
    nll,
    reliability,
    softmax_t,
)
from lanesight.vision.model_tools.classifier import (  # noqa: E402
    DEFAULT_MODEL_DIR,
    ONNX_FILE_NAME,
    GroceryClassifier,
)
from lanesight.vision.model_tools.evaluate import read_image, read_split_file  # noqa: E402

TOP_K = 5


def held_out_log_probs(
    classifier: GroceryClassifier, dataset: Path, split: Path
) -> tuple[list, np.ndarray]:
    entries = read_split_file(dataset, split)
    chunks = []
    for start in range(0, len(entries), 32):
        probs, _ = classifier.classify([read_image(e.path) for e in entries[start : start + 32]])
        chunks.append(probs)
    probs = np.concatenate(chunks).astype(np.float64)
    return entries, np.log(np.clip(probs, 1e-30, None))


def draw(
    before, after, path: Path, temperature: float, ece_before: float, ece_after: float
) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no reliability diagram drawn", file=sys.stderr)
        return False
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2), sharey=True)
    for ax, bins, title in (
        (axes[0], before, f"raw softmax (ECE {ece_before:.1%})"),
        (axes[1], after, f"T = {temperature:.2f}, cross-fitted (ECE {ece_after:.1%})"),
    ):
        centers = [(b.low + b.high) / 2 for b in bins if b.count]
        ax.bar(
            centers,
            [b.accuracy for b in bins if b.count],
            width=1 / len(bins),
            edgecolor="black",
            color="#4c72b0",
            label="accuracy",
        )
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
        ax.plot(
            centers,
            [b.mean_confidence for b in bins if b.count],
            "o",
            color="#dd8452",
            label="mean confidence",
        )
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("top-1 score")
        ax.set_title(title, fontsize=10)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle("grocery classifier on val (296 photos, 15 bins)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="GroceryStoreDataset dataset/")
    parser.add_argument("--split", default="val.txt")
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument(
        "--figure", type=Path, default=REPO_ROOT / "docs" / "images" / "vision_reliability.png"
    )
    args = parser.parse_args()

    classifier = GroceryClassifier(args.model_dir, calibrated=False)
    entries, log_probs = held_out_log_probs(classifier, args.data_dir, args.data_dir / args.split)
    truth = np.array([e.fine_id for e in entries])
    raw = softmax_t(log_probs, 1.0)
    temperature = fit_temperature(log_probs, truth)
    crossed = cross_fitted_probs(log_probs, truth)
    shipped = softmax_t(log_probs, temperature)
    ece_before = expected_calibration_error(raw, truth)
    ece_after = expected_calibration_error(crossed, truth)
    ece_in_sample = expected_calibration_error(shipped, truth)
    bins_before, bins_after = reliability(raw, truth), reliability(crossed, truth)
    onnx_bytes = (args.model_dir / ONNX_FILE_NAME).read_bytes()
    calibration = {
        "method": "temperature scaling: scores = softmax(logits / temperature)",
        "temperature": round(temperature, 4),
        "fitted_on": f"{args.split} ({len(truth)} photos)",
        "model_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "bins": DEFAULT_BINS,
        "ece_raw": round(ece_before, 4),
        "ece_calibrated_cross_fitted": round(ece_after, 4),
        "ece_calibrated_in_sample": round(ece_in_sample, 4),
        "nll_raw": round(nll(log_probs, truth, 1.0), 4),
        "nll_calibrated": round(nll(log_probs, truth, temperature), 4),
        "mean_top1_score_raw": round(float(raw.max(axis=1).mean()), 4),
        "mean_top1_score_calibrated": round(float(shipped.max(axis=1).mean()), 4),
        "top1_accuracy": round(float((raw.argmax(axis=1) == truth).mean()), 4),
        "reliability_raw": [vars(b) for b in bins_before],
        "reliability_calibrated_cross_fitted": [vars(b) for b in bins_after],
    }
    (args.model_dir / CALIBRATION_FILE_NAME).write_text(json.dumps(calibration, indent=1) + "\n")

    labels = classifier.labels
    images = []
    for entry, row in zip(entries, shipped, strict=True):
        best = np.argsort(-row)[:TOP_K]
        images.append(
            {
                "path": str(entry.path.relative_to(args.data_dir)),
                "fine_id": entry.fine_id,
                "coarse_id": entry.coarse_id,
                "label": labels[entry.fine_id].name,
                "is_produce": labels[entry.fine_id].is_produce,
                "true_score": round(float(row[entry.fine_id]), 5),
                "top": [
                    {"id": int(i), "label": labels[i].name, "score": round(float(row[i]), 5)}
                    for i in best
                ],
            }
        )
    heldout = {
        "what": "the shipped grocery model's calibrated outputs on held-out photos",
        "split": args.split,
        "model_sha256": calibration["model_sha256"],
        "temperature": calibration["temperature"],
        "top_k": TOP_K,
        "count": len(images),
        "images": images,
    }
    (args.model_dir / "heldout_outputs.json").write_text(json.dumps(heldout, indent=1) + "\n")
    drawn = draw(bins_before, bins_after, args.figure, temperature, ece_before, ece_after)

    print(f"temperature {temperature:.3f} (fitted on {len(truth)} {args.split} photos)")
    print(f"{'':<34} {'ECE':>6} {'NLL':>6} {'mean top-1 score':>17} {'top-1 acc':>9}")
    acc = calibration["top1_accuracy"]
    print(
        f"{'raw softmax':<34} {ece_before:>6.1%} {calibration['nll_raw']:>6.3f} "
        f"{calibration['mean_top1_score_raw']:>17.1%} {acc:>9.1%}"
    )
    print(
        f"{'calibrated (2-fold cross-fitted)':<34} {ece_after:>6.1%} "
        f"{nll(np.log(np.clip(crossed, 1e-30, None)), truth, 1.0):>6.3f} "
        f"{float(crossed.max(axis=1).mean()):>17.1%} {acc:>9.1%}"
    )
    print(
        f"{'calibrated (in-sample, shipped T)':<34} {ece_in_sample:>6.1%} "
        f"{calibration['nll_calibrated']:>6.3f} {calibration['mean_top1_score_calibrated']:>17.1%} "
        f"{acc:>9.1%}"
    )
    print("\nreliability (raw | calibrated cross-fitted): bin, count, confidence, accuracy")
    for b, a in zip(bins_before, bins_after, strict=True):
        if b.count or a.count:
            print(
                f"{b.low:.2f}-{b.high:.2f}  {b.count:>4} {b.mean_confidence:>6.1%} {b.accuracy:>6.1%}"
                f"  | {a.count:>4} {a.mean_confidence:>6.1%} {a.accuracy:>6.1%}"
            )
    if drawn:
        print(f"\nwrote {args.figure}")


if __name__ == "__main__":
    main()
