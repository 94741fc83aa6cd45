"""The shipped EfficientNet-Lite0 grocery classifier, run with onnxruntime."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from .calibration import load_temperature
from .preprocessing import INPUT_MEAN, INPUT_SCALE, bgr_to_rgb_square, to_model_input

logger = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models"
ONNX_FILE_NAME = "grocery_effnet_lite0.onnx"


@dataclass(frozen=True)
class GroceryLabel:
    """One fine class the network knows, with its coarse class."""

    id: int
    name: str
    coarse_id: int
    coarse_name: str
    is_produce: bool


@dataclass(frozen=True)
class ScoredLabel:
    """A fine class and the probability the network gave it."""

    label: GroceryLabel
    score: float

    @property
    def name(self) -> str:
        return self.label.name


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class GroceryClassifier:
    """Loads the ONNX model, labels.json and preprocess.json from one folder and classifies images."""

    def __init__(
        self,
        model_dir: Path | str | None = None,
        *,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        intra_op_threads: int = 0,
        hflip_tta: bool = False,
        calibrated: bool = True,
    ):
        """Open the model; `intra_op_threads=0` lets onnxruntime pick, `hflip_tta` doubles the cost.

        With `calibrated` (the default) scores are `softmax(logits / T)` with the temperature
        in the folder's calibration.json (1.0 when there is none); without, the raw softmax.
        """
        self.model_dir = Path(model_dir) if model_dir is not None else DEFAULT_MODEL_DIR
        self.labels = tuple(
            GroceryLabel(**entry)
            for entry in json.loads((self.model_dir / "labels.json").read_text())
        )
        if [label.id for label in self.labels] != list(range(len(self.labels))):
            raise ValueError(f"labels.json in {self.model_dir} must list ids 0..N-1 in order")
        metadata = json.loads((self.model_dir / "preprocess.json").read_text())
        if metadata["mean"] != INPUT_MEAN or metadata["scale"] != INPUT_SCALE:
            raise ValueError("preprocess.json does not match this code's normalisation")
        if metadata["color_order"] != "RGB":
            raise ValueError("preprocess.json: only RGB models are supported")
        self.input_size = int(metadata["input_size"])
        self.hflip_tta = hflip_tta
        self.temperature = load_temperature(self.model_dir) if calibrated else 1.0

        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        self._session = ort.InferenceSession(
            str(self.model_dir / ONNX_FILE_NAME), sess_options=options, providers=list(providers)
        )
        self.fine_to_coarse = np.array([label.coarse_id for label in self.labels], dtype=np.int64)
        coarse_name_of = {label.coarse_id: label.coarse_name for label in self.labels}
        self.coarse_names = tuple(coarse_name_of[i] for i in range(len(coarse_name_of)))
        self.is_produce = np.array([label.is_produce for label in self.labels], dtype=bool)
        logger.info(
            "loaded %s (%d classes, %d px, temperature %.3f) with %s",
            ONNX_FILE_NAME,
            len(self.labels),
            self.input_size,
            self.temperature,
            self._session.get_providers(),
        )

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def providers(self) -> list[str]:
        """The onnxruntime execution providers the session actually uses."""
        return list(self._session.get_providers())

    @property
    def embedding_dim(self) -> int:
        return int(self._session.get_outputs()[1].shape[1])

    def preprocess(self, images_bgr: Sequence[np.ndarray]) -> np.ndarray:
        """Turn OpenCV BGR images of any size into the N×3×H×W float32 network input."""
        if len(images_bgr) == 0:
            return np.zeros((0, 3, self.input_size, self.input_size), dtype=np.float32)
        crops = np.stack([bgr_to_rgb_square(image, self.input_size) for image in images_bgr])
        return to_model_input(crops)

    def predict(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return fine-class probabilities (N×81, calibrated) and pooled embeddings (N×1280)."""
        logits, embeddings = self._session.run(["logits", "embedding"], {"image": batch})
        probs = softmax(logits / self.temperature)
        if self.hflip_tta:
            flipped = np.ascontiguousarray(batch[..., ::-1])
            logits_flipped, embeddings_flipped = self._session.run(
                ["logits", "embedding"], {"image": flipped}
            )
            probs = (probs + softmax(logits_flipped / self.temperature)) / 2
            embeddings = (embeddings + embeddings_flipped) / 2
        return probs, embeddings

    def classify(self, images_bgr: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Preprocess and predict in one call."""
        return self.predict(self.preprocess(images_bgr))

    def coarse_probs(self, probs: np.ndarray) -> np.ndarray:
        """Sum fine-class probabilities into coarse classes (N×43)."""
        coarse = np.zeros((probs.shape[0], len(self.coarse_names)), dtype=probs.dtype)
        np.add.at(coarse.T, self.fine_to_coarse, probs.T)
        return coarse

    def top_k(self, probs: np.ndarray, k: int = 5) -> list[list[ScoredLabel]]:
        """The k most likely fine classes of each row, best first."""
        best = np.argsort(-probs, axis=1)[:, :k]
        return [
            [ScoredLabel(self.labels[i], float(row_probs[i])) for i in row_best]
            for row_probs, row_best in zip(probs, best, strict=True)
        ]
