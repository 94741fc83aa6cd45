"""Calibrated scores: temperature scaling, ECE, the shipped calibration.json and held-out outputs."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from lanesight.vision.model_tools import DEFAULT_MODEL_DIR, GroceryClassifier
from lanesight.vision.model_tools.calibration import (
    expected_calibration_error,
    fit_temperature,
    load_temperature,
    reliability,
    softmax_t,
)
from lanesight.vision.model_tools.evaluate import read_split_file

from .conftest import GROCERY_DIR


def synthetic(temperature: float, n: int = 4000, classes: int = 10, seed: int = 0):
    """Logits whose labels were drawn from softmax(logits / temperature)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, classes))
    probs = softmax_t(logits, temperature)
    truth = np.array([rng.choice(classes, p=row) for row in probs])
    return logits, truth


def test_fit_temperature_recovers_the_temperature_the_labels_came_from() -> None:
    for true_t in (0.5, 2.0):
        logits, truth = synthetic(true_t)
        assert fit_temperature(logits, truth) == pytest.approx(true_t, rel=0.1)


def test_ece_is_small_when_calibrated_and_large_when_overconfident() -> None:
    logits, truth = synthetic(2.0)
    calibrated = softmax_t(logits, 2.0)
    overconfident = softmax_t(logits, 0.5)
    assert expected_calibration_error(calibrated, truth) < 0.03
    assert expected_calibration_error(overconfident, truth) > 0.15
    bins = reliability(calibrated, truth)
    assert sum(b.count for b in bins) == len(truth)
    assert all(b.low <= b.mean_confidence <= b.high for b in bins if b.count)


def test_a_model_folder_without_calibration_json_is_raw(tmp_path) -> None:
    assert load_temperature(tmp_path) == 1.0
    (tmp_path / "calibration.json").write_text('{"temperature": 1000}')
    with pytest.raises(ValueError, match="temperature"):
        load_temperature(tmp_path)


@pytest.fixture(scope="module")
def val_scores() -> tuple[GroceryClassifier, np.ndarray, np.ndarray, list]:
    classifier = GroceryClassifier(intra_op_threads=2, calibrated=False)
    entries = read_split_file(GROCERY_DIR, GROCERY_DIR / "val.txt")
    probs, _ = classifier.classify([cv2.imread(str(e.path)) for e in entries])
    return classifier, probs, np.array([e.fine_id for e in entries]), entries


def test_the_shipped_temperature_calibrates_the_shipped_model(val_scores) -> None:
    _, raw, truth, _ = val_scores
    shipped = json.loads((DEFAULT_MODEL_DIR / "calibration.json").read_text())
    temperature = shipped["temperature"]
    assert GroceryClassifier(intra_op_threads=1).temperature == temperature
    calibrated = softmax_t(np.log(raw), temperature)
    # Recorded figures belong to this model file, and hold when recomputed.
    assert expected_calibration_error(raw, truth) == pytest.approx(shipped["ece_raw"], abs=0.005)
    assert expected_calibration_error(calibrated, truth) < 0.5 * shipped["ece_raw"]
    assert (calibrated.argmax(1) == raw.argmax(1)).all()  # scaling never changes the ranking


def test_heldout_outputs_match_what_the_service_reports(val_scores) -> None:
    _, raw, truth, entries = val_scores
    heldout = json.loads((DEFAULT_MODEL_DIR / "heldout_outputs.json").read_text())
    assert heldout["count"] == len(entries) == len(heldout["images"])
    calibrated = GroceryClassifier(intra_op_threads=1)
    for index in (0, 101, 295):
        record = heldout["images"][index]
        assert record["path"] == str(entries[index].path.relative_to(GROCERY_DIR))
        assert record["fine_id"] == truth[index]
        probs, _ = calibrated.classify([cv2.imread(str(entries[index].path))])
        assert [t["id"] for t in record["top"]] == list(np.argsort(-probs[0])[:5])
        assert record["top"][0]["score"] == pytest.approx(float(probs[0].max()), abs=1e-4)
        assert record["true_score"] == pytest.approx(float(probs[0][truth[index]]), abs=1e-4)
