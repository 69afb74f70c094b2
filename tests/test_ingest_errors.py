"""Bad input: one line on stderr naming the file, exit code 2, and nothing left in the atlas."""

from __future__ import annotations

import json
import os

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from atlasgrn.atlas import open_atlas
from atlasgrn.cli import main

GOOD = ",c0,c1,c2\nA,1,0,2\nB,0,3,1\n"


@pytest.fixture()
def atlas(tmp_path):
    """An atlas holding one good dataset, to check failures leave it untouched."""
    src = tmp_path / "good.csv"
    src.write_text(GOOD)
    out = tmp_path / "atlas.zarr"
    assert main(["ingest", str(out), "--dataset", f"good={src}", "--species", "human",
                 "--value-kind", "counts"]) == 0
    return out


def _snapshot(out):
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))


def _fails(capsys, args, name_in_error):
    capsys.readouterr()
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert name_in_error in lines[0], lines[0]
    return lines[0]


def _ingest_fails(capsys, atlas, tmp_path, src, *extra, name_in_error=None):
    """Run a failing ingest into the existing atlas and into a new one; check both are clean."""
    before = _snapshot(atlas)
    src = str(src)
    line = _fails(capsys, ["ingest", str(atlas), "--dataset", f"new={src}", *extra],
                  name_in_error or os.path.basename(src))
    assert _snapshot(atlas) == before
    assert open_atlas(atlas).names == ["good"]
    fresh = tmp_path / "fresh.zarr"
    _fails(capsys, ["ingest", str(fresh), "--dataset", f"new={src}", *extra],
           name_in_error or os.path.basename(src))
    assert not fresh.exists()
    return line


KINDS = ["--species", "human", "--value-kind", "log2"]


def test_missing_input_path(capsys, atlas, tmp_path):
    line = _ingest_fails(capsys, atlas, tmp_path, tmp_path / "nope.csv", *KINDS)
    assert "no such file" in line


def test_dataset_without_gene_names(capsys, atlas, tmp_path):
    src = tmp_path / "nonames.csv"
    src.write_text(",c0,c1\n,1,2\n ,3,4\n")
    assert "no gene names" in _ingest_fails(capsys, atlas, tmp_path, src, *KINDS)


def test_h5ad_whose_symbol_column_is_empty_has_no_gene_names(capsys, atlas, tmp_path):
    src = tmp_path / "empty_symbols.h5ad"
    ad.AnnData(X=np.ones((2, 2), dtype=np.float32),
               var=pd.DataFrame({"gene_symbol": ["", ""]}, index=["ENSG1", "ENSG2"])
               ).write_h5ad(src)
    assert "no gene names" in _ingest_fails(capsys, atlas, tmp_path, src, *KINDS)


def test_duplicate_gene_names_need_dedupe(capsys, atlas, tmp_path):
    src = tmp_path / "dups.csv"
    src.write_text(",c0,c1\nA,1,2\nB,3,4\nA,5,6\n")
    line = _ingest_fails(capsys, atlas, tmp_path, src, *KINDS)
    assert "duplicate gene name 'A'" in line and "--dedupe" in line
    assert main(["ingest", str(atlas), "--dataset", f"new={src}", "--dedupe", *KINDS]) == 0


@pytest.mark.parametrize("bad, word", [("nan", "NaN"), ("inf", "inf"), ("-1.5", "negative")])
def test_non_finite_or_negative_values_in_a_table(capsys, atlas, tmp_path, bad, word):
    src = tmp_path / f"bad_{word}.csv"
    src.write_text(f",c0,c1,c2\nA,1,0,2\nB,0,{bad},1\n")
    assert word in _ingest_fails(capsys, atlas, tmp_path, src, *KINDS)


def test_negative_values_in_an_h5ad_declared_counts(capsys, atlas, tmp_path):
    src = tmp_path / "scaled.h5ad"
    x = np.array([[1.0, -0.5], [0.2, 0.3]], dtype=np.float32)
    ad.AnnData(X=x, var=pd.DataFrame(index=["A", "B"])).write_h5ad(src)
    assert "negative" in _ingest_fails(capsys, atlas, tmp_path, src, "--species", "human",
                                       "--value-kind", "counts")


def test_empty_table_and_empty_h5ad(capsys, atlas, tmp_path):
    header_only = tmp_path / "header_only.csv"
    header_only.write_text(",c0,c1\n")
    assert "no data rows" in _ingest_fails(capsys, atlas, tmp_path, header_only, *KINDS)
    no_cells = tmp_path / "no_cells.h5ad"
    ad.AnnData(X=sp.csr_matrix((0, 2), dtype=np.float32),
               var=pd.DataFrame(index=["A", "B"])).write_h5ad(no_cells)
    assert "empty" in _ingest_fails(capsys, atlas, tmp_path, no_cells, *KINDS)


def test_ragged_table_rows(capsys, atlas, tmp_path):
    src = tmp_path / "ragged.csv"
    src.write_text(",c0,c1,c2\nA,1,0,2\nB,0,1\nC,1,1,1\n")
    line = _ingest_fails(capsys, atlas, tmp_path, src, *KINDS)
    assert "line 3" in line and "expected 4" in line


def test_table_that_is_not_utf8(capsys, atlas, tmp_path):
    src = tmp_path / "latin1.csv"
    src.write_bytes(",c0,c1\nA,1,2\nG\xe8ne,3,4\n".encode("latin-1"))
    line = _ingest_fails(capsys, atlas, tmp_path, src, *KINDS)
    assert "not UTF-8" in line and "line 3" in line


def test_truncated_h5ad(capsys, atlas, tmp_path):
    src = tmp_path / "truncated.h5ad"
    rng = np.random.default_rng(0)
    ad.AnnData(X=sp.random(200, 50, density=0.3, format="csr", dtype=np.float32, rng=rng),
               var=pd.DataFrame(index=[f"G{i}" for i in range(50)])).write_h5ad(src)
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _ingest_fails(capsys, atlas, tmp_path, src, *KINDS)


def test_unknown_input_format(capsys, atlas, tmp_path):
    src = tmp_path / "matrix.mtx"
    src.write_text("%%MatrixMarket\n")
    line = _ingest_fails(capsys, atlas, tmp_path, src, *KINDS)
    assert "unknown input format" in line
    # the remedy lists what the format registry reads
    assert ".h5ad" in line and ".csv[.gz]" in line and ".tsv[.gz]" in line


def test_compressed_h5ad_is_refused(capsys, atlas, tmp_path):
    src = tmp_path / "cells.h5ad.gz"
    src.write_bytes(b"\x1f\x8b")
    line = _ingest_fails(capsys, atlas, tmp_path, src, *KINDS)
    assert "compressed .h5ad files cannot be streamed" in line and "gunzip" in line


def test_options_of_another_format_are_refused(capsys, atlas, tmp_path):
    src = tmp_path / "t.csv"
    src.write_text(GOOD)
    line = _ingest_fails(capsys, atlas, tmp_path, src, *KINDS, "--matrix", "raw")
    assert "--gene-column/--matrix apply to h5ad files only" in line


def test_existing_dataset_name_needs_overwrite(capsys, atlas, tmp_path):
    src = tmp_path / "good2.csv"
    src.write_text(GOOD)
    before = _snapshot(atlas)
    line = _fails(capsys, ["ingest", str(atlas), "--dataset", f"good={src}", *KINDS], "good")
    assert "--overwrite" in line and _snapshot(atlas) == before


def test_ingest_into_a_directory_that_is_not_an_atlas(capsys, tmp_path):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "readme.txt").write_text("mine")
    src = tmp_path / "good.csv"
    src.write_text(GOOD)
    _fails(capsys, ["ingest", str(out), "--dataset", f"d={src}", *KINDS], "notes")
    assert sorted(p.name for p in out.iterdir()) == ["readme.txt"]


def _set_format(atlas, version):
    meta_path = atlas / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["atlasgrn"]["format"] = version
    meta_path.write_text(json.dumps(meta))


def test_atlas_of_unknown_format_version_is_refused_by_ingest_and_info(capsys, atlas, tmp_path):
    _set_format(atlas, 99)
    before = _snapshot(atlas)
    src = tmp_path / "good2.csv"
    src.write_text(GOOD)
    line = _fails(capsys, ["ingest", str(atlas), "--dataset", f"new={src}", *KINDS], "atlas.zarr")
    assert "version 99" in line
    assert _snapshot(atlas) == before
    assert "version 99" in _fails(capsys, ["info", str(atlas)], "atlas.zarr")


def test_info_on_something_that_is_not_a_zarr_store(capsys, tmp_path):
    f = tmp_path / "file.csv"
    f.write_text(GOOD)
    assert "not a Zarr store" in _fails(capsys, ["info", str(f)], "file.csv")
    d = tmp_path / "plain_dir"
    d.mkdir()
    _fails(capsys, ["info", str(d)], "plain_dir")
    _fails(capsys, ["info", str(tmp_path / "absent.zarr")], "absent.zarr")
