"""Reading a build: edge queries with pushdown, and the exports (GraphML, adjacency TSV, GMT,
h5ad) checked by the tools users open them with."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest

from atlasgrn.cli import main


def _edges_frame(run) -> pd.DataFrame:
    df = pads.dataset(str(run / "edges"), format="parquet", partitioning="hive").to_table()
    df = df.to_pandas()
    df["dataset"] = df["dataset"].astype(str)
    return df


def _consensus(run) -> pd.DataFrame:
    return pads.dataset(str(run / "consensus"), format="parquet").to_table().to_pandas()


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err.strip()


# ------------------------------------------------------------------------------ edges
def test_edges_of_a_regulator_equal_a_pandas_filter_of_the_whole_table(demo_run, capsys):
    full = _edges_frame(demo_run)
    regulator = sorted(full["source"].unique())[0]
    rc, out, _ = _cli(capsys, "edges", str(demo_run), "--regulator", regulator, "--json")
    got = pd.DataFrame(json.loads(out))
    want = full[full["source"] == regulator]
    assert rc == 0 and len(got) == len(want) > 0
    key = ["dataset", "source", "target"]
    merged = got.merge(want, on=key, suffixes=("", "_want"))
    assert len(merged) == len(want)
    assert (merged["score"] - merged["score_want"]).abs().max() < 1e-6
    assert got["score"].is_monotonic_decreasing  # strongest first


def test_edges_filters_combine_and_top_keeps_the_strongest(demo_run, capsys):
    full = _edges_frame(demo_run)
    ds = sorted(full["dataset"].unique())[0]
    rc, out, _ = _cli(capsys, "edges", str(demo_run), "--dataset", ds, "--top", "5", "--json")
    got = pd.DataFrame(json.loads(out))
    want = full[full["dataset"] == ds].nlargest(5, "score")
    assert rc == 0 and (got["dataset"] == ds).all()
    np.testing.assert_allclose(got["score"], want["score"].astype(float), rtol=1e-6)
    rc, out, _ = _cli(capsys, "edges", str(demo_run), "--top", "3", "--json")
    top = pd.DataFrame(json.loads(out))
    np.testing.assert_allclose(top["score"], full.nlargest(3, "score")["score"].astype(float),
                               rtol=1e-6)


def test_a_mouse_cased_regulator_is_found_by_its_vocabulary_symbol(demo_run, capsys):
    regulator = sorted(_edges_frame(demo_run)["source"].unique())[0]
    rc, out, _ = _cli(capsys, "edges", str(demo_run), "--regulator", regulator.capitalize(),
                      "--json")
    assert rc == 0 and len(json.loads(out)) > 0


@pytest.mark.parametrize("argv,needle", [
    (["--regulator", "NOSUCHGENE"], "regulator 'NOSUCHGENE' is not a source"),
    (["--dataset", "nosuch"], "dataset 'nosuch' is not in this run"),
    (["--top", "0"], "--top 0 is out of range")])
def test_bad_queries_are_one_line(demo_run, capsys, argv, needle):
    rc, _, err = _cli(capsys, "edges", str(demo_run), *argv)
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err


def test_not_a_run_and_a_partial_run_are_refused(demo_run, tmp_path, capsys):
    rc, _, err = _cli(capsys, "edges", str(tmp_path))
    assert rc == 2 and "not a run directory" in err
    partial = tmp_path / "partial"
    shutil.copytree(demo_run, partial)
    (partial / "_SUCCESS").unlink()
    rc, _, err = _cli(capsys, "edges", str(partial))
    assert rc == 2 and "partial" in err and "--partial" in err
    rc, out, err = _cli(capsys, "edges", str(partial), "--partial", "--top", "2")
    assert rc == 0 and "partial run" in err


# ------------------------------------------------------------------------------ exports
def test_graphml_loads_in_networkx_with_the_right_counts(demo_run, tmp_path, capsys):
    import networkx as nx

    path = tmp_path / "net.graphml"
    rc, out, _ = _cli(capsys, "export", str(demo_run), "--format", "graphml", "--top", "0",
                      "--out", str(path))
    cons = _consensus(demo_run)
    graph = nx.read_graphml(path)
    assert rc == 0 and graph.is_directed()
    assert graph.number_of_edges() == len(cons)
    assert graph.number_of_nodes() == len(set(cons["source"]) | set(cons["target"]))
    s, t = cons.iloc[0]["source"], cons.iloc[0]["target"]
    assert graph.edges[s, t]["score"] == pytest.approx(float(cons.iloc[0]["score_mean"]),
                                                        rel=1e-6)
    assert graph.nodes[s]["regulator"] is True


def test_adjacency_reads_with_pandas_as_pyscenic_lays_it_out(demo_run, tmp_path, capsys):
    path = tmp_path / "adj.tsv"
    rc, _, _ = _cli(capsys, "export", str(demo_run), "--format", "adjacency", "--top", "100",
                    "--out", str(path))
    adj = pd.read_csv(path, sep="\t")
    cons = _consensus(demo_run)
    assert rc == 0 and list(adj.columns) == ["TF", "target", "importance"] and len(adj) == 100
    assert adj["importance"].is_monotonic_decreasing
    assert adj["importance"].iloc[0] == pytest.approx(cons["score_mean"].max(), rel=1e-6)


def test_gmt_regulons_parse_one_per_regulator_and_dataset(demo_run, tmp_path, capsys):
    path = tmp_path / "regulons.gmt"
    rc, _, _ = _cli(capsys, "export", str(demo_run), "--format", "gmt", "--top", "50",
                    "--out", str(path))
    full = _edges_frame(demo_run)
    lines = path.read_text().splitlines()
    names = {ln.split("\t")[0] for ln in lines}
    assert rc == 0 and all(len(ln.split("\t")) >= 3 for ln in lines)
    for ds, part in full.groupby("dataset"):
        top = part.nlargest(50, "score")
        assert {f"{tf}__{ds}" for tf in top["source"].unique()} <= names


def test_h5ad_holds_the_network_in_varp(demo_run, tmp_path, capsys):
    import anndata as ad

    path = tmp_path / "net.h5ad"
    full = _edges_frame(demo_run)
    ds = sorted(full["dataset"].unique())[0]
    rc, _, _ = _cli(capsys, "export", str(demo_run), "--format", "h5ad", "--dataset", ds,
                    "--top", "0", "--out", str(path))
    adata = ad.read_h5ad(path)
    part = full[full["dataset"] == ds]
    net = adata.varp["network"]
    assert rc == 0 and net.shape == (adata.n_vars, adata.n_vars) and net.nnz == len(part)
    idx = {g: i for i, g in enumerate(adata.var_names)}
    row = part.iloc[0]
    assert net[idx[row["source"]], idx[row["target"]]] == pytest.approx(row["score"], rel=1e-6)
    assert adata.uns["atlasgrn"]["dataset"] == ds


def test_an_existing_export_needs_overwrite_and_an_unwritable_one_is_refused(demo_run,
                                                                             tmp_path, capsys):
    path = tmp_path / "adj.tsv"
    path.write_text("mine")
    rc, _, err = _cli(capsys, "export", str(demo_run), "--format", "adjacency", "--out",
                      str(path))
    assert rc == 2 and "the file exists" in err and path.read_text() == "mine"
    rc, _, _ = _cli(capsys, "export", str(demo_run), "--format", "adjacency", "--out",
                    str(path), "--overwrite")
    assert rc == 0 and path.read_text().startswith("TF\ttarget\timportance")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    rc, _, err = _cli(capsys, "export", str(demo_run), "--format", "adjacency", "--out",
                      str(blocker / "adj.tsv"))
    assert rc == 2 and "cannot write into" in err
