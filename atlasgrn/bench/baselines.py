"""Classical, non-foundation-model edge scores: the yardsticks a credible benchmark needs.

Expression baselines (|Pearson|, |Spearman|, binned mutual information, GENIE3-style tree
importance) are computed once per dataset as a regulator x gene :class:`ScoreMatrix` and then
looked up for any protocol's pairs, so A, B, C and M of one dataset share one computation.
Label baselines (degree prior, target-is-TF, random) expose what a supervised method can score
without looking at the pair at all.

Pairs naming a gene the matrix does not cover get the fallback score (0, the lowest value every
expression score can take) and are counted, never NaN: metrics must see every pair.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..features.stats import MI_BINS, abs_pearson, abs_spearman, mutual_information
from .genelink import Expression
from .splits import PairSet

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class ScoreMatrix:
    """Scores of every regulator -> gene pair of one dataset (rows: regulators, cols: genes)."""

    regulators: tuple[str, ...]
    genes: tuple[str, ...]
    values: np.ndarray
    method: str = ""
    fallback: float = 0.0

    def __post_init__(self) -> None:
        if self.values.shape != (len(self.regulators), len(self.genes)):
            raise ValueError(f"values {self.values.shape} do not match "
                             f"{len(self.regulators)} regulators x {len(self.genes)} genes")

    def _positions(self, pairs: PairSet) -> tuple[np.ndarray, np.ndarray]:
        rows = {g: i for i, g in enumerate(self.regulators)}
        cols = {g: i for i, g in enumerate(self.genes)}
        r = np.fromiter((rows.get(s, -1) for s in pairs.sources.tolist()), np.int64, len(pairs))
        c = np.fromiter((cols.get(t, -1) for t in pairs.targets.tolist()), np.int64, len(pairs))
        return r, c

    def missing(self, pairs: PairSet) -> int:
        """How many pairs fall outside the matrix (and get the fallback score)."""
        r, c = self._positions(pairs)
        return int(((r < 0) | (c < 0)).sum())

    def score(self, pairs: PairSet) -> np.ndarray:
        """Scores aligned with ``pairs`` (float64, finite)."""
        r, c = self._positions(pairs)
        ok = (r >= 0) & (c >= 0)
        out = np.full(len(pairs), self.fallback, dtype=np.float64)
        out[ok] = self.values[r[ok], c[ok]]
        if not ok.all():
            log.warning("%s: %d of %d pairs name genes outside the expression; scored %s",
                        self.method or "score", int((~ok).sum()), len(pairs), self.fallback)
        return out


def _regulator_columns(expr: Expression, regulators: Sequence[str] | None
                       ) -> tuple[tuple[str, ...], np.ndarray]:
    index = {g: i for i, g in enumerate(expr.genes)}
    regs = tuple(expr.genes) if regulators is None else tuple(
        dict.fromkeys(g for g in regulators if g in index))
    return regs, np.asarray([index[g] for g in regs], dtype=np.int64)


def pearson_matrix(expr: Expression, regulators: Sequence[str] | None = None) -> ScoreMatrix:
    """|Pearson r| between each regulator and each gene across cells (0 for constant genes)."""
    regs, cols = _regulator_columns(expr, regulators)
    return ScoreMatrix(regs, tuple(expr.genes), abs_pearson(expr.values, cols), method="pearson")


def spearman_matrix(expr: Expression, regulators: Sequence[str] | None = None) -> ScoreMatrix:
    """|Spearman rho|: Pearson on per-gene ranks (ties averaged)."""
    regs, cols = _regulator_columns(expr, regulators)
    return ScoreMatrix(regs, tuple(expr.genes), abs_spearman(expr.values, cols),
                       method="spearman")


def mutual_information_matrix(expr: Expression, regulators: Sequence[str] | None = None,
                              n_bins: int = MI_BINS, chunk: int = 64) -> ScoreMatrix:
    """Plug-in mutual information of equal-width-binned expression, per regulator x gene
    (:func:`atlasgrn.features.stats.mutual_information`)."""
    regs, cols = _regulator_columns(expr, regulators)
    return ScoreMatrix(regs, tuple(expr.genes),
                       mutual_information(expr.values, cols, n_bins=n_bins, chunk=chunk),
                       method="mutual_information")


def _tree_importances(x: np.ndarray, y: np.ndarray, n_trees: int, max_features: str | float,
                      min_samples_leaf: int, seed: int) -> np.ndarray:
    from sklearn.ensemble import ExtraTreesRegressor

    sd = y.std()
    if sd == 0 or x.shape[1] == 0:
        return np.zeros(x.shape[1])
    model = ExtraTreesRegressor(n_estimators=n_trees, max_features=max_features,
                                min_samples_leaf=min_samples_leaf, random_state=seed, n_jobs=1)
    model.fit(x, (y - y.mean()) / sd)
    # Unnormalised importance (variance explained, as a share of the unit-variance target) keeps
    # targets comparable: a well-explained target's regulators outrank a noise target's, as in
    # GENIE3. sklearn's feature_importances_ would rescale every target to sum 1.
    imp = np.mean([t.tree_.compute_feature_importances(normalize=False)
                   for t in model.estimators_], axis=0)
    return imp


def tree_importance_matrix(expr: Expression, regulators: Sequence[str] | None = None,
                           targets: Sequence[str] | None = None, n_trees: int = 100,
                           max_features: str | float = "sqrt", min_samples_leaf: int = 5,
                           seed: int = 0, workers: int = 2) -> ScoreMatrix:
    """GENIE3-style importance: per target, an extra-trees regression on the regulators.

    Each target gene (standardised) is regressed on the regulators' expression, itself excluded;
    a regulator's score is its mean unnormalised impurity importance over the trees. Leaves of
    >= ``min_samples_leaf`` cells halve the cost of fully grown trees (~900 targets x ~400 cells
    x ~400 regulators in about 2-4 minutes on 2 cores) and stop trees fitting noise. Targets run
    in ``workers`` threads (tree fitting releases the GIL); each target's forest is seeded from
    ``seed`` and its position, so results do not depend on scheduling.
    """
    regs, cols = _regulator_columns(expr, regulators)
    index = {g: i for i, g in enumerate(expr.genes)}
    tgt_names = tuple(expr.genes) if targets is None else tuple(
        dict.fromkeys(g for g in targets if g in index))
    x_all = np.asarray(expr.values, dtype=np.float32)
    x_reg = x_all[:, cols]
    out = np.zeros((len(regs), len(tgt_names)), dtype=np.float64)

    def fit(j: int) -> None:
        g = index[tgt_names[j]]
        keep = cols != g
        imp = _tree_importances(x_reg[:, keep], x_all[:, g].astype(np.float64), n_trees,
                                max_features, min_samples_leaf, seed * 1_000_003 + j)
        out[keep, j] = imp

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(fit, range(len(tgt_names))))
    return ScoreMatrix(regs, tgt_names, out, method="tree_importance")


def degree_prior(pairs: PairSet, training: PairSet, source_weight: float = 0.01) -> np.ndarray:
    """Score from training labels alone: how often the target (and the source) is in an edge.

    ``score = indeg(target) / max indeg + source_weight * outdeg(source) / max outdeg``, degrees
    counted over the training set's *positive* pairs. The target term is the shortcut a
    supervised model can learn from gene identity ("this gene is often regulated"); the small
    source term only breaks ties between equally frequent targets. Unseen genes count 0.
    """
    pos = training.labels == 1
    tgt_u, tgt_n = np.unique(training.targets[pos], return_counts=True)
    src_u, src_n = np.unique(training.sources[pos], return_counts=True)
    indeg = dict(zip(tgt_u.tolist(), (tgt_n / max(tgt_n.max(initial=0), 1)).tolist()))
    outdeg = dict(zip(src_u.tolist(), (src_n / max(src_n.max(initial=0), 1)).tolist()))
    t = np.fromiter((indeg.get(g, 0.0) for g in pairs.targets.tolist()), np.float64, len(pairs))
    s = np.fromiter((outdeg.get(g, 0.0) for g in pairs.sources.tolist()), np.float64, len(pairs))
    return t + source_weight * s


def target_is_tf(pairs: PairSet, tfs: Sequence[str]) -> np.ndarray:
    """1 where the target gene is a TF, else 0: the "targets are TFs" shortcut on its own."""
    return np.isin(pairs.targets, np.asarray(list(tfs), dtype=str)).astype(np.float64)


def random_scores(pairs: PairSet, seed: int = 0) -> np.ndarray:
    """Uniform random scores (seeded): the chance level of every metric."""
    return np.random.default_rng(seed).random(len(pairs))


MatrixBuilder = Callable[..., ScoreMatrix]

#: Expression baselines by name; each takes ``(expr, regulators)`` and returns a ScoreMatrix.
EXPRESSION_BASELINES: dict[str, MatrixBuilder] = {
    "pearson": pearson_matrix,
    "spearman": spearman_matrix,
    "mutual_information": mutual_information_matrix,
    "tree_importance": tree_importance_matrix,
}


def expression_score(name: str, pairs: PairSet, expr: Expression,
                     regulators: Sequence[str] | None = None, **options: object) -> np.ndarray:
    """One-shot ``pairs -> scores`` for an expression baseline (regulators default: the sources).

    For several protocols of one dataset, build the matrix once with
    ``EXPRESSION_BASELINES[name]`` and call ``.score`` per protocol instead.
    """
    if name not in EXPRESSION_BASELINES:
        raise ValueError(f"unknown expression baseline '{name}'; choose from "
                         f"{sorted(EXPRESSION_BASELINES)}")
    regs = list(dict.fromkeys(pairs.sources.tolist())) if regulators is None else regulators
    return EXPRESSION_BASELINES[name](expr, regs, **options).score(pairs)
