"""Vision labels drawn from the shipped model's real outputs on held-out (val) grocery photos."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from lanesight.common.config import data_dir

log = logging.getLogger(__name__)

GROCERY_DIR = data_dir("grocery", "dataset")
# Only the val split: the model was trained on train.txt, so its outputs there are not
# what a lane camera would get.
VAL_SPLIT = "val.txt"

# (label, score, coarse label) best first, as the vision service reports them.
Recognition = tuple[tuple[str, float, str], ...]


def default_cache_dir() -> Path:
    """Where model outputs are cached (never committed): $LANESIGHT_CACHE or ~/.cache."""
    root = os.environ.get("LANESIGHT_CACHE") or Path.home() / ".cache" / "lanesight"
    return Path(root) / "robustness"


def model_fingerprint(model_dir: Path, top_k: int) -> str:
    """A hash of the model, its labels and the code that turns outputs into labels."""
    from lanesight.vision import recognizer
    from lanesight.vision.model_tools import classifier

    digest = hashlib.sha256(str(top_k).encode())
    for name in ("grocery_effnet_lite0.onnx", "labels.json", "preprocess.json", "calibration.json"):
        path = model_dir / name
        if path.is_file():  # (no calibration.json: raw scores)
            digest.update(path.read_bytes())
    for module in (classifier, recognizer):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ImageOutput:
    """The recognizer's top-k on one val photo whose true class is ``true_label``."""

    path: str
    true_label: str
    top_k: Recognition


def run_model_on_val(dataset_dir: Path, config) -> list[ImageOutput]:
    """What the vision service's recognizer reports for every val photo (seconds on CPU)."""
    from lanesight.vision.model_tools.evaluate import read_image, read_split_file
    from lanesight.vision.recognizer import Recognizer

    recognizer = Recognizer(config)
    recognizer.load()
    names = [label.name for label in recognizer.classifier.labels]
    entries = read_split_file(dataset_dir, dataset_dir / VAL_SPLIT)
    outputs: list[ImageOutput] = []
    for start in range(0, len(entries), 32):
        chunk = entries[start : start + 32]
        scores = recognizer.run_batch([read_image(e.path) for e in chunk])
        for entry, crop in zip(chunk, scores, strict=True):
            labels = recognizer.labels(crop, config.top_k)
            outputs.append(
                ImageOutput(
                    str(entry.path.relative_to(dataset_dir)),
                    names[entry.fine_id],
                    tuple(
                        (label.label, round(label.score, 4), label.coarse_label) for label in labels
                    ),
                )
            )
    return outputs


def load_val_outputs(
    dataset_dir: Path = GROCERY_DIR, cache_dir: Path | None = None
) -> list[ImageOutput]:
    """The recognizer's outputs on the val split, from the cache or computed and cached.

    The recognizer runs with the vision service's defaults (its top-k, CPU), so fusion
    sees what a lane's vision stream would carry for these photos.
    """
    from lanesight.vision.config import VisionConfig
    from lanesight.vision.model_tools.classifier import DEFAULT_MODEL_DIR

    config = VisionConfig(intra_op_threads=2)
    model_dir = Path(config.model_dir or DEFAULT_MODEL_DIR)
    fingerprint = model_fingerprint(model_dir, config.top_k)
    cache = (cache_dir or default_cache_dir()) / f"val-{fingerprint}-v2.json"
    if cache.is_file():
        rows = json.loads(cache.read_text())
        return [
            ImageOutput(r["path"], r["true_label"], tuple(map(tuple, r["top_k"]))) for r in rows
        ]
    if not (dataset_dir / VAL_SPLIT).is_file():
        raise FileNotFoundError(f"the grocery val split is missing: {dataset_dir / VAL_SPLIT}")
    outputs = run_model_on_val(dataset_dir, config)
    cache.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps([o.__dict__ for o in outputs]))
    os.replace(temporary, cache)
    log.info("cached the model's outputs on %d val photos in %s", len(outputs), cache)
    return outputs


def folds(outputs: list[ImageOutput]) -> tuple[list[ImageOutput], list[ImageOutput]]:
    """The photos in two halves, every class split between them (alternately by path)."""
    by_class: dict[str, list[ImageOutput]] = defaultdict(list)
    for output in outputs:
        by_class[output.true_label].append(output)
    one: list[ImageOutput] = []
    two: list[ImageOutput] = []
    for photos in by_class.values():
        for index, output in enumerate(sorted(photos, key=lambda o: o.path)):
            (one if index % 2 == 0 else two).append(output)
    return one, two


def write_heldout(outputs: list[ImageOutput], path: Path) -> Path:
    """Write outputs in the vision model's heldout_outputs.json form (what fusion reads
    its known confusions from)."""
    images = [
        {
            "path": o.path,
            "label": o.true_label,
            "top": [{"label": label, "score": score} for label, score, _ in o.top_k],
        }
        for o in outputs
    ]
    path.write_text(json.dumps({"what": "held-out outputs (a fold)", "images": images}))
    return path


class LabelSampler:
    """What the camera reports for an item: a real val photo's top-k for its class.

    An item of class C gets the model's output on a random val photo of C (its real
    scores and confusions). An item with no class (coffee, batteries: the model was
    never taught them) gets the output on a random val photo: the model names one of
    its classes for anything it sees. A class the model knows but has no val photo of
    gets no recognition at all (the crossing is still reported): its outputs on unseen
    photos are unknown, and inventing them would test the harness, not fusion.
    ``stress`` replaces that share of recognitions with a confident wrong label (a
    class other than the item's, scored 0.75..0.97).
    """

    def __init__(self, outputs: list[ImageOutput], stress: float = 0.0) -> None:
        if not outputs:
            raise ValueError("no model outputs to sample from")
        self.by_class: dict[str, list[ImageOutput]] = defaultdict(list)
        for output in outputs:
            self.by_class[output.true_label].append(output)
        self.outputs = outputs
        self.stress = stress
        self.coarse = {label: coarse for o in outputs for label, _, coarse in o.top_k}
        self.labels = sorted(self.coarse)

    def has_class(self, label: str) -> bool:
        """True when a val photo of this class exists (its recognitions are real)."""
        return label in self.by_class

    def draw(self, rng: random.Random, label: str) -> Recognition:
        """One recognition of an item whose true class is ``label`` ("" for none)."""
        if label and label not in self.by_class:
            return ()
        if self.stress and rng.random() < self.stress:
            wrong = rng.choice([name for name in self.labels if name != label])
            second = label or rng.choice(self.labels)
            top = round(rng.uniform(0.75, 0.97), 4)
            return (
                (wrong, top, self.coarse[wrong]),
                (second, round((1 - top) / 2, 4), self.coarse.get(second, "")),
            )
        return rng.choice(self.by_class[label] if label else self.outputs).top_k
