"""``atlasgrn info``: the dataset table, JSON output, and the bundled demo atlas."""

from __future__ import annotations

import json

import numpy as np
import pytest

from atlasgrn.atlas import open_atlas
from atlasgrn.atlas.bundled import demo_atlas_path
from atlasgrn.cli import main
from atlasgrn.commands.info import human_bytes


@pytest.mark.parametrize("n, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"),
                                     (5 * 1024 ** 3, "5.0 GiB")])
def test_human_bytes_uses_binary_units(n, text):
    assert human_bytes(n) == text


@pytest.fixture()
def two_datasets(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text(",c0,c1,c2\nA,1,0,2\nB,0,3,1\n")
    b = tmp_path / "b.csv"
    b.write_text(",c0,c1\nSox2,0.5,1.5\n")
    out = tmp_path / "atlas.zarr"
    assert main(["ingest", str(out), "--dataset", f"first={a}:species=human,value_kind=counts",
                 "--dataset", f"second={b}:species=mouse,value_kind=log1p"]) == 0
    return out


def test_info_prints_one_row_per_dataset_with_shape_species_kind_and_size(two_datasets, capsys):
    capsys.readouterr()
    assert main(["info", str(two_datasets)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "format 1" in out[0] and "2 datasets" in out[0] and "5 cells" in out[0]
    assert out[1].split() == ["name", "cells", "genes", "species", "value_kind", "source"]
    assert out[2].split()[:5] == ["first", "3", "2", "human", "counts"]
    assert out[3].split()[:5] == ["second", "2", "1", "mouse", "log1p"]


def test_info_json_matches_open_atlas(two_datasets, capsys):
    capsys.readouterr()
    assert main(["info", str(two_datasets), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    atlas = open_atlas(two_datasets)
    assert data["format"] == 1 and data["storage_bytes"] == atlas.storage_bytes() > 0
    assert [(d["name"], d["n_cells"], d["n_genes"]) for d in data["datasets"]] == [
        ("first", 3, 2), ("second", 2, 1)]


def test_bundled_demo_atlas_holds_three_beeline_datasets_under_10_mb(capsys):
    path = demo_atlas_path()
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    assert size <= 10 * 1024 * 1024
    atlas = open_atlas(path, writable=False)
    shapes = {i.name: (i.n_cells, i.n_genes, i.species, i.value_kind) for i in atlas.datasets()}
    assert shapes == {"mESC": (421, 1120, "mouse", "log2"), "mDC": (383, 821, "mouse", "log2"),
                      "hHEP": (425, 948, "human", "log2")}
    mesc = atlas.dataset("mESC")
    x = mesc.read_cells(0, 421, dense=True)
    assert x.min() >= 0 and 11.4 < x.max() < 11.5  # BEELINE mESC values as distributed
    assert mesc.genes[:2].tolist() == ["BMI1", "ARNT2"]
    assert np.isclose(x[0, 0], 0.74646069, atol=1e-6)  # first value of the source CSV
    assert main(["info", str(path)]) == 0
