"""Temperature scaling of the classifier's scores, and how calibrated they are (numpy only).

A score of 0.8 should be right 80 % of the time: fusion decides on these scores. The
network's softmax is not calibrated by itself (label smoothing makes it shy), so the
shipped model folder carries ``calibration.json`` with one temperature ``T`` fitted on
held-out photos, and :class:`GroceryClassifier` reports ``softmax(logits / T)``.
(Guo et al., "On Calibration of Modern Neural Networks", ICML 2017.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CALIBRATION_FILE_NAME = "calibration.json"
DEFAULT_BINS = 15


def softmax_t(log_probs: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(z / T) of logits or log-probabilities z (the same thing up to a row shift)."""
    z = log_probs / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def nll(log_probs: np.ndarray, truth: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the true class at temperature T."""
    probs = softmax_t(log_probs, temperature)
    return float(-np.log(np.clip(probs[np.arange(len(truth)), truth], 1e-12, None)).mean())


def fit_temperature(
    log_probs: np.ndarray, truth: np.ndarray, low: float = 0.05, high: float = 20.0
) -> float:
    """The T that minimises NLL on held-out scores: a log-spaced grid, then golden section."""
    if len(truth) == 0:
        raise ValueError("no held-out scores to fit a temperature on")
    grid = np.geomspace(low, high, 60)
    losses = [nll(log_probs, truth, t) for t in grid]
    best = int(np.argmin(losses))
    a, b = np.log(grid[max(best - 1, 0)]), np.log(grid[min(best + 1, len(grid) - 1)])
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(60):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if nll(log_probs, truth, float(np.exp(c))) < nll(log_probs, truth, float(np.exp(d))):
            b = d
        else:
            a = c
    return float(np.exp((a + b) / 2))


@dataclass(frozen=True)
class ReliabilityBin:
    """Predictions whose top score fell in [low, high): how sure, and how often right."""

    low: float
    high: float
    count: int
    mean_confidence: float
    accuracy: float


def reliability(
    probs: np.ndarray, truth: np.ndarray, bins: int = DEFAULT_BINS
) -> list[ReliabilityBin]:
    """Equal-width bins of the top-1 score, with mean confidence and accuracy in each."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == truth
    edges = np.linspace(0.0, 1.0, bins + 1)
    # The last bin includes 1.0.
    which = np.clip(np.digitize(confidence, edges[1:-1], right=False), 0, bins - 1)
    result = []
    for i in range(bins):
        mask = which == i
        count = int(mask.sum())
        result.append(
            ReliabilityBin(
                float(edges[i]),
                float(edges[i + 1]),
                count,
                float(confidence[mask].mean()) if count else 0.0,
                float(correct[mask].mean()) if count else 0.0,
            )
        )
    return result


def expected_calibration_error(
    probs: np.ndarray, truth: np.ndarray, bins: int = DEFAULT_BINS
) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over top-1 score bins."""
    total = len(truth)
    if total == 0:
        return float("nan")
    return float(
        sum(b.count * abs(b.accuracy - b.mean_confidence) for b in reliability(probs, truth, bins))
        / total
    )


def cross_fitted_probs(
    log_probs: np.ndarray, truth: np.ndarray, folds: int = 2, seed: int = 0
) -> np.ndarray:
    """Calibrated scores where each image's T was fitted on the other folds only.

    ECE measured on the images T was fitted on flatters it; this is the honest figure.
    """
    order = np.random.default_rng(seed).permutation(len(truth))
    out = np.empty_like(log_probs)
    for fold in range(folds):
        held = order[fold::folds]
        fit = np.setdiff1d(order, held)
        temperature = fit_temperature(log_probs[fit], truth[fit])
        out[held] = softmax_t(log_probs[held], temperature)
    return out


def load_temperature(model_dir: Path) -> float:
    """The temperature in ``model_dir/calibration.json``, or 1.0 when there is none."""
    path = Path(model_dir) / CALIBRATION_FILE_NAME
    if not path.is_file():
        return 1.0
    temperature = float(json.loads(path.read_text())["temperature"])
    if not 0.01 <= temperature <= 100:
        raise ValueError(f"{path}: temperature {temperature} is outside 0.01..100")
    return temperature
