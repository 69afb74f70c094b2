"""The Ray Data consensus (atlasgrn.engine.consensus) against an independent pandas groupby of
the same edges, its byte-stability across reruns and part sizes, and the removal of stale parts.

The edges are synthetic: three datasets, one of them with a network per cell type
(``context=`` directories), scores rounded to two decimals so that ties within a regulator are
common and the tie rule (target ascending) matters, and a temporary file of a killed writer that
must not be read."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from atlasgrn.engine.consensus import CONSENSUS_SCHEMA
from atlasgrn.engine.consensus import write_consensus as write_consensus_ray
from atlasgrn.engine.output import RunOutput, edges_table

TOP_K = 5
NETWORKS = (("alpha", None), ("beta", None), ("gamma", "B cell"), ("gamma", "T_cell"))


def _write_edges(run: RunOutput) -> pd.DataFrame:
    """Edge files in the run layout, 2 source blocks x 2 target blocks per network; returns
    every edge with its network label (what the consensus must read, and nothing else)."""
    rng = np.random.default_rng(7)
    sources = np.array([f"G{i:05d}" for i in range(1, 31)])
    targets = np.array([f"G{i:05d}" for i in range(1, 121)])
    frames = []
    for dataset, context in NETWORKS:
        src, tgt = (a.ravel() for a in np.meshgrid(sources, targets, indexing="ij"))
        keep = (rng.random(len(src)) < 0.6) & (src != tgt)
        src, tgt = src[keep], tgt[keep]
        score = np.round(rng.random(len(src)), 2).astype(np.float32)
        parts = ["edges", f"dataset={dataset}"] + ([f"context={context}"] if context else [])
        for sb, s_half in enumerate((src < "G00016", src >= "G00016")):
            for tb, t_half in enumerate((tgt < "G00061", tgt >= "G00061")):
                m = s_half & t_half
                table = edges_table(src[m], tgt[m], score[m], {"gdt": score[m]})
                run.write_table_atomic(run.path(*parts, f"{dataset}__{sb:05d}_{tb:05d}.parquet"),
                                       table)
        label = dataset if context is None else f"{dataset}/{context}"
        frames.append(pd.DataFrame({"network": label, "source": src, "target": tgt,
                                    "score": score}))
    # a killed writer's temporary file: valid Parquet, absurd scores, a source no network has
    junk = edges_table(np.array(["G99999"]), np.array(["G00001"]), np.array([100.0]), {})
    with run.fs.open(run.path("edges", "dataset=alpha",
                              ".alpha__00000_00000.parquet.tmp-deadbeef"), "wb") as fh:
        pq.write_table(junk, fh)
    return pd.concat(frames, ignore_index=True)


def _expected(edges: pd.DataFrame, top_k: int) -> pd.DataFrame:
    ranked = edges.sort_values(["network", "source", "score", "target"],
                               ascending=[True, True, False, True])
    ranked["rank"] = ranked.groupby(["network", "source"]).cumcount() + 1
    ranked["top"] = np.where(ranked["rank"] <= top_k, ranked["network"], None)
    grouped = ranked.groupby(["source", "target"], sort=True)
    return pd.DataFrame({
        "score_mean": grouped["score"].agg(lambda s: np.mean(s.to_numpy(np.float64))),
        "score_max": grouped["score"].max(),
        "n_datasets": grouped["score"].size(),
        "top_k_networks": grouped["top"].agg(lambda t: ",".join(sorted(t.dropna()))),
    }).reset_index()


def _parts(run: RunOutput) -> dict[str, bytes]:
    return {name: open(run.path("consensus", name), "rb").read()
            for name in run.listdir("consensus") if name.startswith("part-")}


def _read(run: RunOutput, schema: pa.Schema = CONSENSUS_SCHEMA) -> pd.DataFrame:
    tables = [pq.read_table(run.path("consensus", name)) for name in sorted(_parts(run))]
    assert all(t.schema.equals(schema) for t in tables)
    return pa.concat_tables(tables).to_pandas()


def test_consensus_matches_pandas_and_is_byte_stable(ray_session, tmp_path):
    run = RunOutput(str(tmp_path / "run"))
    edges = _write_edges(run)
    expected = _expected(edges, TOP_K)
    n_small = write_consensus_ray(run, top_k=TOP_K, rows_per_part=2_000)
    small = _parts(run)
    assert len(small) >= 4, "rows_per_part should have forced several parts"
    got = _read(run)
    assert n_small == len(got) == len(expected)
    # parts are contiguous ranges of regulators, each sorted: the whole is sorted
    assert got[["source", "target"]].equals(expected[["source", "target"]])
    np.testing.assert_array_equal(got["n_datasets"], expected["n_datasets"])
    assert (got["top_k_networks"] == expected["top_k_networks"]).all()
    np.testing.assert_array_equal(got["score_max"], expected["score_max"].astype(np.float32))
    np.testing.assert_allclose(got["score_mean"], expected["score_mean"].astype(np.float32),
                               rtol=1e-6, atol=0)
    # the checks above are not vacuous: ties, partial top-k sets and the context networks occur
    assert set(got["n_datasets"]) == {1, 2, 3, 4}
    assert (got["top_k_networks"] == "").any() and got["top_k_networks"].str.contains(",").any()
    assert got["top_k_networks"].str.contains("gamma/B cell").any()
    assert "G99999" not in set(got["source"])  # the temporary file was not read

    # a rerun writes the same bytes, whatever order Ray delivered the rows in
    assert write_consensus_ray(run, top_k=TOP_K, rows_per_part=2_000) == n_small
    assert _parts(run) == small

    # one large part (small enough to aggregate on the driver): same rows; the earlier, finer
    # layout's parts are gone, other files stay
    run.write_text_atomic(run.path("consensus", "README.txt"), "not a part\n")
    assert write_consensus_ray(run, top_k=TOP_K) == n_small
    assert sorted(_parts(run)) == ["part-00000.parquet"]
    assert "README.txt" in run.listdir("consensus")
    pd.testing.assert_frame_equal(_read(run), got)
    # the same single part through the Ray pipeline: the same bytes
    local = _parts(run)
    assert write_consensus_ray(run, top_k=TOP_K, local_max_rows=0) == n_small
    assert _parts(run) == local


def test_consensus_rejects_bad_arguments_and_strays(ray_session, tmp_path):
    from atlasgrn.errors import AtlasgrnError

    run = RunOutput(str(tmp_path / "run"))
    with pytest.raises(AtlasgrnError, match="top_k"):
        write_consensus_ray(run, top_k=-1)
    assert write_consensus_ray(run) == 0  # no edges yet: nothing to write
    run.write_text_atomic(run.path("edges", "dataset=a", "x", "y.parquet"), "")
    with pytest.raises(AtlasgrnError, match="unexpected file"):
        write_consensus_ray(run)
