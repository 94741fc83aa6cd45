"""A robustness harness that shares none of the scenario simulator's assumptions.

``corpus.generate`` writes shoppers of its own at two stores of its own (``stores``: EUR
and USD prices, other items, weights, scale divisions, timing and behaviour mix), with
ground truth (``stream.Loss``) and a flag for losses the lane holds no evidence of.
Vision labels come from ``labels.LabelSampler``: the shipped model's real top-k on
held-out (val) grocery photos, or a stress mode with confident wrong labels.
``perturb.PERTURBATIONS`` change a lane's event stream (lost, late, duplicated and
jittered readings, bags lifted before or after the next start, own bags, skip bagging,
scale drift, readings under zero, long pauses). ``matrix.run_matrix`` runs each through
the real fusion engine (in process, or over gRPC with ``service.run_over_grpc``) and
``scoring.score`` matches alerts to staged losses strictly.
"""

from lanesight.simulation.robustness.matrix import Matrix, format_matrix, run_matrix
from lanesight.simulation.robustness.perturb import PERTURBATIONS
from lanesight.simulation.robustness.scoring import Score, run_in_process, score

__all__ = [
    "PERTURBATIONS",
    "Matrix",
    "Score",
    "format_matrix",
    "run_in_process",
    "run_matrix",
    "score",
]
