"""Ranking metrics for edge scores, and the long-format result rows of the benchmark.

Conventions: higher score = more likely an edge; tied scores are one threshold (a method cannot
order pairs it scores equally, so ties are never broken in its favour). Metrics of a set with no
positives or no negatives are NaN, not an exception: protocol B can empty one class.

- ``average_precision``: step-wise AP, ``sum_n (R_n - R_{n-1}) P_n`` over distinct thresholds
  (the definition of scikit-learn's ``average_precision_score``; no interpolation).
- ``auroc``: Mann-Whitney U / (n_pos n_neg) with average ranks for ties.
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
from scipy.stats import rankdata

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


def _threshold_counts(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true positives, false positives, threshold) at each distinct score, highest first."""
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(y)[last]
    fps = last + 1 - tps
    return tps, fps, s[last]


def pr_curve(labels: np.ndarray, scores: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, threshold) at each distinct score, highest threshold first.

    For plotting as a step function from (recall 0, precision of the first threshold).
    """
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return np.empty(0), np.empty(0), np.empty(0)
    tps, fps, thr = _threshold_counts(y, s)
    return tps / (tps + fps), tps / tps[-1], thr


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Step-wise average precision (area under the PR curve without interpolation)."""
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return float("nan")
    tps, fps, _ = _threshold_counts(y, s)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve; ties count one half."""
    y, s = _check(labels, scores)
    if not _both_classes(y):
        return float("nan")
    ranks = rankdata(s)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    u = ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


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
