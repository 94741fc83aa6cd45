"""Few-shot product enrolment: one L2-normalised mean embedding per product, matched by cosine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class PrototypeMatch:
    """The nearest enrolled product and its cosine similarity (-1..1, higher is closer)."""

    name: str
    score: float


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class PrototypeIndex:
    """Products enrolled from a few reference embeddings, classified by nearest prototype."""

    def __init__(self, embedding_dim: int = 1280):
        self.embedding_dim = embedding_dim
        self._names: list[str] = []
        self._prototypes = np.zeros((0, embedding_dim), dtype=np.float32)
        self._reference_counts: list[int] = []

    def __len__(self) -> int:
        return len(self._names)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._names)

    @property
    def prototypes(self) -> np.ndarray:
        return self._prototypes.copy()

    def enrol(self, name: str, embeddings: np.ndarray) -> None:
        """Enrol (or re-enrol) `name` from a K×D array of reference embeddings."""
        embeddings = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        if embeddings.shape[0] == 0 or embeddings.shape[1] != self.embedding_dim:
            raise ValueError(
                f"need at least one {self.embedding_dim}-d embedding, got {embeddings.shape}"
            )
        # Normalise before averaging so one close-up reference does not dominate.
        prototype = l2_normalise(l2_normalise(embeddings).mean(axis=0))
        if name in self._names:
            index = self._names.index(name)
            self._prototypes[index] = prototype
            self._reference_counts[index] = embeddings.shape[0]
        else:
            self._names.append(name)
            self._prototypes = np.vstack([self._prototypes, prototype[None]])
            self._reference_counts.append(embeddings.shape[0])

    def enrol_images(self, classifier, name: str, images_bgr: Sequence[np.ndarray]) -> None:
        """Enrol `name` from reference photos, using a GroceryClassifier's embeddings."""
        _, embeddings = classifier.classify(images_bgr)
        self.enrol(name, embeddings)

    def remove(self, name: str) -> None:
        index = self._names.index(name)
        del self._names[index]
        del self._reference_counts[index]
        self._prototypes = np.delete(self._prototypes, index, axis=0)

    def similarities(self, embeddings: np.ndarray) -> np.ndarray:
        """Cosine similarity of each query (N×D) to every prototype: N×P."""
        return l2_normalise(np.atleast_2d(embeddings).astype(np.float32)) @ self._prototypes.T

    def classify(self, embeddings: np.ndarray) -> list[PrototypeMatch]:
        """The nearest prototype of each query embedding."""
        if not self._names:
            raise LookupError("no products enrolled")
        similarities = self.similarities(embeddings)
        best = similarities.argmax(axis=1)
        return [
            PrototypeMatch(self._names[i], float(similarities[row, i]))
            for row, i in enumerate(best)
        ]

    def save(self, path: Path | str) -> None:
        """Write the index to a .npz file (no pickles)."""
        np.savez(
            path,
            names=np.array(self._names, dtype=str),
            prototypes=self._prototypes,
            reference_counts=np.array(self._reference_counts, dtype=np.int64),
        )

    @classmethod
    def load(cls, path: Path | str) -> PrototypeIndex:
        with np.load(path, allow_pickle=False) as data:
            prototypes = data["prototypes"].astype(np.float32)
            index = cls(embedding_dim=prototypes.shape[1])
            index._names = [str(name) for name in data["names"]]
            index._prototypes = prototypes
            index._reference_counts = [int(count) for count in data["reference_counts"]]
        return index
