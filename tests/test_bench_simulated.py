"""A simulated atlas written as a GENELink benchmark root (the backbone-scaling experiment's data):
the bench's own loader reads it, the two networks split the TFs, and the matrices are
log-normalised cells of the two chosen datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlasgrn.bench.genelink import discover, plan_transfers
from atlasgrn.bench.simulated import (
    SIM_NETWORK,
    TEST_NAME,
    TRAIN_NAME,
    split_regulators,
    write_simulated_root,
)
from atlasgrn.models.values import TARGET_SUM, to_model_space
from atlasgrn.sim import SimConfig, simulate_atlas


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    work = tmp_path_factory.mktemp("simroot")
    res = simulate_atlas(str(work / "a.zarr"), SimConfig(n_datasets=3, n_cells=150, n_genes=40,
                                                          n_tfs=8, seed=5))
    root = write_simulated_root(res.atlas_uri, res.edges_path, res.tfs, work / "root",
                                train_dataset="sim01", test_dataset="sim02", seed=5,
                                max_cells=100)
    return res, root


def test_the_bench_loader_reads_two_networks_over_disjoint_regulators(simulated):
    res, root = simulated
    sets = {s.dataset: s for s in discover(root.root)}
    assert set(sets) == {TRAIN_NAME, TEST_NAME}
    train, test = sets[TRAIN_NAME], sets[TEST_NAME]
    assert train.network == test.network == SIM_NETWORK and train.size == 40
    assert set(train.sources) <= set(root.train_tfs) and set(test.sources) <= set(root.test_tfs)
    assert not set(root.train_tfs) & set(root.test_tfs)
    assert set(train.tfs) == set(test.tfs) == set(res.tfs)
    truth = pd.read_parquet(res.edges_path)
    want = truth[truth["source"].isin(root.test_tfs)]
    assert set(zip(test.sources, test.targets)) == set(zip(want["source"], want["target"]))
    plan = plan_transfers(list(sets.values()), train_dataset=TRAIN_NAME)
    assert [(p.train.dataset, [t.dataset for t in p.tests]) for p in plan] == [
        (TRAIN_NAME, [TEST_NAME])]


def test_matrices_are_log_normalised_cells_of_the_chosen_dataset(simulated):
    res, root = simulated
    test = next(s for s in discover(root.root) if s.dataset == TEST_NAME)
    expr = test.load_expression()
    assert expr.values.shape == (100, 40)
    totals = np.expm1(expr.values.astype(np.float64)).sum(axis=1)
    assert np.allclose(totals[totals > 0], TARGET_SUM, rtol=1e-3)


def test_log_normalised_keeps_empty_cells_at_zero_and_the_split_is_seeded():
    out = to_model_space(np.array([[0.0, 0.0], [1.0, 3.0]]), "counts")
    assert out[0].tolist() == [0.0, 0.0]
    assert out[1] == pytest.approx(np.log1p([2500.0, 7500.0]))
    tfs = [f"T{i}" for i in range(9)]
    assert split_regulators(tfs, 1) == split_regulators(tfs, 1)
    a, b = split_regulators(tfs, 1)
    assert len(a) == 4 and len(b) == 5 and sorted(a + b) == sorted(tfs)


def test_an_existing_root_is_refused_not_overwritten(simulated, tmp_path):
    res, _ = simulated
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError):
        write_simulated_root(res.atlas_uri, res.edges_path, res.tfs, root,
                             train_dataset="sim01", test_dataset="sim02")
    assert (root / "notes.txt").read_text() == "keep"
