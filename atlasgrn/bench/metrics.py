"""Ranking metrics for edge scores, and the long-format result rows of the benchmark.

Conventions: higher score = more likely an edge; tied scores are one threshold (a method cannot
order pairs it scores equally, so ties are never broken in its favour). Metrics of a set with no
positives or no negatives are NaN, not an exception: protocol B can empty one class.

- ``average_precision``: step-wise AP, ``sum_n (R_n - R_{n-1}) P_n`` over distinct thresholds,
  no interpolation: scikit-learn's ``average_precision_score``.
- ``auroc``: scikit-learn's ``roc_auc_score`` (= Mann-Whitney U / (n_pos n_neg), ties count 1/2).
- ``pr_curve``: scikit-learn's ``precision_recall_curve`` without its artificial end point
  (recall 0, precision 1), highest threshold first.
- ``auprc_ratio``: AP / positive rate (1 = random).
- ``early_precision`` / EPR, after BEELINE (Pratapa et al. 2020, ``BLEval/computeEarlyPrec``):
  k = number of true edges among the candidates; the predicted set is every candidate scoring
  >= the k-th highest score (ties at the cut-off are all kept, as BEELINE keeps all edges whose
  weight reaches the k-th weight); early precision = true edges in that set / its size;
  EPR = early precision / edge density of the candidate set (= the early precision of a random
  ranking). BEELINE also rounds |weights| to 6 decimals and ignores zero-weight edges, which
  suits sparse edge lists from GRN tools; here every candidate has a real-valued score of fixed
  orientation, so scores are used as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
)

from .splits import PairSet

RESULT_COLUMNS = ("method", "network", "size", "dataset", "protocol", "metric", "seed", "value")
METRICS = ("auprc", "auroc", "auprc_ratio", "early_precision", "epr", "n_pairs", "n_positive",
           "positive_rate")


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"{len(y)} labels but {len(s)} scores")
    if not np.isfinite(s).all():
        raise ValueError(f"{int((~np.isfinite(s)).sum())} non-finite score(s); scorers must "
                         "return finite values (use a fallback score for unknown genes)")
    if len(y) and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    return 0 < int(y.sum()) < len(y)


def pr_curve(labels: np.ndarray, scores: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, threshold) at each distinct score, highest threshold first.

    For plotting as a step function from (recall 0, precision of the first threshold). Empty
    arrays when one class is absent.
    """
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return np.empty(0), np.empty(0), np.empty(0)
    precision, recall, thresholds = precision_recall_curve(y, s, drop_intermediate=False)
    # sklearn: lowest threshold first, plus a final (recall 0, precision 1) point that belongs
    # to no threshold; drop it and reverse.
    return precision[:-1][::-1], recall[:-1][::-1], thresholds[::-1]


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Step-wise average precision (area under the PR curve without interpolation)."""
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return float("nan")
    return float(average_precision_score(y, s))


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; ties count one half."""
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return float("nan")
    return float(roc_auc_score(y, s))


def auprc_ratio(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision over the positive rate (1 = a random ranking)."""
    y, _ = _check(labels, scores)
    if not _both_classes(y):
        return float("nan")
    return float(average_precision(labels, scores) / (y.sum() / len(y)))


def early_precision(labels: np.ndarray, scores: np.ndarray, k: int | None = None) -> float:
    """Precision among candidates scoring >= the k-th highest score (k = #positives)."""
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return float("nan")
    k = int(y.sum()) if k is None else int(k)
    if not 1 <= k <= len(s):
        raise ValueError(f"k={k} must be between 1 and the number of candidates ({len(s)})")
    cut = np.partition(s, len(s) - k)[len(s) - k]
    chosen = s >= cut
    return float(y[chosen].sum() / chosen.sum())


def epr(labels: np.ndarray, scores: np.ndarray) -> float:
    """BEELINE's early precision ratio: early precision / edge density of the candidates."""
    y, _ = _check(labels, scores)
    if not _both_classes(y):
        return float("nan")
    return float(early_precision(labels, scores) / (y.sum() / len(y)))


def evaluate(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """Every metric of :data:`METRICS` for one scored set."""
    y, s = _check(labels, scores)
    n_pos = int(y.sum())
    return {
        "auprc": average_precision(y, s),
        "auroc": auroc(y, s),
        "auprc_ratio": auprc_ratio(y, s),
        "early_precision": early_precision(y, s),
        "epr": epr(y, s),
        "n_pairs": float(len(y)),
        "n_positive": float(n_pos),
        "positive_rate": n_pos / len(y) if len(y) else float("nan"),
    }


def metric_rows(method: str, pairs: PairSet, scores: np.ndarray, seed: int | None = None,
                extra: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Long-format rows (:data:`RESULT_COLUMNS`, plus ``extra`` columns) for one scored set."""
    values = evaluate(pairs.labels, scores)
    base = {"method": method, "network": pairs.network, "size": pairs.size,
            "dataset": pairs.dataset, "protocol": pairs.protocol,
            "seed": pairs.seed if seed is None else seed}
    rows = []
    for metric, value in values.items():
        row = {col: (metric if col == "metric" else value if col == "value" else base[col])
               for col in RESULT_COLUMNS}
        if extra:
            row.update(extra)
        rows.append(row)
    return rows
