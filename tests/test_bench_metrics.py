"""Ranking metrics against hand-computed values, and the scikit-learn functions they wrap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sklearn.metrics as skm

from atlasgrn.bench import (
    RESULT_COLUMNS,
    PairSet,
    auprc_ratio,
    auroc,
    average_precision,
    early_precision,
    epr,
    evaluate,
    metric_rows,
    pr_curve,
)


def test_average_precision_and_auroc_on_a_hand_example():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.7, 0.1])
    # P@1 = 1 (R 0.5), P@2 = 1/2 (R 0.5), P@3 = 2/3 (R 1): AP = 0.5*1 + 0.5*2/3
    assert average_precision(y, s) == pytest.approx(0.5 + 1 / 3)
    # pairs (pos, neg) ordered right: (0.9, 0.8), (0.9, 0.1), (0.7, 0.1) of 4
    assert auroc(y, s) == pytest.approx(0.75)
    assert auprc_ratio(y, s) == pytest.approx((0.5 + 1 / 3) / 0.5)


def test_tied_scores_form_one_threshold():
    y = np.array([1, 0, 1, 0])
    s = np.array([1.0, 1.0, 0.0, 0.0])
    assert average_precision(y, s) == pytest.approx(0.5)
    assert auroc(y, s) == pytest.approx(0.5)
    # a constant score is chance whatever the label order
    assert average_precision(np.array([1, 1, 0, 0, 0]), np.zeros(5)) == pytest.approx(0.4)


def test_average_precision_with_ties_by_hand():
    y = np.array([1, 0, 1, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.8, 0.5, 0.5, 0.1])
    # thresholds 0.9 / 0.8 / 0.5 / 0.1: (tp, fp) = (1, 0), (2, 1), (3, 2), (3, 3)
    # P = 1, 2/3, 3/5, 1/2; R = 1/3, 2/3, 1, 1 -> AP = (1 + 2/3 + 3/5) / 3 = 34/45
    # (breaking the ties in the scorer's favour would give 11/12)
    assert average_precision(y, s) == pytest.approx(34 / 45)
    # pos {0.9, 0.8, 0.5} vs neg {0.8, 0.5, 0.1}: 3 + (2 + 1/2) + (1 + 1/2) of 9 pairs
    assert auroc(y, s) == pytest.approx(7 / 9)
    precision, recall, thr = pr_curve(y, s)
    np.testing.assert_allclose(thr, [0.9, 0.8, 0.5, 0.1])
    np.testing.assert_allclose(precision, [1.0, 2 / 3, 3 / 5, 1 / 2])
    np.testing.assert_allclose(recall, [1 / 3, 2 / 3, 1.0, 1.0])


def test_perfect_ranking_scores_one_and_random_ranking_scores_the_positive_rate():
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.2).astype(int)
    assert average_precision(y, y + 0.0) == 1.0 and auroc(y, y + 0.0) == 1.0
    aps = [average_precision(y, np.random.default_rng(k).random(400)) for k in range(200)]
    assert np.mean(aps) == pytest.approx(y.mean(), abs=0.02)
    assert np.mean([auroc(y, np.random.default_rng(k).random(400)) for k in range(50)]) \
        == pytest.approx(0.5, abs=0.03)


def test_early_precision_and_epr_on_a_hand_example():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 1, 0])
    s = np.arange(10, 0, -1, dtype=float)  # ranked in listed order
    # k = 3 true edges; top 3 hold 2 of them; density 3/10
    assert early_precision(y, s) == pytest.approx(2 / 3)
    assert epr(y, s) == pytest.approx((2 / 3) / 0.3)


def test_early_precision_keeps_ties_at_the_cutoff():
    y = np.array([1, 0, 1, 0, 0, 0])
    s = np.array([6.0, 5.0, 5.0, 1.0, 1.0, 1.0])
    # k = 2, the 2nd score is 5 -> three candidates reach it, two are true
    assert early_precision(y, s) == pytest.approx(2 / 3)
    assert epr(y, s) == pytest.approx(2.0)
    assert early_precision(y, np.zeros(6)) == pytest.approx(2 / 6)  # all tied: chance


def test_pr_curve_steps_through_distinct_thresholds():
    precision, recall, thr = pr_curve(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.8, 0.1]))
    np.testing.assert_allclose(thr, [0.9, 0.8, 0.1])
    np.testing.assert_allclose(precision, [1.0, 2 / 3, 0.5])
    np.testing.assert_allclose(recall, [0.5, 1.0, 1.0])


def test_one_class_sets_give_nan_and_bad_scores_raise():
    assert math.isnan(average_precision(np.zeros(3), np.arange(3.0)))
    assert math.isnan(auroc(np.ones(3), np.arange(3.0)))
    assert math.isnan(epr(np.ones(3), np.arange(3.0)))
    with pytest.raises(ValueError, match="non-finite"):
        average_precision(np.array([1, 0]), np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="2 labels but 3 scores"):
        auroc(np.array([1, 0]), np.arange(3.0))


def test_metrics_equal_scikit_learn_on_tied_random_scores():
    for seed in range(5):
        rng = np.random.default_rng(seed)
        y = (rng.random(500) < 0.3).astype(int)
        s = rng.integers(0, 20, size=500) + y * rng.integers(0, 3, size=500)
        assert average_precision(y, s) == pytest.approx(skm.average_precision_score(y, s))
        assert auroc(y, s) == pytest.approx(skm.roc_auc_score(y, s))
        p, r, t = skm.precision_recall_curve(y, s)
        mp, mr, mt = pr_curve(y, s)
        np.testing.assert_allclose(mp, p[:-1][::-1])
        np.testing.assert_allclose(mr, r[:-1][::-1])
        np.testing.assert_allclose(mt, t[::-1])


def test_metric_rows_are_long_format_with_protocol_metadata():
    pairs = PairSet(np.array(["A", "A", "B", "B"]), np.array(["C", "D", "C", "D"]),
                    np.array([1, 0, 0, 1]), protocol="M", network="STRING", dataset="mDC",
                    size=500, seed=7)
    rows = metric_rows("pearson", pairs, np.array([0.9, 0.1, 0.2, 0.8]))
    assert [tuple(r) for r in rows] == [RESULT_COLUMNS] * len(rows)
    by = {r["metric"]: r["value"] for r in rows}
    assert by["auprc"] == 1.0 and by["auroc"] == 1.0 and by["n_pairs"] == 4
    assert by["epr"] == pytest.approx(2.0) and by["positive_rate"] == 0.5
    assert {(r["method"], r["network"], r["size"], r["dataset"], r["protocol"], r["seed"])
            for r in rows} == {("pearson", "STRING", 500, "mDC", "M", 7)}
    assert set(evaluate(pairs.labels, np.zeros(4))) == set(by)
