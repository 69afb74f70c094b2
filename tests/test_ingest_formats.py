"""Ingest of CSV/TSV tables and h5ad files: shapes, values, genes and obs survive exactly."""

from __future__ import annotations

import gzip

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from atlasgrn.atlas import open_atlas
from atlasgrn.atlas.ingest import FORMATS, ingest_file
from atlasgrn.atlas.ingest import table as table_mod
from atlasgrn.atlas.ingest.formats import InputFormat, register_format
from atlasgrn.atlas.ingest.h5ad import open_h5ad
from atlasgrn.cli import main


def _matrix(n_cells=7, n_genes=5, seed=0, integer=False):
    rng = np.random.default_rng(seed)
    x = rng.gamma(0.6, 2.0, size=(n_cells, n_genes))
    x[rng.random(x.shape) < 0.5] = 0
    return np.round(x) if integer else np.round(x, 4)


def _write_genes_by_cells(path, x, genes, cells, sep=",", r_style=False, compress=False):
    head = sep.join(cells) if r_style else sep.join([""] + list(cells))
    rows = [sep.join([g] + [repr(float(v)) for v in x[:, j]]) for j, g in enumerate(genes)]
    text = "\n".join([head, *rows]) + "\n"
    if compress:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def _dense(atlas, name):
    ds = open_atlas(atlas).dataset(name)
    return ds.read_cells(0, ds.info.n_cells, dense=True)


@pytest.mark.parametrize("sep, suffix, r_style, compress", [
    (",", ".csv.gz", False, True),   # BEELINE layout
    ("\t", ".tsv.gz", True, True),   # McCalla layout: header one field short
    ("\t", ".txt", False, False),    # delimiter sniffed from the header
])
def test_genes_by_cells_table_round_trips_values_genes_and_cells(tmp_path, sep, suffix, r_style,
                                                                 compress):
    x = _matrix()
    genes = [f"G{j}" for j in range(x.shape[1])]
    cells = [f"c{i}" for i in range(x.shape[0])]
    src = tmp_path / f"expr{suffix}"
    _write_genes_by_cells(src, x, genes, cells, sep=sep, r_style=r_style, compress=compress)
    rep = ingest_file(tmp_path / "a.zarr", "d", src, species="human", value_kind="log2")
    assert (rep.info.n_cells, rep.info.n_genes) == x.shape
    ds = open_atlas(tmp_path / "a.zarr").dataset("d")
    assert ds.genes.tolist() == genes
    assert ds.obs.index.tolist() == cells
    np.testing.assert_allclose(ds.read_cells(0, ds.info.n_cells, dense=True), x, rtol=1e-6)


def test_genes_by_cells_table_read_in_many_chunks_gives_the_same_matrix(tmp_path, monkeypatch):
    x = _matrix(n_cells=9, n_genes=23, seed=3)
    src = tmp_path / "e.csv"
    _write_genes_by_cells(src, x, [f"G{j}" for j in range(23)], [f"c{i}" for i in range(9)])
    monkeypatch.setattr(table_mod, "CHUNK_VALUES", 25)  # 2 gene rows per chunk
    ingest_file(tmp_path / "a.zarr", "d", src, species="human", value_kind="log1p")
    np.testing.assert_allclose(_dense(tmp_path / "a.zarr", "d"), x, rtol=1e-6)


def test_cells_by_genes_table_streams_cells_in_blocks(tmp_path, monkeypatch):
    x = _matrix(n_cells=11, n_genes=4, seed=1, integer=True)
    frame = pd.DataFrame(x, index=[f"c{i}" for i in range(11)], columns=list("ABCD"))
    src = tmp_path / "cells.csv"
    frame.to_csv(src)
    monkeypatch.setattr(table_mod, "CHUNK_VALUES", 10)
    rep = ingest_file(tmp_path / "a.zarr", "d", src, cells_by_genes=True, species="human",
                      block_cells=3)
    assert rep.info.value_kind == "counts" and rep.value_kind_inferred
    ds = open_atlas(tmp_path / "a.zarr").dataset("d")
    assert ds.genes.tolist() == list("ABCD") and ds.obs.index.tolist() == list(frame.index)
    np.testing.assert_array_equal(ds.read_cells(0, ds.info.n_cells, dense=True), x)


def _write_h5ad(path, x, var, obs=None, sparse=True):
    adata = ad.AnnData(X=sp.csr_matrix(x) if sparse else x, var=var,
                       obs=obs if obs is not None else pd.DataFrame(
                           index=[f"cell{i}" for i in range(x.shape[0])]))
    adata.write_h5ad(path)


def test_h5ad_with_ensembl_var_names_uses_symbol_column_and_drops_unnamed(tmp_path):
    x = _matrix(n_cells=6, n_genes=5, integer=True).astype(np.int32)
    var = pd.DataFrame({"gene_symbol": ["TP53", "", "GATA1", "SOX2", ""]},
                       index=[f"ENSG0000000000{j}.{j + 1}" for j in range(5)])
    obs = pd.DataFrame({"cell_type": pd.Categorical(list("aabbcc")),
                        "barcode": [f"bc{i}" for i in range(6)],
                        "n_counts": np.arange(6, dtype=np.float32)},
                       index=[f"cell{i}" for i in range(6)])
    src = tmp_path / "ens.h5ad"
    _write_h5ad(src, x, var, obs)
    rep = ingest_file(tmp_path / "a.zarr", "d", src, species="human")
    assert rep.n_dropped_unnamed == 2
    assert any("2 genes without a name were dropped" in w for w in rep.warnings)
    ds = open_atlas(tmp_path / "a.zarr").dataset("d")
    assert ds.genes.tolist() == ["TP53", "GATA1", "SOX2"]
    var_stored = ad.io.read_elem(ds._group["var"])
    assert var_stored["source_id"].tolist() == ["ENSG00000000000.1", "ENSG00000000002.3",
                                                "ENSG00000000003.4"]
    np.testing.assert_array_equal(ds.read_cells(0, ds.info.n_cells, dense=True), x[:, [0, 2, 3]])
    assert list(ds.obs.columns) == ["cell_type", "n_counts"]  # one-per-cell barcode dropped
    assert ds.obs["cell_type"].astype(str).tolist() == list("aabbcc")


def test_h5ad_gene_column_option_picks_an_explicit_var_column(tmp_path):
    x = _matrix(n_cells=4, n_genes=3)
    var = pd.DataFrame({"name": ["A", "B", "C"]}, index=["1", "2", "3"])
    src = tmp_path / "g.h5ad"
    _write_h5ad(src, x, var, sparse=False)
    ingest_file(tmp_path / "a.zarr", "d", src, species="human", value_kind="log1p",
                gene_column="name")
    assert open_atlas(tmp_path / "a.zarr").dataset("d").genes.tolist() == ["A", "B", "C"]


def _rechunk_by_columns(path, chunk_cols):
    with h5py.File(path, "r+") as h5:
        x = h5["X"][...]
        attrs = dict(h5["X"].attrs)
        del h5["X"]
        ds = h5.create_dataset("X", data=x, chunks=(x.shape[0], chunk_cols), compression="gzip")
        ds.attrs.update(attrs)


def test_column_chunked_dense_h5ad_is_read_by_column_slabs_with_identical_values(tmp_path,
                                                                                  monkeypatch):
    x = _matrix(n_cells=50, n_genes=40, seed=5).astype(np.float32)
    var = pd.DataFrame(index=[f"G{j}" for j in range(40)])
    rows, cols = tmp_path / "rows.h5ad", tmp_path / "cols.h5ad"
    _write_h5ad(rows, x, var, sparse=False)
    _write_h5ad(cols, x, var, sparse=False)
    _rechunk_by_columns(cols, 4)
    monkeypatch.setattr("atlasgrn.atlas.ingest.h5ad.DENSE_BLOCK_BYTES", 50 * 4 * 8)
    for p, mode in ((rows, "rows"), (cols, "columns")):
        src = open_h5ad(str(p))
        assert src.sample.__self__.mode == mode  # the reader chose the storage-friendly order
        src.close()
    for name, p in (("rows", rows), ("cols", cols)):
        ingest_file(tmp_path / "a.zarr", name, p, species="human", value_kind="log1p",
                    block_cells=7)
    np.testing.assert_array_equal(_dense(tmp_path / "a.zarr", "rows"), x)
    np.testing.assert_array_equal(_dense(tmp_path / "a.zarr", "cols"), x)


def test_h5ad_raw_matrix_is_ingested_when_asked(tmp_path):
    x = _matrix(n_cells=5, n_genes=3, integer=True)
    adata = ad.AnnData(X=np.log1p(x) - 1.0, var=pd.DataFrame(index=list("ABC")))
    adata.raw = ad.AnnData(X=sp.csr_matrix(x), var=pd.DataFrame(index=list("ABC")))
    src = tmp_path / "raw.h5ad"
    adata.write_h5ad(src)
    rc = main(["ingest", str(tmp_path / "a.zarr"), "--dataset", f"d={src}:matrix=raw",
               "--species", "human"])
    assert rc == 0
    np.testing.assert_array_equal(_dense(tmp_path / "a.zarr", "d"), x)


def test_dedupe_sums_counts_and_sums_log2_values_on_the_linear_scale(tmp_path):
    x = np.array([[1.0, 2.0, 3.0], [0.0, 5.0, 0.0]])
    genes, cells = ["A", "B", "A"], ["c0", "c1"]
    src = tmp_path / "dup.csv"
    _write_genes_by_cells(src, x, genes, cells)
    ingest_file(tmp_path / "a.zarr", "counts", src, species="human", value_kind="counts",
                dedupe=True)
    np.testing.assert_allclose(_dense(tmp_path / "a.zarr", "counts"), [[4, 2], [0, 5]])
    rep = ingest_file(tmp_path / "a.zarr", "log2", src, species="human", value_kind="log2",
                      dedupe=True)
    assert rep.n_merged_duplicates == 1
    expected_a = np.log2((2 ** 1 - 1) + (2 ** 3 - 1) + 1)
    np.testing.assert_allclose(_dense(tmp_path / "a.zarr", "log2"), [[expected_a, 2], [0, 5]],
                               rtol=1e-6)


def test_cli_infers_species_and_value_kind_with_warnings(tmp_path, capsys):
    x = np.minimum(_matrix(n_cells=6, n_genes=4, seed=2), 9.0)
    src = tmp_path / "mouse.csv"
    _write_genes_by_cells(src, x, ["Sox2", "Nanog", "Pou5f1", "Gata1"],
                          [f"c{i}" for i in range(6)])
    assert main(["ingest", str(tmp_path / "a.zarr"), "--dataset", f"m={src}"]) == 0
    err = capsys.readouterr().err
    assert "species inferred as 'mouse'" in err and "value kind inferred as 'log1p'" in err
    assert "ingest m: cells 6/6 (100%)" in err and "\r" not in err  # progress, log-friendly
    info = open_atlas(tmp_path / "a.zarr").datasets()[0]
    assert (info.species, info.value_kind) == ("mouse", "log1p")


def test_cli_per_dataset_options_override_the_shared_ones(tmp_path):
    x = _matrix(n_cells=3, n_genes=2, seed=4)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _write_genes_by_cells(a, x, ["A", "B"], ["x", "y", "z"])
    _write_genes_by_cells(b, x, ["C", "D"], ["x", "y", "z"])
    rc = main(["ingest", str(tmp_path / "o.zarr"), "--species", "human", "--value-kind", "log2",
               "--dataset", f"one={a}", "--dataset", f"two={b}:species=mouse,value_kind=log1p"])
    assert rc == 0
    got = {i.name: (i.species, i.value_kind) for i in open_atlas(tmp_path / "o.zarr").datasets()}
    assert got == {"one": ("human", "log2"), "two": ("mouse", "log1p")}


def test_adding_a_dataset_leaves_existing_ones_byte_identical(tmp_path):
    x = _matrix()
    src = tmp_path / "e.csv"
    _write_genes_by_cells(src, x, [f"G{j}" for j in range(5)], [f"c{i}" for i in range(7)])
    atlas = tmp_path / "a.zarr"
    ingest_file(atlas, "first", src, species="human", value_kind="log2")
    before = {p: p.read_bytes() for p in (atlas / "datasets" / "first").rglob("*") if p.is_file()}
    ingest_file(atlas, "second", src, species="human", value_kind="log2")
    after = {p: p.read_bytes() for p in (atlas / "datasets" / "first").rglob("*") if p.is_file()}
    assert before == after
    assert open_atlas(atlas).names == ["first", "second"]
    ingest_file(atlas, "first", src, species="mouse", value_kind="log2", overwrite=True)
    assert open_atlas(atlas).datasets()[0].species == "mouse"


def test_each_backend_registers_its_suffixes():
    assert {s: f.name for s, f in FORMATS.items()} == {
        ".h5ad": "h5ad", ".csv": "table", ".tsv": "table", ".tab": "table", ".txt": "table"}
    assert not FORMATS[".h5ad"].gzip and FORMATS[".csv"].gzip
    with pytest.raises(ValueError, match="already read by format 'table'"):
        register_format(InputFormat("other", (".csv",), FORMATS[".csv"].opener))


def test_a_registered_format_is_ingested_through_the_pipeline(tmp_path, monkeypatch):
    """Adding a format is registering an opener: the pipeline needs nothing else."""
    x, genes, cells = _matrix(), list("ABCDE"), [f"c{i}" for i in range(7)]
    src = tmp_path / "m.mine"
    _write_genes_by_cells(src, x, genes, cells)
    seen = []

    def opener(path, options):
        seen.append(options)
        return table_mod.open_table(path)

    monkeypatch.setitem(FORMATS, ".mine", InputFormat("mine", (".mine",), opener))
    ingest_file(tmp_path / "a.zarr", "d", src, species="human", value_kind="log1p",
                matrix="raw")
    assert seen[0].matrix == "raw"
    np.testing.assert_array_equal(_dense(tmp_path / "a.zarr", "d"), x.astype(np.float32))
