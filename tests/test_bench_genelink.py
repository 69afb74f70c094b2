"""GENELink layout discovery and loading, on a toy tree and on the real BEELINE copy."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from atlasgrn.bench import discover, find_set, load_network_set, plan_transfers
from atlasgrn.errors import AtlasgrnError
from tests.bench_toy import build_toy_tree, toy_genes, write_expression, write_set


def test_discover_finds_every_set_without_assuming_names(tmp_path):
    sets = discover(build_toy_tree(tmp_path))
    keys = [s.key for s in sets]
    assert keys == ["Custom-Net/hESC/TFs+500", "Custom-Net/mDC/TFs+500", "Custom-Net/mESC/TFs+500",
                    "Lofgof/mESC/TFs+500", "STRING/hESC/TFs+500", "STRING/mDC/TFs+500",
                    "STRING/mESC/TFs+500"]
    s = find_set(sets, "Custom-Net", "mDC", 500)
    assert s.genes == tuple(toy_genes(100)) and s.tfs == tuple(toy_genes(20))
    assert s.n_edges == 110 and set(s.sources) <= set(s.tfs)


def test_edges_are_symbol_pairs_in_file_order(tmp_path):
    folder = write_set(tmp_path, "Net", "X", 500, ["A", "B", "C", "D"], ["A", "B"],
                       [("B", "D"), ("A", "C"), ("A", "B")], gz=False)
    s = load_network_set(folder)
    assert (s.network, s.dataset, s.size) == ("Net", "X", 500)
    assert list(zip(s.sources, s.targets)) == [("B", "D"), ("A", "C"), ("A", "B")]
    assert not s.has_expression


def test_expression_is_cells_by_genes_in_target_order(tmp_path):
    build_toy_tree(tmp_path)
    s = find_set(discover(tmp_path), "STRING", "mDC", 500)
    e = s.load_expression()
    raw = pd.read_csv(s.expression_path, index_col=0)
    assert e.values.dtype == np.float32 and e.values.shape == (30, 100)
    assert e.genes == s.genes
    np.testing.assert_allclose(e.values[:, 7], raw.loc["G7"].to_numpy(), rtol=1e-6)
    assert e.frame().loc["G7"].shape == (30,)


def test_missing_expression_raises_one_line_error(tmp_path):
    build_toy_tree(tmp_path)
    s = find_set(discover(tmp_path), "STRING", "hESC", 500)
    assert not s.has_expression
    with pytest.raises(AtlasgrnError, match="no expression matrix") as err:
        s.load_expression()
    assert "expression/hESC/TFs+500" in str(err.value) and "\n" not in str(err.value)


def test_edge_outside_gene_set_is_rejected_naming_the_file(tmp_path):
    folder = write_set(tmp_path, "Net", "X", 500, ["A", "B", "C"], ["A"], [("A", "Z")])
    with pytest.raises(AtlasgrnError, match="outside Target.csv") as err:
        load_network_set(folder)
    assert "BL--network.csv.gz" in str(err.value) and "A->Z" in str(err.value)


def test_missing_file_and_missing_root_are_errors(tmp_path):
    folder = write_set(tmp_path, "Net", "X", 500, ["A", "B"], ["A"], [("A", "B")])
    (folder / "TF.csv.gz").unlink()
    with pytest.raises(AtlasgrnError, match="TF.csv"):
        discover(tmp_path)
    with pytest.raises(AtlasgrnError, match="no networks/ folder"):
        discover(tmp_path / "nowhere")


def test_expression_lacking_a_gene_is_rejected(tmp_path):
    write_set(tmp_path, "Net", "X", 500, ["A", "B", "C"], ["A"], [("A", "B")])
    write_expression(tmp_path, "X", 500, pd.DataFrame([[1.0, 2.0], [0.0, 1.0]],
                                                      index=["A", "B"], columns=["c1", "c2"]))
    s = discover(tmp_path)[0]
    with pytest.raises(AtlasgrnError, match="not rows of the matrix"):
        s.load_expression()


def test_plan_trains_on_hesc_and_falls_back_to_string(tmp_path):
    plans = {p.tests[0].network: p for p in plan_transfers(discover(build_toy_tree(tmp_path)))}
    assert plans["Lofgof"].train.key == "STRING/hESC/TFs+500"
    assert [t.key for t in plans["Lofgof"].tests] == ["Lofgof/mESC/TFs+500"]
    assert plans["Custom-Net"].train.key == "Custom-Net/hESC/TFs+500"
    assert [t.dataset for t in plans["STRING"].tests] == ["mDC", "mESC"]


# SOURCES.md §1 table: (network, dataset, size) -> (genes, TFs, edges) for sets present here.
SOURCES_COUNTS = {
    ("STRING", "hHEP", 500): (948, 448, 7523), ("STRING", "hESC", 500): (910, 410, 4257),
    ("Non-Specific", "hHEP", 1000): (1448, 448, 5351), ("STRING", "mDC", 1000): (1321, 321, 5898),
    ("Non-Specific", "mESC", 500): (1120, 620, 6893), ("Lofgof", "mESC", 1000): (1620, 620, 5742),
    ("STRING", "mHSC-L", 500): (560, 60, 137), ("Non-Specific", "mHSC-GM", 1000): (1132, 132, 1358),
    ("STRING", "mHSC-E", 500): (704, 204, 1371), ("Lofgof", "mESC", 500): (1120, 620, 4169),
}
WITH_EXPRESSION = {("hHEP", 500), ("hHEP", 1000), ("mDC", 500), ("mDC", 1000), ("mESC", 500),
                   ("mHSC-GM", 500), ("mHSC-L", 500), ("mHSC-L", 1000)}


@pytest.mark.shared_data
def test_real_beeline_genelink_counts_match_sources_table(shared_data):
    root = shared_data / "beeline_genelink"
    if not root.exists():
        pytest.skip(f"real data not available: {root} is absent")
    sets = discover(root)
    assert len(sets) == 30  # STRING + Non-Specific: 7 datasets x 2 sizes; Lofgof: mESC x 2
    for (net, ds, n), (genes, tfs, edges) in SOURCES_COUNTS.items():
        s = find_set(sets, net, ds, n)
        assert (len(s.genes), len(s.tfs), s.n_edges) == (genes, tfs, edges), s.key
    for s in sets:
        assert s.has_expression == ((s.dataset, s.size) in WITH_EXPRESSION), s.key
        with gzip.open(s.folder / "BL--network.csv.gz", "rt") as fh:
            assert sum(1 for _ in fh) - 1 == s.n_edges
    hhep = find_set(sets, "STRING", "hHEP", 500).load_expression()
    assert hhep.values.shape == (425, 948) and hhep.values.min() >= 0
