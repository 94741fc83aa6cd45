"""The grocery model behind the batcher: crops in, top-k labels and enrolled-product matches out."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from lanesight.vision.config import VisionConfig
from lanesight.vision.model_tools import GroceryClassifier, PrototypeIndex
from lanesight.vision.observations import Label

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CropScores:
    """The model's output for one crop: class probabilities and the embedding."""

    probs: np.ndarray
    embedding: np.ndarray


def usable_providers(wanted: Sequence[str]) -> list[str]:
    """The configured providers this onnxruntime build has, in order; CPU when none is left."""
    available = set(ort.get_available_providers())
    chosen = [name for name in wanted if name in available]
    missing = [name for name in wanted if name not in available]
    if missing:
        log.warning(
            "onnxruntime lacks %s (has %s); install onnxruntime-gpu for CUDA/TensorRT",
            ", ".join(missing),
            ", ".join(sorted(available)),
        )
    return chosen or ["CPUExecutionProvider"]


class Recognizer:
    """Loads the classifier and the enrolled products; ``run_batch`` is what the batcher calls."""

    def __init__(self, config: VisionConfig) -> None:
        self.config = config
        self.classifier: GroceryClassifier | None = None
        self.index: PrototypeIndex | None = None
        self._index_lock = threading.Lock()

    def load(self) -> None:
        """Open the ONNX model and the enrolment store (blocking; call in a thread)."""
        self.classifier = GroceryClassifier(
            self.config.model_dir,
            providers=usable_providers(self.config.providers),
            intra_op_threads=self.config.intra_op_threads,
        )
        path = self.config.enrolment_store_path
        if path is not None and Path(path).is_file():
            self.index = PrototypeIndex.load(path)
            log.info("loaded %d enrolled products from %s", len(self.index), path)
        else:
            self.index = PrototypeIndex(self.classifier.embedding_dim)

    @property
    def providers(self) -> list[str]:
        """The providers the session really runs on."""
        if self.classifier is None:
            return []
        providers = getattr(self.classifier, "providers", None)
        if providers is None:
            # GroceryClassifier has no public accessor yet; ask its session.
            providers = self.classifier._session.get_providers()
        return list(providers)

    def run_batch(self, crops: list[np.ndarray]) -> list[CropScores]:
        """Classify BGR crops in one onnxruntime call (runs in the batcher's thread)."""
        assert self.classifier is not None, "load() first"
        probs, embeddings = self.classifier.classify(crops)
        return [CropScores(p, e) for p, e in zip(probs, embeddings, strict=True)]

    def warm_up(self, max_batch: int) -> None:
        """Run batch sizes 1 and max_batch once, so the first lane does not pay for allocation."""
        size = self.classifier.input_size if self.classifier else 224
        crop = np.full((size, size, 3), 128, dtype=np.uint8)
        for batch_size in sorted({1, max_batch}):
            self.run_batch([crop] * batch_size)

    # -- labels ---------------------------------------------------------------------------

    def labels(self, scores: CropScores, top_k: int) -> tuple[Label, ...]:
        """The top-k model classes of one crop, best first."""
        assert self.classifier is not None
        return tuple(
            Label(scored.label.name, scored.score, scored.label.coarse_name)
            for scored in self.classifier.top_k(scores.probs[None, :], top_k)[0]
        )

    def enrolled_match(self, scores: CropScores) -> Label | None:
        """The nearest enrolled product (score = cosine similarity), or None when none is enrolled."""
        with self._index_lock:
            if self.index is None or len(self.index) == 0:
                return None
            match = self.index.classify(scores.embedding[None, :])[0]
        return Label(match.name, match.score)

    def stream_labels(self, scores: CropScores, top_k: int) -> tuple[Label, ...]:
        """Labels for a lane stream: an enrolled product first when it is close enough."""
        labels = self.labels(scores, top_k)
        enrolled = self.enrolled_match(scores)
        if enrolled is not None and enrolled.score >= self.config.enrolled_match_min:
            return (enrolled, *labels[: top_k - 1])
        return labels

    # -- enrolment ------------------------------------------------------------------------

    def enrol(self, label: str, embeddings: np.ndarray) -> int:
        """Enrol a product from reference embeddings and persist; returns the product count."""
        with self._index_lock:
            assert self.index is not None
            self.index.enrol(label, embeddings)
            count = len(self.index)
            path = self.config.enrolment_store_path
            if path is not None:
                _save_atomically(self.index, Path(path))
        return count

    @property
    def enrolled_count(self) -> int:
        with self._index_lock:
            return len(self.index) if self.index is not None else 0


def _save_atomically(index: PrototypeIndex, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # np.savez appends .npz to names without it; keep the suffix so the name is exact.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    index.save(temporary)
    os.replace(temporary, path)
