"""``simulate_atlas`` / ``atlasgrn simulate``: the written atlas, its truth file, determinism
and refusal of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from atlasgrn.atlas import open_atlas
from atlasgrn.cli import main
from atlasgrn.sim import SimConfig, simulate_atlas, transcription_factors


def _matrices(uri: str) -> dict[str, np.ndarray]:
    atlas = open_atlas(uri, writable=False)
    return {n: atlas.dataset(n).read_cells(0, atlas.dataset(n).info.n_cells, dense=True)
            for n in atlas.names}


def _log_norm(x: np.ndarray) -> np.ndarray:
    return np.log1p(x / np.maximum(x.sum(axis=1, keepdims=True), 1) * 1e4)


@pytest.fixture(scope="module")
def default_atlas(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "atlas.zarr"
    return simulate_atlas(out, SimConfig())


def test_default_atlas_has_three_human_count_datasets_with_cell_states(default_atlas):
    atlas = open_atlas(default_atlas.atlas_uri, writable=False)
    infos = atlas.datasets()
    assert [i.name for i in infos] == ["sim00", "sim01", "sim02"]
    for info in infos:
        assert (info.n_cells, info.n_genes) == (500, 200)
        assert (info.species, info.value_kind) == ("human", "counts")
        ds = atlas.dataset(info.name)
        assert list(ds.genes) == sorted(default_atlas.genes)
        states = ds.obs["cell_state"]
        assert len(states) == 500 and states.str.match(r"^state\d\d$").all()
        assert 2 <= states.nunique() <= 4
        x = ds.read_cells(0, 500, dense=True)
        assert (x >= 0).all() and (x == np.round(x)).all()
    assert Path(default_atlas.edges_path).name == "atlas.zarr.edges.parquet"


def test_edges_file_names_real_tfs_and_signs_of_the_simulated_genes(default_atlas):
    table = pq.read_table(default_atlas.edges_path)
    assert table.schema.field("source").type == "string"
    assert table.schema.field("target").type == "string"
    assert table.schema.field("sign").type == "int8"
    edges = table.to_pandas()
    assert len(edges) == default_atlas.n_edges > 200
    assert set(edges["sign"]) == {-1, 1}
    assert set(edges["source"]) <= set(default_atlas.tfs) <= set(transcription_factors("human"))
    assert set(edges["target"]) <= set(default_atlas.genes)
    per_target = edges.groupby("target").size()
    assert per_target.min() >= 1 and per_target.max() <= 3
    assert not edges.duplicated(["source", "target"]).any()


def test_true_edge_signs_show_in_the_simulated_cells(default_atlas):
    """Edges whose target has a master TF as sole regulator: the correlation of log-normalised
    expression has the edge's sign in at least one dataset, clearly."""
    edges = pd.read_parquet(default_atlas.edges_path)
    indeg = edges.groupby("target").size()
    masters = set(edges["source"]) - set(edges["target"])
    sole = edges[(edges["target"].map(indeg) == 1) & edges["source"].isin(masters)]
    assert (sole["sign"] > 0).sum() >= 5 and (sole["sign"] < 0).sum() >= 3
    genes = {g: i for i, g in enumerate(sorted(default_atlas.genes))}
    corr = []
    for x in _matrices(default_atlas.atlas_uri).values():
        z = _log_norm(x)
        corr.append([np.corrcoef(z[:, genes[s]], z[:, genes[t]])[0, 1]
                     for s, t in zip(sole["source"], sole["target"])])
    corr = np.nan_to_num(np.array(corr))
    act = sole["sign"].to_numpy() > 0
    best_act, best_rep = corr[:, act].max(axis=0), corr[:, ~act].min(axis=0)
    assert (best_act > 0.05).all() and np.median(best_act) > 0.15
    assert (best_rep < -0.05).all() and np.median(best_rep) < -0.1


def test_datasets_are_different_contexts_of_the_same_network(default_atlas):
    """Different cell-state mixes, depths and hence mean profiles, one gene set and network."""
    atlas = open_atlas(default_atlas.atlas_uri, writable=False)
    mats = _matrices(default_atlas.atlas_uri)
    profiles = np.array([_log_norm(x).mean(axis=0) for x in mats.values()])
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(profiles[a] - profiles[b]).mean() > 0.2
    depths = [x.sum(axis=1).mean() for x in mats.values()]
    assert max(depths) / min(depths) > 1.5
    state_sets = {frozenset(atlas.dataset(n).obs["cell_state"]) for n in atlas.names}
    assert len(state_sets) >= 2
    assert len({tuple(atlas.dataset(n).genes) for n in atlas.names}) == 1


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    cfg = SimConfig(n_datasets=2, n_cells=300, n_genes=120, seed=11)
    a = simulate_atlas(tmp_path / "a.zarr", cfg)
    b = simulate_atlas(tmp_path / "b.zarr", cfg)
    c = simulate_atlas(tmp_path / "c.zarr", SimConfig(n_datasets=2, n_cells=300, n_genes=120,
                                                      seed=12))
    ma, mb, mc = (_matrices(r.atlas_uri) for r in (a, b, c))
    for name in ma:
        assert ma[name].tobytes() == mb[name].tobytes()
        assert ma[name].shape != mc[name].shape or not np.array_equal(ma[name], mc[name])
    assert Path(a.edges_path).read_bytes() == Path(b.edges_path).read_bytes()
    assert Path(a.edges_path).read_bytes() != Path(c.edges_path).read_bytes()
    assert (open_atlas(a.atlas_uri).dataset("sim00").obs["cell_state"].tolist()
            == open_atlas(b.atlas_uri).dataset("sim00").obs["cell_state"].tolist())


def test_result_does_not_depend_on_the_block_size(tmp_path):
    base = dict(n_datasets=1, n_cells=2500, n_genes=60, seed=5)
    small = simulate_atlas(tmp_path / "s.zarr", SimConfig(**base, block_cells=1000))
    large = simulate_atlas(tmp_path / "l.zarr", SimConfig(**base, block_cells=100_000))
    a, b = _matrices(small.atlas_uri)["sim00"], _matrices(large.atlas_uri)["sim00"]
    assert a.shape == (2500, 60) and np.array_equal(a, b)


def test_fewer_cells_reproduce_the_first_whole_units_of_a_bigger_run(tmp_path):
    base = dict(n_datasets=1, n_genes=40, seed=2)
    short = _matrices(simulate_atlas(tmp_path / "a.zarr", SimConfig(**base, n_cells=1500))
                      .atlas_uri)["sim00"]
    long = _matrices(simulate_atlas(tmp_path / "b.zarr", SimConfig(**base, n_cells=2048))
                     .atlas_uri)["sim00"]
    assert np.array_equal(short[:1024], long[:1024])
    assert not np.array_equal(short[1024:1500], long[1024:1500])  # partial unit: own draws


def test_cli_writes_atlas_and_custom_edges_path(tmp_path, capsys):
    out, edges = tmp_path / "cli.zarr", tmp_path / "truth" / "edges.parquet"
    edges.parent.mkdir()
    rc = main(["simulate", str(out), "--datasets", "2", "--cells", "50", "--genes", "40",
               "--tfs", "6", "--seed", "3", "--edges-out", str(edges)])
    assert rc == 0
    assert "wrote 2 datasets (100 cells x 40 genes, 6 TFs)" in capsys.readouterr().out
    assert [i.n_cells for i in open_atlas(out).datasets()] == [50, 50]
    assert len(set(pq.read_table(edges).column("source").to_pylist())) <= 6
    assert not (tmp_path / "cli.zarr.edges.parquet").exists()
    assert [f.name for f in edges.parent.iterdir()] == ["edges.parquet"]  # no temporary left


def test_edges_of_a_remote_atlas_are_written_through_fsspec():
    import fsspec

    uri = "memory://sim-remote/atlas.zarr"
    try:
        res = simulate_atlas(uri, SimConfig(n_datasets=1, n_cells=50, n_genes=40, seed=3))
        assert res.edges_path == uri + ".edges.parquet"
        with fsspec.open(res.edges_path, "rb") as fh:
            assert pq.read_table(fh).num_rows == res.n_edges
        assert open_atlas(uri, writable=False).names == ["sim00"]
    finally:
        fsspec.filesystem("memory").rm("/sim-remote", recursive=True)


@pytest.mark.parametrize("args, key", [
    (["--cells", "0"], "--cells"),
    (["--genes", "-5"], "--genes"),
    (["--datasets", "0"], "--datasets"),
    (["--genes", "50", "--tfs", "60"], "--tfs"),
    (["--genes", "50", "--tfs", "50"], "--tfs"),
    (["--genes", "30000", "--tfs", "100"], "--genes"),
    (["--genes", "5000", "--tfs", "2000"], "--tfs"),
    (["--block-cells", "0"], "--block-cells"),
])
def test_bad_sizes_exit_2_with_one_line_naming_the_option(tmp_path, capsys, args, key):
    out = tmp_path / "bad.zarr"
    assert main(["simulate", str(out), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"key '{key}'" in err and "fix:" in err
    assert not out.exists()


def test_existing_outputs_are_refused_without_overwrite_and_replaced_with_it(tmp_path, capsys):
    out = tmp_path / "x.zarr"
    small = ["--datasets", "1", "--cells", "20", "--genes", "30"]
    assert main(["simulate", str(out), *small]) == 0
    first_edges = Path(f"{out}.edges.parquet").read_bytes()
    capsys.readouterr()
    assert main(["simulate", str(out), *small, "--seed", "9"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err and "--overwrite" in err
    assert Path(f"{out}.edges.parquet").read_bytes() == first_edges

    assert main(["simulate", str(out), *small, "--seed", "9", "--overwrite"]) == 0
    assert Path(f"{out}.edges.parquet").read_bytes() != first_edges
    assert open_atlas(out).names == ["sim00"]


def test_user_files_are_never_clobbered(tmp_path, capsys):
    user_dir = tmp_path / "mine"
    user_dir.mkdir()
    (user_dir / "notes.txt").write_text("keep me")
    assert main(["simulate", str(user_dir), "--overwrite", "--cells", "10"]) == 2
    assert "not an atlas" in capsys.readouterr().err
    assert (user_dir / "notes.txt").read_text() == "keep me"

    user_file = tmp_path / "edges.parquet"
    user_file.write_text("precious")
    assert main(["simulate", str(tmp_path / "y.zarr"), "--cells", "10",
                 "--edges-out", str(user_file)]) == 2
    assert "edges file already exists" in capsys.readouterr().err
    assert user_file.read_text() == "precious" and not (tmp_path / "y.zarr").exists()
