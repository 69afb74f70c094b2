"""Protocol test sets and the training set: what each protocol promises about its pairs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from atlasgrn.bench import (
    PairSet,
    average_precision,
    build_protocols,
    degree_bins,
    discover,
    find_set,
    load_network_set,
    protocol_a,
    protocol_b,
    protocol_c,
    protocol_m,
    target_is_tf,
    training_pairs,
)
from tests.bench_toy import build_toy_tree, random_network, toy_genes, write_set


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = build_toy_tree(tmp_path_factory.mktemp("genelink"))
    return discover(root)


@pytest.fixture(scope="module")
def test_set(toy):
    return find_set(toy, "STRING", "mDC", 500)


def _edges(ns):
    return set(zip(ns.sources.tolist(), ns.targets.tolist()))


def test_protocol_a_negatives_are_never_edges_and_never_self_pairs(test_set):
    a = protocol_a(test_set, seed=3)
    neg = a.labels == 0
    pairs = list(zip(a.sources[neg].tolist(), a.targets[neg].tolist()))
    assert not set(pairs) & _edges(test_set)
    assert all(s != t for s, t in pairs)
    assert len(set(pairs)) == len(pairs)  # drawn without replacement
    assert set(a.targets[neg]) <= set(test_set.genes)
    assert set(zip(a.sources[~neg].tolist(), a.targets[~neg].tolist())) == _edges(test_set)


def test_protocol_a_is_balanced_per_tf(test_set):
    a = protocol_a(test_set, seed=0)
    pos = Counter(a.sources[a.labels == 1].tolist())
    neg = Counter(a.sources[a.labels == 0].tolist())
    assert pos == neg and a.positive_rate == 0.5 and a.info["negative_shortfall"] == 0


def test_sets_are_deterministic_under_a_seed(test_set):
    for build in (protocol_a, protocol_m, training_pairs):
        x, y, z = build(test_set, seed=5), build(test_set, seed=5), build(test_set, seed=6)
        assert np.array_equal(x.targets, y.targets) and np.array_equal(x.sources, y.sources)
        assert not np.array_equal(x.targets, z.targets)


def test_tf_with_too_few_non_targets_reports_a_shortfall(tmp_path):
    genes = ["A", "B", "C", "D", "E"]
    folder = write_set(tmp_path, "N", "X", 500, genes, ["A", "B"],
                       [("A", "B"), ("A", "C"), ("A", "D"), ("B", "C")])
    a = protocol_a(load_network_set(folder), seed=0)
    # A targets B, C, D: only E is left (A itself excluded) -> 1 negative for 3 positives.
    assert a.info["negative_shortfall"] == 2
    neg = a.labels == 0
    assert sorted(zip(a.sources[neg].tolist(), a.targets[neg].tolist()))[0] == ("A", "E")


def test_training_set_groups_are_source_genes(toy):
    train = training_pairs(find_set(toy, "STRING", "hESC", 500), seed=1)
    assert train.protocol == "train" and np.array_equal(train.groups, train.sources)
    assert train.n_positive == train.n_negative == 150


def test_protocol_b_excludes_every_training_gene(tmp_path, test_set):
    # a training network over part of the genes: TFs G0-G4, other genes G60-G99
    genes = toy_genes(5) + toy_genes(100)[60:]
    folder = write_set(tmp_path, "N", "hESC", 500, genes, genes[:5],
                       random_network(genes, genes[:5], 30, seed=4))
    train = training_pairs(load_network_set(folder), seed=0)
    a = protocol_a(test_set, seed=0)
    b = protocol_b(a, train)
    assert len(b) > 0 and b.protocol == "B"
    assert not b.genes() & train.genes()
    # every A pair free of training genes is kept
    free = [(s, t) for s, t in zip(a.sources, a.targets) if s not in train.genes()
            and t not in train.genes()]
    assert len(free) == len(b) and b.info["excluded_pairs"] == len(a) - len(b)


def test_protocol_b_with_an_explicit_gene_list(test_set):
    a = protocol_a(test_set, seed=0)
    b = protocol_b(a, ["G0", "G1"])
    assert not {"G0", "G1"} & b.genes()
    assert len(b) == int(((~np.isin(a.sources, ["G0", "G1"]))
                          & (~np.isin(a.targets, ["G0", "G1"]))).sum())


def test_protocol_c_is_every_tf_gene_candidate(test_set):
    c = protocol_c(test_set)
    n_tf, n_genes = len(test_set.tfs), len(test_set.genes)
    assert len(c) == n_tf * n_genes - n_tf
    assert len(c.pairs()) == len(c) and not (c.sources == c.targets).any()
    pos = c.labels == 1
    assert set(zip(c.sources[pos].tolist(), c.targets[pos].tolist())) == _edges(test_set)
    assert c.positive_rate == pytest.approx(test_set.n_edges / len(c))


def test_degree_bins_put_unregulated_genes_apart_and_grow_with_in_degree(test_set):
    bins, inner = degree_bins(test_set, n_bins=4)
    indeg = Counter(test_set.targets.tolist())
    d = np.array([indeg.get(g, 0) for g in test_set.genes])
    assert (bins[d == 0] == -1).all() and (bins[d > 0] >= 0).all()
    order = np.argsort(d, kind="stable")
    assert (np.diff(bins[order]) >= 0).all()  # monotone in in-degree
    assert len(inner) <= 3


def test_protocol_m_matches_tf_status_exactly_and_degree_bins_mostly(test_set):
    m = protocol_m(test_set, seed=2, n_bins=4)
    n = m.n_positive
    assert m.n_negative == n and m.info["dropped_positives"] == 0
    pos_t, neg_t = m.targets[:n], m.targets[n:]
    assert np.array_equal(m.sources[:n], m.sources[n:])  # same source per pair
    tfs = set(test_set.tfs)
    assert [g in tfs for g in pos_t] == [g in tfs for g in neg_t]
    bins, _ = degree_bins(test_set, n_bins=4)
    idx = {g: i for i, g in enumerate(test_set.genes)}
    same = np.array([bins[idx[p]] == bins[idx[q]] for p, q in zip(pos_t, neg_t)])
    assert (~same).sum() == m.info["widened"]
    assert same.mean() >= 0.8
    assert not set(zip(m.sources[n:].tolist(), neg_t.tolist())) & _edges(test_set)


def test_target_is_tf_shortcut_scores_half_under_m_but_not_under_a(test_set):
    a, m = protocol_a(test_set, seed=0), protocol_m(test_set, seed=0)
    tfs = test_set.tfs
    assert average_precision(a.labels, target_is_tf(a, tfs)) > 0.6
    assert average_precision(m.labels, target_is_tf(m, tfs)) == pytest.approx(0.5)


def test_protocol_m_drops_a_positive_with_no_candidate_of_its_tf_status(tmp_path):
    # TF A regulates the only other TF (B); no TF is left as a matched negative for A -> B.
    genes = ["A", "B", "C", "D", "E"]
    folder = write_set(tmp_path, "N", "X", 500, genes, ["A", "B"], [("A", "B"), ("A", "C")])
    m = protocol_m(load_network_set(folder), seed=0)
    assert m.info["dropped_positives"] == 1
    assert m.pairs() >= {("A", "C")} and ("A", "B") not in m.pairs()
    assert m.n_positive == m.n_negative == 1


def test_build_protocols_returns_requested_sets(toy, test_set):
    train = training_pairs(find_set(toy, "STRING", "hESC", 500))
    sets = build_protocols(test_set, train, seed=0)
    assert list(sets) == ["A", "B", "C", "M"]
    assert all(s.dataset == "mDC" and s.network == "STRING" and s.size == 500
               for s in sets.values())
    assert list(build_protocols(test_set, train, protocols=["M"])) == ["M"]
    with pytest.raises(ValueError, match="unknown protocol"):
        build_protocols(test_set, train, protocols=["Z"])


def test_pairset_rejects_misaligned_arrays():
    with pytest.raises(ValueError, match="lengths differ"):
        PairSet(np.array(["A"]), np.array(["B", "C"]), np.array([1]), "A")
    with pytest.raises(ValueError, match="0 or 1"):
        PairSet(np.array(["A"]), np.array(["B"]), np.array([2]), "A")


def test_random_network_helper_is_skewed_towards_tf_targets():
    genes = toy_genes(100)
    edges = random_network(genes, genes[:20], 150, seed=0)
    assert sum(t in set(genes[:20]) for _, t in edges) / len(edges) > 0.4
