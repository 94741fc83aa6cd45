"""Run-time grocery recognition: ONNX classifier, few-shot enrolment and evaluation (no torch)."""

from .classifier import DEFAULT_MODEL_DIR, GroceryClassifier, GroceryLabel, ScoredLabel
from .enrolment import PrototypeIndex, PrototypeMatch
from .evaluate import evaluate_dataset, evaluate_prototypes, format_report, iconic_prototype_index

__all__ = [
    "DEFAULT_MODEL_DIR",
    "GroceryClassifier",
    "GroceryLabel",
    "PrototypeIndex",
    "PrototypeMatch",
    "ScoredLabel",
    "evaluate_dataset",
    "evaluate_prototypes",
    "format_report",
    "iconic_prototype_index",
]
