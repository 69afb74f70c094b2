"""Per-context statistics (atlasgrn.atlas.contexts): exact against numpy, chunked, Ray-ready,
one-line errors, and a cache that is written only when asked and never to a read-only atlas."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import zarr

from atlasgrn.atlas import contexts as ctx_mod
from atlasgrn.atlas import open_atlas
from atlasgrn.atlas.contexts import (
    context_stats,
    lazy_context_sums,
    read_context_labels,
)
from atlasgrn.atlas.layout import CONTEXT_STATS_KEY
from atlasgrn.errors import AtlasgrnError

N_DATASETS, N_CELLS, N_GENES = 2, 600, 120
BLOCK = 128  # -> 5 row chunks of 600 cells


def _rewrite_obs(atlas: Path, name: str, **columns) -> None:
    """Add or replace obs columns of one dataset in place (test set-up, not library code)."""
    grp = zarr.open_group(str(atlas / "datasets" / name), mode="r+")
    obs = ad.io.read_elem(grp["obs"])
    for col, values in columns.items():
        obs[col] = values
    ad.io.write_elem(grp, "obs", obs)


@pytest.fixture(scope="module")
def sim_atlas(tmp_path_factory) -> Path:
    """2 simulated datasets; sim01 also gets a categorical column (an unused category and
    missing values) and an integer one."""
    from atlasgrn.sim import SimConfig, simulate_atlas

    path = tmp_path_factory.mktemp("contexts") / "sim.zarr"
    simulate_atlas(path, SimConfig(n_datasets=N_DATASETS, n_cells=N_CELLS, n_genes=N_GENES,
                                   n_tfs=20, seed=3))
    state = open_atlas(path, writable=False).dataset("sim01").obs["cell_state"].astype(str)
    cell_type = pd.Categorical(state.where(np.arange(N_CELLS) % 17 != 0),  # NaN every 17th
                               categories=sorted(set(state)) + ["never_used"])
    _rewrite_obs(path, "sim01", cell_type=cell_type,
                 cluster=(np.arange(N_CELLS) * 7 % 3).astype(np.int64))
    return path


@pytest.fixture()
def atlas_copy(sim_atlas, tmp_path) -> Path:
    """A private copy for tests that write (the cache) or mutate the store."""
    dst = tmp_path / "copy.zarr"
    shutil.copytree(sim_atlas, dst)
    return dst


def _reference(ds, column: str) -> tuple[dict, dict, dict]:
    """Counts, means and fractions non-zero per value, from dense numpy blocks."""
    labels = ds.obs[column]
    keep = labels.notna().to_numpy()
    values = labels.astype(str).to_numpy()
    sums, nnz, counts = {}, {}, {}
    for start in range(0, ds.info.n_cells, 250):
        stop = min(start + 250, ds.info.n_cells)
        block = ds.read_cells(start, stop, dense=True).astype(np.float64)
        for v in np.unique(values[start:stop][keep[start:stop]]):
            rows = block[(values[start:stop] == v) & keep[start:stop]]
            sums[v] = sums.get(v, 0.0) + rows.sum(axis=0)
            nnz[v] = nnz.get(v, 0) + (rows != 0).sum(axis=0)
            counts[v] = counts.get(v, 0) + rows.shape[0]
    return (counts, {v: sums[v] / counts[v] for v in counts},
            {v: nnz[v] / counts[v] for v in counts})


def _assert_matches(stats, ds, column: str, min_cells: int) -> None:
    counts, means, fracs = _reference(ds, column)
    assert stats.n_cells == counts
    assert stats.contexts == tuple(sorted(v for v, n in counts.items() if n >= min_cells))
    for c in stats.contexts:
        assert stats.mean[c].dtype == np.float64 and stats.mean[c].shape == (N_GENES,)
        np.testing.assert_allclose(stats.mean[c], means[c], rtol=1e-9, atol=0)
        np.testing.assert_allclose(stats.frac_nonzero[c], fracs[c], rtol=1e-9, atol=0)


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def test_means_and_fractions_equal_numpy(sim_atlas):
    atlas = open_atlas(sim_atlas, writable=False)
    for name in atlas.names:
        ds = atlas.dataset(name)
        stats = context_stats(ds, "cell_state", min_cells=1, block_cells=BLOCK)
        _assert_matches(stats, ds, "cell_state", 1)
        assert stats.dataset == name and stats.column == "cell_state"


def test_small_contexts_are_excluded_but_counted(sim_atlas):
    ds = open_atlas(sim_atlas, writable=False).dataset("sim00")
    counts = sorted(_reference(ds, "cell_state")[0].values())
    assert len(counts) >= 2, "the simulated dataset needs two cell states"
    min_cells = counts[0] + 1  # the smallest state falls below
    stats = context_stats(ds, "cell_state", min_cells=min_cells, block_cells=BLOCK)
    _assert_matches(stats, ds, "cell_state", min_cells)
    assert stats.skipped and all(stats.n_cells[s] < min_cells for s in stats.skipped)
    assert set(stats.mean) == set(stats.frac_nonzero) == set(stats.contexts)
    assert set(stats.n_cells) == set(stats.contexts) | set(stats.skipped)


def test_categorical_and_integer_columns(sim_atlas):
    ds = open_atlas(sim_atlas, writable=False).dataset("sim01")
    cat = context_stats(ds, "cell_type", min_cells=1, block_cells=BLOCK)
    _assert_matches(cat, ds, "cell_type", 1)
    assert "never_used" not in cat.n_cells  # unused category: no context
    assert sum(cat.n_cells.values()) == N_CELLS - len(range(0, N_CELLS, 17))  # NaN: in none
    ints = context_stats(ds, "cluster", min_cells=1, block_cells=BLOCK)
    assert ints.contexts == ("0", "1", "2")
    _assert_matches(ints, ds, "cluster", 1)


def test_dense_x_gives_the_same_numbers(atlas_copy):
    sparse = context_stats(open_atlas(atlas_copy, writable=False).dataset("sim00"),
                           "cell_state", min_cells=1, block_cells=BLOCK)
    grp = zarr.open_group(str(atlas_copy / "datasets" / "sim00"), mode="r+")
    dense_x = ad.io.read_elem(grp["X"]).toarray()
    del grp["X"]
    ad.io.write_elem(grp, "X", dense_x)
    ds = open_atlas(atlas_copy, writable=False).dataset("sim00")
    assert not ds.info.sparse
    dense = context_stats(ds, "cell_state", min_cells=1, block_cells=BLOCK)
    for c in sparse.contexts:
        np.testing.assert_allclose(dense.mean[c], sparse.mean[c], rtol=1e-12, atol=0)
        np.testing.assert_array_equal(dense.frac_nonzero[c], sparse.frac_nonzero[c])


def test_bad_inputs_are_one_line_errors_naming_the_column(sim_atlas):
    ds = open_atlas(sim_atlas, writable=False).dataset("sim00")
    with pytest.raises(AtlasgrnError) as missing:
        context_stats(ds, "cell_type")
    text = str(missing.value)
    assert "\n" not in text and "'cell_type'" in text and "cell_state" in text
    assert "--context-key" in missing.value.remedy and missing.value.path == str(sim_atlas)
    assert missing.value.key.endswith("obs/cell_type")

    with pytest.raises(AtlasgrnError) as few:
        context_stats(ds, "cell_state", min_cells=10 ** 6)
    text = str(few.value)
    largest = max(_reference(ds, "cell_state")[0].values())
    assert "\n" not in text and "'cell_state'" in text and f"with {largest} of" in text
    assert "--min-cells" in few.value.remedy and few.value.key.endswith("obs/cell_state")

    with pytest.raises(AtlasgrnError, match="--min-cells"):
        context_stats(ds, "cell_state", min_cells=0)


def test_ray_scheduler_gives_identical_numbers(sim_atlas, ray_session):
    from ray.util.dask import ray_dask_get

    ds = open_atlas(sim_atlas, writable=False).dataset("sim01")
    threaded = context_stats(ds, "cell_type", min_cells=1, block_cells=BLOCK)
    on_ray = context_stats(ds, "cell_type", min_cells=1, block_cells=BLOCK,
                           scheduler=ray_dask_get)
    assert on_ray.contexts == threaded.contexts and on_ray.n_cells == threaded.n_cells
    for c in threaded.contexts:
        np.testing.assert_array_equal(on_ray.mean[c], threaded.mean[c])
        np.testing.assert_array_equal(on_ray.frac_nonzero[c], threaded.frac_nonzero[c])


def test_work_is_split_into_row_chunks(sim_atlas, monkeypatch):
    ds = open_atlas(sim_atlas, writable=False).dataset("sim00")
    labels = read_context_labels(ds, "cell_state")
    seen: list[tuple[int, int]] = []
    original = ctx_mod._block_sums

    def spy(block, codes, n_ctx):
        seen.append(block.shape)
        return original(block, codes, n_ctx)

    monkeypatch.setattr(ctx_mod, "_block_sums", spy)
    lazy = lazy_context_sums(ds, labels, block_cells=BLOCK)
    graph = dict(lazy.__dask_graph__())
    reads = [k for k in graph if isinstance(k, tuple) and str(k[0]).startswith("make_dask_chunk")]
    assert len(reads) == -(-N_CELLS // BLOCK) > 1  # one lazy read per row chunk
    assert lazy.shape == (2, len(labels.names), N_GENES)
    lazy.compute(scheduler="sync")
    assert len(seen) == len(reads) and max(rows for rows, _ in seen) <= BLOCK
    assert sum(rows for rows, _ in seen) == N_CELLS


def test_cache_false_writes_nothing(atlas_copy):
    before = _listing(atlas_copy)
    ds = open_atlas(atlas_copy).dataset("sim00")
    assert ds._writable  # a writable atlas: only cache=False keeps it untouched
    context_stats(ds, "cell_state", min_cells=1, block_cells=BLOCK)
    assert _listing(atlas_copy) == before


def test_read_only_atlas_is_never_written(atlas_copy):
    before = _listing(atlas_copy)
    ds = open_atlas(atlas_copy, writable=False).dataset("sim00")
    stats = context_stats(ds, "cell_state", min_cells=1, block_cells=BLOCK, cache=True)
    _assert_matches(stats, ds, "cell_state", 1)
    assert _listing(atlas_copy) == before


def test_cache_is_reused_and_invalidated_by_new_labels(atlas_copy, monkeypatch):
    ds = open_atlas(atlas_copy).dataset("sim01")
    first = context_stats(ds, "cluster", min_cells=1, block_cells=BLOCK, cache=True)
    assert (atlas_copy / "datasets" / "sim01" / "uns" / CONTEXT_STATS_KEY / "cluster").is_dir()

    def no_compute(*_a, **_k):
        raise AssertionError("recomputed although a valid cache exists")

    monkeypatch.setattr(ctx_mod, "_compute", no_compute)
    again = context_stats(open_atlas(atlas_copy).dataset("sim01"), "cluster", min_cells=150,
                          block_cells=BLOCK, cache=True)  # another min_cells: same cache
    assert again.n_cells == first.n_cells
    for c in again.contexts:
        np.testing.assert_array_equal(again.mean[c], first.mean[c])
    with pytest.raises(AssertionError, match="recomputed"):  # cache=False never reads it
        context_stats(ds, "cluster", min_cells=1, block_cells=BLOCK)
    monkeypatch.undo()

    _rewrite_obs(atlas_copy, "sim01", cluster=(np.arange(N_CELLS) % 2).astype(np.int64))
    ds = open_atlas(atlas_copy).dataset("sim01")
    fresh = context_stats(ds, "cluster", min_cells=1, block_cells=BLOCK, cache=True)
    assert fresh.contexts == ("0", "1")
    _assert_matches(fresh, ds, "cluster", 1)
    assert os.listdir(atlas_copy / "datasets" / "sim01" / "uns" / CONTEXT_STATS_KEY)
