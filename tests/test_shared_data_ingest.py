"""Every real expression matrix of ../shared/data ingested into one atlas (integration), by
``scripts/shared_corpus.py`` (loaded from its path: it is a script beside the library)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pytest

from atlasgrn.atlas import open_atlas
from atlasgrn.atlas.symbols import normalize_symbols

from .conftest import load_script

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared" / "data"


shared_corpus = load_script("shared_corpus")


@pytest.fixture(scope="module")
def shared() -> Path:
    if not (SHARED / "corpus" / "MANIFEST.tsv").exists():
        pytest.skip(f"shared data not found at {SHARED.resolve()}")
    return SHARED


@pytest.fixture(scope="module")
def shared_atlas(shared, tmp_path_factory):
    out = tmp_path_factory.mktemp("shared") / "all.zarr"
    reports = shared_corpus.ingest_shared_corpus(shared, out, tfs=(500, 1000))
    return out, {r.info.name: r for r in reports}


def _table_shape(path: Path) -> tuple[int, int]:
    """(cells, genes) of a genes x cells table, counted independently of the ingest code."""
    import gzip
    with gzip.open(path, "rt") as fh:
        header = fh.readline().rstrip("\n")
        first = fh.readline().rstrip("\n")
        n_rows = 1 + sum(1 for line in fh if line.strip())
    sep = "\t" if "\t" in first else ","
    n_fields = len(first.split(sep))
    return n_fields - 1, n_rows


def _backed(path: Path, matrix: str):
    """(n_cells, var) of the matrix an input names, read by anndata itself (old formats too)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = ad.read_h5ad(path, backed="r")
    try:
        part = adata.raw if matrix == "raw" else adata
        return part.X.shape[0], part.var.copy()
    finally:
        adata.file.close()


def _h5ad_cells(path: Path, matrix: str) -> int:
    return _backed(path, matrix)[0]


def _named_unique_genes(path: Path, matrix: str) -> int:
    var = _backed(path, matrix)[1]
    names = var["gene_symbol"] if "gene_symbol" in var else var.index.to_series()
    names = normalize_symbols(names)
    return len(set(names[names != ""]))


@pytest.mark.shared_data
def test_every_shared_matrix_is_listed_with_its_shape_and_species(shared, shared_atlas):
    out, _ = shared_atlas
    inputs = shared_corpus.shared_inputs(shared, tfs=(500, 1000))
    atlas = open_atlas(out)
    infos = {i.name: i for i in atlas.datasets()}
    assert set(infos) == {i.name for i in inputs}
    assert len([i for i in inputs if i.path.suffix == ".h5ad"]) == 35  # 34 corpus + scanpy
    assert {"beeline_hHEP_TFs500", "beeline_mDC_TFs500", "beeline_mESC_TFs500",
            "beeline_mHSC-GM_TFs500", "beeline_mHSC-L_TFs500", "mccalla_chen", "mccalla_liu",
            "mccalla_semrau", "scanpy_pbmc68k_reduced_raw"} <= set(infos)
    for item in inputs:
        info = infos[item.name]
        assert info.species == item.species, item.name
        assert info.value_kind == item.value_kind, item.name
        if item.path.suffix == ".h5ad":
            assert info.n_cells == _h5ad_cells(item.path, item.matrix), item.name
            assert info.n_genes == _named_unique_genes(item.path, item.matrix), item.name
        else:
            assert (info.n_cells, info.n_genes) == _table_shape(item.path), item.name


@pytest.mark.shared_data
def test_corpus_cell_counts_match_the_manifest(shared, shared_atlas):
    out, reports = shared_atlas
    infos = {i.name: i for i in open_atlas(out).datasets()}
    rows = shared_corpus.read_manifest(shared / "corpus" / "MANIFEST.tsv")
    assert len(rows) == 34
    for row in rows:
        name = Path(row["file"]).name.removesuffix(".h5ad")
        assert infos[name].n_cells == int(row["n_cells"]), name
        assert infos[name].species == row["species"], name
        dropped = reports[name].n_dropped_unnamed + reports[name].n_merged_duplicates
        assert infos[name].n_genes == int(row["n_genes"]) - dropped, name


@pytest.mark.shared_data
def test_known_sources_keep_their_documented_shapes(shared_atlas):
    out, _ = shared_atlas
    infos = {i.name: (i.n_cells, i.n_genes) for i in open_atlas(out).datasets()}
    assert infos["beeline_mESC_TFs500"] == (421, 1120)
    assert infos["beeline_mHSC-L_TFs1000"] == (847, 692)
    assert infos["mccalla_liu"] == (72, 23153)
    assert infos["mccalla_chen"] == (385, 8595)
    assert infos["scanpy_pbmc68k_reduced_raw"] == (700, 765)


@pytest.mark.shared_data
def test_shared_atlas_values_equal_the_source_matrix(shared, shared_atlas):
    out, _ = shared_atlas
    ds = open_atlas(out).dataset("paul_2660cells_3004genes")
    with h5py.File(shared / "corpus/paul2015_mouse_myeloid_tradeseq/"
                   "paul_2660cells_3004genes.h5ad", "r") as h5:
        src = h5["X"][:500]
    np.testing.assert_array_equal(ds.read_cells(0, 500, dense=True), src.astype(np.float32))
    assert "cell_type" in ds.obs.columns


@pytest.mark.shared_data
def test_demo_atlas_build_is_deterministic(shared, tmp_path):
    digests = []
    for i in range(2):
        out = tmp_path / f"demo{i}" / "demo_atlas.zarr"
        out.parent.mkdir()
        res = subprocess.run([sys.executable, str(REPO / "scripts" / "build_demo_atlas.py"),
                              "--shared-data", str(shared), "--out", str(out)],
                             capture_output=True, text=True, check=True)
        digests.append(res.stdout.split("sha256")[-1].strip())
    assert digests[0] == digests[1]
    bundled = REPO / "atlasgrn" / "data" / "demo_atlas.zarr"
    build_demo_atlas = load_script("build_demo_atlas")
    assert build_demo_atlas.digest(bundled) == digests[0]  # the shipped store is what it builds


def test_script_entry_ingests_a_shared_folder_layout(tmp_path, capsys):
    """The command-line entry of scripts/shared_corpus.py, on a tiny folder of the same layout
    (no real data needed)."""
    import gzip

    src = tmp_path / "shared" / "beeline_genelink" / "expression" / "mESC" / "TFs+500"
    src.mkdir(parents=True)
    with gzip.open(src / "BL--ExpressionData.csv.gz", "wt") as fh:
        fh.write(",c0,c1,c2\nSOX2,1.5,0,2.25\nNANOG,0,3.5,1\n")
    out = tmp_path / "a.zarr"
    assert shared_corpus.main([str(out), "--shared-data", str(tmp_path / "shared")]) == 0
    assert "beeline_mESC_TFs500: 3 cells x 2 genes, mouse, log2" in capsys.readouterr().out
    info = open_atlas(out).datasets()[0]
    assert (info.name, info.n_cells, info.n_genes) == ("beeline_mESC_TFs500", 3, 2)
    assert shared_corpus.main([str(out), "--shared-data", str(tmp_path / "shared")]) == 2
    assert "--overwrite" in capsys.readouterr().err
