"""The simulator's network and kinetics, checked against direct formulas (no atlas I/O)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from atlasgrn.sim.grn import build_grn, n_masters_for
from atlasgrn.sim.kinetics import plan_kinetics, steady_state
from atlasgrn.sim.sample import (
    RNG_UNIT_CELLS,
    make_context,
    make_state_pool,
    sample_unit,
)
from atlasgrn.sim.simulate import _rng
from atlasgrn.sim.symbols import human_genes, simulation_pools, transcription_factors

DATA_DIR = Path(__file__).resolve().parents[1] / "atlasgrn" / "data"


@pytest.fixture(scope="module")
def grn():
    tf_pool, target_pool = simulation_pools()
    return build_grn(300, 40, _rng(7, 0), tf_pool=tf_pool, target_pool=target_pool)


def test_bundled_symbol_lists_are_small_real_and_consistent():
    files = [DATA_DIR / n for n in ("tfs_human.txt", "tfs_mouse.txt", "genes_human.txt")]
    assert sum(f.stat().st_size for f in files) < 1_000_000
    assert len(transcription_factors("human")) == 1563
    assert len(transcription_factors("mouse")) == 1479
    assert {"SOX2", "POU5F1", "GATA1", "SPI1"} <= set(transcription_factors("human"))
    genes = human_genes()
    assert {"GAPDH", "ACTB", "CD19"} <= set(genes) and len(genes) > 15_000
    tf_pool, target_pool = simulation_pools()
    assert len(tf_pool) > 1400 and not set(tf_pool) & set(target_pool)
    assert set(tf_pool) <= set(transcription_factors("human"))


def test_network_is_a_sparse_dag_of_tf_regulators_with_one_to_three_per_target(grn):
    assert len(set(grn.genes)) == grn.n_genes == 300
    tfs = set(transcription_factors("human"))
    assert all(g in tfs for g in grn.genes[:grn.n_tfs])
    assert not any(g in tfs for g in grn.genes[grn.n_tfs:])
    assert (grn.src < grn.n_tfs).all(), "every regulator is a TF"
    assert (grn.src < grn.dst).all(), "topological order: regulators come before targets"
    indeg = np.bincount(grn.dst, minlength=grn.n_genes)
    assert (indeg[:grn.n_masters] == 0).all()
    assert indeg[grn.n_masters:].min() >= 1 and indeg.max() <= 3
    assert len({(s, d) for s, d in zip(grn.src, grn.dst)}) == grn.n_edges, "no duplicate edges"
    assert grn.n_masters == n_masters_for(40) == 8
    assert (grn.dst < grn.n_tfs).any(), "some TFs regulate TFs"
    frac_act = float((grn.sign > 0).mean())
    assert 0.5 < frac_act < 0.8 and set(np.unique(grn.sign)) == {-1, 1}


def test_steady_state_equals_hill_formula_evaluated_gene_by_gene(grn):
    rng = np.random.default_rng(3)
    n_cells = 64
    act = rng.uniform(0.01, 1.0, size=(grn.n_masters, n_cells)).astype(np.float32)
    noise = np.exp(rng.normal(0, 0.3, size=(grn.n_genes, n_cells))).astype(np.float32)
    x = steady_state(plan_kinetics(grn), act, noise)

    # Reference: equation (1) of kinetics.py with the textbook Hill forms, in float64.
    ref = np.zeros((grn.n_genes, n_cells))
    ref[:grn.n_masters] = grn.scale[:grn.n_masters, None] * act * noise[:grn.n_masters]
    for j in range(grn.n_masters, grn.n_genes):  # genes are in topological order
        total = np.full(n_cells, float(grn.basal[j]))
        for e in np.flatnonzero(grn.dst == j):
            xi, k, n = ref[grn.src[e]], float(grn.hill_k[e]), float(grn.hill_n[e])
            act_h = xi ** n / (k ** n + xi ** n)
            total += grn.weight[e] * (act_h if grn.sign[e] > 0 else 1.0 - act_h)
        ref[j] = grn.scale[j] * total * noise[j]
    np.testing.assert_allclose(x, ref, rtol=2e-4, atol=1e-6)


def test_activator_raises_and_repressor_lowers_a_sole_regulated_target(grn):
    indeg = np.bincount(grn.dst, minlength=grn.n_genes)
    plan = plan_kinetics(grn)
    sole = [e for e in range(grn.n_edges)
            if indeg[grn.dst[e]] == 1 and grn.src[e] < grn.n_masters]
    assert sole
    noise = np.ones((grn.n_genes, 2), dtype=np.float32)
    for e in sole:
        act = np.full((grn.n_masters, 2), 0.5, dtype=np.float32)
        act[grn.src[e]] = [0.02, 1.0]  # regulator off, then on
        x = steady_state(plan, act, noise)[grn.dst[e]]
        if grn.sign[e] > 0:
            assert x[1] > 1.5 * x[0]
        else:
            assert x[0] > 1.5 * x[1]


def test_counts_are_non_negative_integers_with_realistic_sparsity(grn):
    plan = plan_kinetics(grn)
    pool = make_state_pool(5, grn.n_masters, _rng(1, 1))
    ctx = make_context("d", 5, grn.n_masters, grn.n_genes, _rng(1, 1, 0))
    counts, state = sample_unit(plan, pool, ctx, RNG_UNIT_CELLS, _rng(1, 2, 0, 0))
    assert counts.shape == (RNG_UNIT_CELLS, grn.n_genes) and counts.dtype == np.float32
    assert (counts >= 0).all() and (counts == np.round(counts)).all()
    assert set(np.unique(state)) <= set(ctx.states.tolist())
    frac_nonzero = float((counts > 0).mean())
    assert 0.05 < frac_nonzero < 0.9
    # Library size: the per-cell totals follow the dataset depth (log-normal around it).
    totals = counts.sum(axis=1)
    assert 0.4 * ctx.depth < np.median(totals) < 1.2 * ctx.depth
    assert totals.std() / totals.mean() > 0.2  # library sizes vary between cells


def test_dropout_removes_more_counts_when_the_midpoint_is_higher(grn):
    plan = plan_kinetics(grn)
    pool = make_state_pool(5, grn.n_masters, _rng(1, 1))
    ctx = make_context("d", 5, grn.n_masters, grn.n_genes, _rng(1, 1, 0))
    mild = ctx.__class__(**{**ctx.__dict__, "dropout_mid": -6.0})
    harsh = ctx.__class__(**{**ctx.__dict__, "dropout_mid": 1.0})
    nz_mild = (sample_unit(plan, pool, mild, 512, _rng(1, 2, 0, 0))[0] > 0).mean()
    nz_harsh = (sample_unit(plan, pool, harsh, 512, _rng(1, 2, 0, 0))[0] > 0).mean()
    assert nz_harsh < 0.8 * nz_mild


def test_dense_to_csr_matches_scipy_including_empty_rows():
    from atlasgrn.sim.simulate import dense_to_csr
    rng = np.random.default_rng(0)
    dense = rng.poisson(0.4, size=(50, 33)).astype(np.float32)
    dense[7] = 0
    dense[-1] = 0
    got = dense_to_csr(dense)
    assert got.has_sorted_indices and got.indices.dtype == np.int32
    np.testing.assert_array_equal(got.toarray(), dense)
    want = sp.csr_matrix(dense)
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)


@pytest.mark.shared_data
def test_bundled_lists_reproduce_from_their_recorded_sources(shared_data):
    """TF_LISTS.md's provenance holds: the bundled files are the sources' symbols, unchanged."""
    import csv
    import json

    for species in ("human", "mouse"):
        with open(shared_data / "beeline_networks" / f"{species}-tfs.csv") as fh:
            source = sorted(row["TF"].strip() for row in csv.DictReader(fh))
        assert list(transcription_factors(species)) == source
    vocab = json.loads((shared_data / "foundation_model_assets" / "scgpt_human" /
                        "vocab.json").read_text())
    assert set(human_genes()) <= set(vocab)
