"""End-to-end: ``atlasgrn bench beeline`` on a tiny GENELink tree with a tiny random model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlasgrn.bench.config import BenchConfig
from atlasgrn.bench.metrics import RESULT_COLUMNS
from atlasgrn.bench.run import (
    Matrix,
    ens_stats_matrix,
    percentile,
    select_sets,
    subsample_tfs,
)
from atlasgrn.bench.splits import PairSet
from atlasgrn.cli import main
from atlasgrn.models import save_model
from atlasgrn.models.testing import tiny_model

from .bench_toy import random_network, write_expression, write_set

GENES = [f"G{i}" for i in range(36)]
TFS = GENES[:8]
SCFM = ["pert_origin", "attn_origin", "vvp", "gdt_uniform", "gdt_source", "emb", "emb_sum",
        "ens", "ens_stats"]
BASELINES = ["pearson", "spearman", "trees", "mi", "degree", "target_is_tf", "random"]


def small_tree(root: Path) -> Path:
    """STRING over hESC (no expression), mDC and mESC (expression); Lofgof for mESC."""
    for k, ds in enumerate(["hESC", "mDC", "mESC"]):
        write_set(root, "STRING", ds, 500, GENES, TFS, random_network(GENES, TFS, 40, seed=k))
        if ds != "hESC":
            rng = np.random.default_rng(k)
            write_expression(root, ds, 500, pd.DataFrame(
                rng.gamma(1.0, 2.0, size=(len(GENES), 24)), index=GENES,
                columns=[f"c{i}" for i in range(24)]))
    write_set(root, "Lofgof", "mESC", 500, GENES, TFS, random_network(GENES, TFS, 20, seed=9))
    return root


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("bench")
    root = small_tree(base / "data")
    model = tiny_model(0, GENES[:34], d_model=16, n_layers=1, d_ff=32)  # G34, G35 unknown
    # provenance says the model saw mDC's cells: the report must flag it
    model.config = dataclasses.replace(model.config, provenance={
        **model.config.provenance, "datasets": [{"name": "mDC", "n_cells": 24}]})
    save_model(model, base / "model")
    strict = tiny_model(1, GENES[:34], d_model=16, n_layers=1, d_ff=32)
    save_model(strict, base / "strict")
    return {"base": base, "data": root, "model": base / "model", "strict": base / "strict"}


def _bench(setup: dict[str, Path], out: str, *extra: str) -> int:
    return main(["bench", "beeline", "--data", str(setup["data"]), "--out",
                 str(setup["base"] / out), "--model", str(setup["model"]), "--seeds", "3",
                 "--cache", str(setup["base"] / "cache"), "--max-epochs", "15", "--trees", "5",
                 "--jobs", "1",  # tiny probes: one thread avoids oversubscription (7x faster)
                 *extra])


@pytest.fixture(scope="module")
def first_run(setup: dict[str, Path]) -> Path:
    assert _bench(setup, "out1", "--strict-model", str(setup["strict"]),
                  "--strict-dataset", "mESC") == 0
    return setup["base"] / "out1"


def test_results_parquet_has_the_long_schema_and_every_method(first_run: Path) -> None:
    res = pd.read_parquet(first_run / "results.parquet")
    assert tuple(res.columns) == RESULT_COLUMNS
    assert set(res.protocol) == {"A", "B", "C", "M"}
    for proto, metrics in {"A": {"auprc", "auroc"}, "M": {"auprc", "auroc"},
                           "C": {"auprc", "auroc", "auprc_ratio", "epr"}}.items():
        assert set(res[res.protocol == proto].metric) == metrics
    assert sorted(res.seed.unique()) == [0, 1, 2]
    main_methods = {m for m in res.method if "@" not in m}
    assert set(SCFM + BASELINES) <= main_methods
    assert "pert" not in main_methods  # hESC has no expression: no Pert translator
    # Lofgof is tested on mESC with the hESC STRING translator (the fallback)
    assert set(res[res.network == "Lofgof"].dataset) == {"mESC"}
    a = res[(res.protocol == "A") & res.metric.isin(["auprc", "auroc"])]
    assert a.value.between(0, 1).all()
    # the random baseline sits near chance on balanced sets, the label shortcut does not break
    assert abs(a[(a.method == "random") & (a.metric == "auroc")].value.mean() - 0.5) < 0.2


def test_strict_variant_scores_only_the_strict_dataset(first_run: Path) -> None:
    res = pd.read_parquet(first_run / "results.parquet")
    strict = res[res.method.str.endswith("@strict")]
    assert set(strict.dataset) == {"mESC"}
    assert {"vvp@strict", "ens@strict", "attn_origin@strict"} <= set(strict.method)
    # a different model gives different scores
    key = ["network", "dataset", "protocol", "metric", "seed"]
    both = strict[strict.method == "gdt_uniform@strict"].merge(
        res[res.method == "gdt_uniform"], on=key)
    assert not np.allclose(both.value_x, both.value_y)


def test_report_has_table1_leakage_curves_and_command(first_run: Path) -> None:
    report = (first_run / "report.md").read_text()
    assert "## Table 1" in report and "| STRING / mDC (TFs+500) |" in report
    assert "[0.917]" in report  # paper's GDT for STRING/mDC beside ours
    assert "- mDC: **cells seen in pre-training**" in report
    assert "- mESC: unseen" in report
    assert "Strict variant" in report
    assert "atlasgrn bench beeline" in report and "torch" in report
    assert list(first_run.glob("pr_*.png"))
    manifest = json.loads((first_run / "manifest.json").read_text())
    assert manifest["model"]["seen_datasets"] == ["mDC"]
    # unknown genes (G34, G35) are counted, not silently dropped
    cov = manifest["coverage"]["test/STRING/mDC/TFs+500"]
    assert 0.5 < cov < 1.0


def test_rerun_hits_the_feature_cache_and_reproduces_results(setup: dict[str, Path],
                                                              first_run: Path) -> None:
    assert _bench(setup, "out2") == 0
    manifest = json.loads((setup["base"] / "out2" / "manifest.json").read_text())
    assert manifest["cache"]["misses"] == [] and manifest["cache"]["hits"]
    a = pd.read_parquet(first_run / "results.parquet")
    b = pd.read_parquet(setup["base"] / "out2" / "results.parquet")
    a = a[~a.method.str.endswith("@strict")].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("args, key", [
    (["--network", "Nope"], "--network"),
    (["--strict-model", "x"], "--strict-dataset"),
    (["--methods", "vvp,magic"], "--methods"),
])
def test_bad_input_is_one_line_and_exit_2(setup: dict[str, Path], args: list[str], key: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert _bench(setup, "bad", *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and key in err


def test_missing_data_root_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "beeline", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "networks" in capsys.readouterr().err


def test_uncovered_pairs_get_the_lowest_score() -> None:
    m = Matrix(("A",), ("X", "Y"), np.array([[0.3, 0.9]]), fallback=-1.0)
    ps = PairSet(sources=["A", "A", "B"], targets=["Y", "Z", "X"], labels=[1, 0, 0],
                 protocol="A")
    assert m.score(ps).tolist() == [0.9, -1.0, -1.0]
    assert m.covered(ps) == pytest.approx(1 / 3)


def test_ens_stats_is_half_scfm_half_mean_statistic_percentiles() -> None:
    regs, genes = ("A", "B"), ("X", "Y", "Z")
    ens = Matrix(regs, genes, np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]]), fallback=-1.0)
    s1 = Matrix(regs, genes, np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), 0.0)
    s2 = Matrix(regs, genes, np.array([[6.0, 5.0, 4.0], [3.0, 2.0, 1.0]]), 0.0)
    fused = ens_stats_matrix(ens, [s1, s2])
    expected = 0.5 * percentile(ens.values) + 0.5 * 0.5 * (percentile(s1.values)
                                                           + percentile(s2.values))
    np.testing.assert_allclose(fused.values, expected)
    # s1 and s2 are mirror images: the statistics cancel to a constant, ens decides the order
    assert np.argsort(fused.values.ravel()).tolist() == np.argsort(ens.values.ravel()).tolist()


def test_tf_sample_keeps_the_same_tfs_for_every_network_type(setup: dict[str, Path]) -> None:
    sets = select_sets(BenchConfig(data=setup["data"], out=setup["base"], tf_sample=3))
    by_ds: dict[str, set[tuple[str, ...]]] = {}
    for s in sets:
        assert len(s.tfs) == 3 and set(s.sources) <= set(s.tfs)
        by_ds.setdefault(s.dataset, set()).add(tuple(s.tfs))
    assert all(len(v) == 1 for v in by_ds.values())
    assert subsample_tfs(sets[0], 100) is sets[0]


def test_without_protocol_c_only_needed_pairs_are_probed_and_a_is_unchanged(
        setup: dict[str, Path], first_run: Path) -> None:
    """A/B/M need only their pairs; with the universe inside one context the features (hence
    every A score) are identical to the full run's."""
    assert _bench(setup, "out_abm", "--protocols", "A,B,M", "--network", "STRING",
                  "--cache", "none", "--methods", "vvp,emb,attn_origin,degree,pearson") == 0
    part = pd.read_parquet(setup["base"] / "out_abm" / "results.parquet")
    assert set(part.protocol) == {"A", "B", "M"}
    full = pd.read_parquet(first_run / "results.parquet")
    key = ["method", "network", "dataset", "protocol", "metric", "seed"]
    both = part[part.protocol == "A"].merge(full, on=key)
    assert len(both) == (part.protocol == "A").sum()
    np.testing.assert_allclose(both.value_x, both.value_y, rtol=1e-9)


def test_leakage_matches_atlas_dataset_names_to_genelink_names() -> None:
    from atlasgrn.bench.genelink import pretraining_matches

    atlas = ["beeline_hHEP_TFs1000", "beeline_mHSC-E_TRN209", "beeline_mHSC-GM_TFs500", "mDC",
             "pbmc4k_2170cells"]
    assert pretraining_matches("hHEP", atlas) == ["beeline_hHEP_TFs1000"]
    assert pretraining_matches("mHSC-E", atlas) == ["beeline_mHSC-E_TRN209"]
    assert pretraining_matches("mdc", atlas) == ["mDC"]
    assert pretraining_matches("mHSC", atlas) == []   # a token, not a substring
    assert pretraining_matches("hESC", atlas) == []
