"""Classical baselines: planted structure must be found, label baselines must be as defined."""

from __future__ import annotations

import numpy as np
import pytest

from atlasgrn.bench import (
    Expression,
    PairSet,
    ScoreMatrix,
    degree_prior,
    expression_score,
    mutual_information_matrix,
    pearson_matrix,
    random_scores,
    spearman_matrix,
    target_is_tf,
    tree_importance_matrix,
)


def _expression(n_cells: int = 200, n_genes: int = 12, seed: int = 0) -> Expression:
    """Independent genes, then planted: G1 = 2*G0 + noise, G3 = -G2, G5 = exp(G4), G7 = G6^2."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_cells, n_genes))
    x[:, 1] = 2 * x[:, 0] + 0.3 * rng.normal(size=n_cells)
    x[:, 3] = -x[:, 2]
    x[:, 5] = np.exp(x[:, 4])
    x[:, 7] = x[:, 6] ** 2
    genes = tuple(f"G{i}" for i in range(n_genes))
    return Expression(x.astype(np.float32), genes, tuple(f"c{i}" for i in range(n_cells)))


def _pairs(sources, targets, labels=None) -> PairSet:
    labels = np.zeros(len(sources), int) if labels is None else labels
    return PairSet(np.array(sources), np.array(targets), np.asarray(labels), protocol="A")


def test_pearson_finds_the_planted_correlated_pair_and_ignores_sign():
    e = _expression()
    m = pearson_matrix(e, ["G0", "G2"])
    assert m.values.shape == (2, 12)
    others = [j for j in range(12) if j not in (0, 1)]
    assert m.values[0, 1] > 0.95 and m.values[0, others].max() < 0.3
    assert m.values[1, 3] == pytest.approx(1.0, abs=1e-6)  # perfectly anti-correlated
    assert (m.values >= 0).all() and (m.values <= 1).all()


def test_spearman_sees_a_monotone_nonlinear_relation_as_perfect():
    e = _expression()
    s = spearman_matrix(e, ["G4"]).values[0, 5]
    p = pearson_matrix(e, ["G4"]).values[0, 5]
    assert s == pytest.approx(1.0, abs=1e-9) and p < 0.9


def test_mutual_information_finds_a_dependence_correlation_misses():
    e = _expression(n_cells=400)
    mi = mutual_information_matrix(e, ["G6"], n_bins=8).values[0]
    corr = pearson_matrix(e, ["G6"]).values[0]
    assert corr[7] < 0.2  # y = x^2: no linear correlation
    assert np.argmax(np.delete(mi, 6)) == 6  # G7 (index 6 once G6 itself is removed)
    assert (mi >= 0).all()


def test_tree_importance_ranks_the_planted_regulator_first():
    rng = np.random.default_rng(1)
    n_cells, n_regs = 150, 20
    x = rng.normal(size=(n_cells, n_regs + 3))
    x[:, n_regs] = np.tanh(2 * x[:, 4]) + 0.1 * rng.normal(size=n_cells)  # T0 <- R4
    x[:, n_regs + 1] = x[:, 9] * (x[:, 9] > 0) + 0.1 * rng.normal(size=n_cells)  # T1 <- R9
    genes = tuple(f"R{i}" for i in range(n_regs)) + ("T0", "T1", "T2")
    e = Expression(x.astype(np.float32), genes, tuple(map(str, range(n_cells))))
    regs = genes[:n_regs]
    m = tree_importance_matrix(e, regs, targets=["T0", "T1", "T2", "R4"], n_trees=30, seed=0)
    assert m.regulators == regs and m.genes == ("T0", "T1", "T2", "R4")
    assert np.argmax(m.values[:, 0]) == 4 and np.argmax(m.values[:, 1]) == 9
    assert m.values[4, 3] == 0.0  # a gene never regulates itself
    # an explained target's top regulator outweighs any regulator of the noise target T2
    assert m.values[4, 0] > 3 * m.values[:, 2].max()
    again = tree_importance_matrix(e, regs, targets=["T0", "T1", "T2", "R4"], n_trees=30,
                                   seed=0, workers=1)
    np.testing.assert_array_equal(m.values, again.values)  # threads do not change results


def test_pairs_outside_the_matrix_get_the_fallback_and_are_counted():
    e = _expression()
    m = pearson_matrix(e, ["G0"])
    pairs = _pairs(["G0", "G0", "G2", "XX"], ["G1", "ZZ", "G3", "G1"])
    scores = m.score(pairs)
    assert m.missing(pairs) == 3
    assert scores[0] > 0.95 and (scores[1:] == 0).all() and np.isfinite(scores).all()


def test_expression_score_defaults_regulators_to_the_pair_sources():
    e = _expression()
    pairs = _pairs(["G0", "G2", "G4"], ["G1", "G3", "G8"])
    np.testing.assert_allclose(expression_score("pearson", pairs, e),
                               pearson_matrix(e).score(pairs))
    with pytest.raises(ValueError, match="unknown expression baseline"):
        expression_score("nope", pairs, e)


def test_score_matrix_rejects_a_shape_mismatch():
    with pytest.raises(ValueError, match="do not match"):
        ScoreMatrix(("A",), ("B", "C"), np.zeros((2, 2)))


def test_target_is_tf_is_one_exactly_for_tf_targets():
    pairs = _pairs(["A", "A", "B"], ["B", "C", "A"])
    np.testing.assert_array_equal(target_is_tf(pairs, ["A", "B"]), [1.0, 0.0, 1.0])


def test_degree_prior_counts_training_in_and_out_degree():
    train = _pairs(["A", "A", "B", "B", "A"], ["X", "Y", "X", "Z", "Z"], [1, 1, 1, 0, 0])
    # positives: A->X, A->Y, B->X. indeg X=2, Y=1; outdeg A=2, B=1.
    test = _pairs(["A", "B", "C", "B"], ["X", "Y", "X", "Z"])
    np.testing.assert_allclose(degree_prior(test, train, source_weight=0.1),
                               [1.0 + 0.1, 0.5 + 0.05, 1.0 + 0.0, 0.0 + 0.05])


def test_random_scores_are_seeded():
    pairs = _pairs(["A"] * 5, list("BCDEF"))
    np.testing.assert_array_equal(random_scores(pairs, 3), random_scores(pairs, 3))
    assert not np.array_equal(random_scores(pairs, 3), random_scores(pairs, 4))
