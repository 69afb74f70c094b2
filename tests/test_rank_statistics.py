"""Rank-statistic features (``atlasgrn.features.stats``) and the fused translator models that
read them: numbers checked against direct computations, checkpoints round-tripped."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from atlasgrn.features import FeatureSpec, rank_statistics
from atlasgrn.features.stats import abs_pearson, mutual_information, source_ranks
from atlasgrn.translator import TranslatorConfig, load_translator_dir, save_translator
from atlasgrn.translator.train import train_translator

GENES = ("A", "B", "C", "D", "E")


def _values(seed: int = 0, cells: int = 300) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=cells)
    return np.stack([a, 0.9 * a + 0.1 * rng.normal(size=cells), rng.normal(size=cells),
                     -a + 0.5 * rng.normal(size=cells), rng.normal(size=cells)], axis=1)


def test_pearson_is_numpys_absolute_correlation():
    x = _values()
    got = abs_pearson(x, np.array([0, 2]))
    want = np.abs(np.corrcoef(x.T))[[0, 2]]
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_ranks_are_within_each_source_row_and_leave_the_self_pair_out():
    raw = np.array([[9.0, 0.9, 0.1, 0.5, 0.3],
                    [0.2, 9.0, 0.4, 0.4, 0.8]])
    ranks = source_ranks(raw, np.array([0, 1]))
    assert ranks[0, 0] == 0.0 and ranks[1, 1] == 0.0  # self pairs are never ranked
    np.testing.assert_allclose(ranks[0, 1:], [1.0, 0.25, 0.75, 0.5])
    np.testing.assert_allclose(ranks[1, [0, 2, 3, 4]], [0.25, 0.625, 0.625, 1.0])  # ties


def test_rank_statistics_rank_the_coupled_genes_first_and_ignore_scale():
    x = _values()
    ranks = rank_statistics(x, GENES, ["A"], ("rank_pearson", "rank_spearman", "rank_mi"))
    for kind, r in ranks.items():
        assert r.shape == (1, 5) and r.dtype == np.float32
        top_two = {GENES[i] for i in np.argsort(-r[0])[:2]}
        assert top_two == {"B", "D"}, kind  # the genes made from A
    # ranks do not care about scale or a monotone transform of the expression
    again = rank_statistics(np.exp(3.0 * x), GENES, ["A"], ("rank_spearman",))
    np.testing.assert_array_equal(again["rank_spearman"], ranks["rank_spearman"])


def test_mutual_information_is_zero_for_a_constant_gene_and_symmetric():
    x = _values()
    x[:, 4] = 2.0
    mi = mutual_information(x, np.arange(5))
    assert np.all(np.abs(mi[:, 4]) < 1e-6) and np.all(np.abs(mi[4]) < 1e-6)
    np.testing.assert_allclose(mi, mi.T, atol=1e-9)


def test_a_regulator_the_dataset_does_not_measure_is_refused():
    with pytest.raises(ValueError, match="not among the dataset's genes"):
        rank_statistics(_values(), GENES, ["Z"], ("rank_pearson",))


def test_the_spec_puts_rank_statistics_in_context_mode():
    spec = FeatureSpec(vvp_grid=(0.0, 1.0), gdt_levels=(1.0,), background=0.0,
                       model_sha256="0" * 64, kinds=("vvp", "rank_pearson"))
    assert spec.stat_kinds == ("rank_pearson",) and spec.mode == "context"
    assert FeatureSpec.from_json(spec.to_json()) == spec


def _training_set(n: int = 400, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(np.float32)
    feats = {"vvp": rng.normal(size=(n, 2)) + y[:, None] * 0.3,
             "rank_pearson": (rng.random((n, 1)) * 0.5 + 0.5 * y[:, None]).astype(np.float32)}
    groups = np.repeat(np.arange(n // 10), 10)
    return feats, y, groups


def test_fused_model_reads_its_kinds_concatenated_and_survives_a_checkpoint(tmp_path):
    feats, y, groups = _training_set()
    tr = train_translator(feats, y, groups, TranslatorConfig(max_epochs=30, seed=1),
                          fused={"fused": ("vvp", "rank_pearson")})
    assert set(tr.kinds) == {"vvp", "rank_pearson", "fused"}
    assert tr.kinds["fused"].input_kinds == ("vvp", "rank_pearson")
    assert tr.kinds["fused"].mlp.in_dim == 3
    # the label lives mostly in the rank: the fused model validates above VVP alone
    auroc = {k: m.metrics["val_auroc"] for k, m in tr.kinds.items()}
    assert auroc["fused"] > auroc["vvp"]
    assert tr.best_validated() in ("fused", "rank_pearson")
    assert tr.best_validated(exclude_inputs=("rank_pearson",)) == "vvp"
    tr.ensemble_kinds = ("fused",)
    assert tr.input_kinds() == ("vvp", "rank_pearson")
    tr.feature_spec = FeatureSpec(vvp_grid=(0.0, 1.0), gdt_levels=(1.0,), background=0.0,
                                  model_sha256="0" * 64, kinds=("vvp", "rank_pearson"))
    save_translator(tr, tmp_path / "t")
    back = load_translator_dir(tmp_path / "t")
    np.testing.assert_array_equal(back.score(feats), tr.score(feats))
    with pytest.raises(KeyError, match="rank_pearson"):
        back.score({"vvp": feats["vvp"]})


def test_a_fused_model_whose_kind_is_outside_the_spec_is_refused(tmp_path):
    from atlasgrn.errors import CheckpointError

    feats, y, groups = _training_set()
    tr = train_translator(feats, y, groups, TranslatorConfig(max_epochs=5),
                          fused={"fused": ("vvp", "rank_pearson")}, per_kind=("vvp",))
    tr.feature_spec = FeatureSpec(vvp_grid=(0.0, 1.0), gdt_levels=(1.0,), background=0.0,
                                  model_sha256="0" * 64, kinds=("vvp",))
    save_translator(tr, tmp_path / "t")
    with pytest.raises(CheckpointError, match="rank_pearson"):
        load_translator_dir(tmp_path / "t")


def test_a_gzipped_comma_prior_is_read_as_commas(tmp_path):
    """The separator is sniffed on the decompressed first line: gzip bytes once held a tab and
    no comma, and a comma file was read as one column."""
    from atlasgrn.edgelist import read_edge_list

    path = tmp_path / "net.csv.gz"
    for salt in range(2000):  # some compressed headers hold a tab byte: try until one does
        body = f"Gene1,Gene2\nKLF6,JUN\nJUN,KLF{salt}\n".encode()
        packed = gzip.compress(body, mtime=0)
        first = packed.split(b"\n")[0]
        if b"\t" in first and b"," not in first:
            break
    else:
        pytest.fail("no compressed header with a tab byte was found")
    path.write_bytes(packed)
    edges = read_edge_list(path, option="--prior", what="prior", remedy="x")
    assert list(edges.columns[:2]) == ["source", "target"] and len(edges) == 2


def test_selection_on_held_out_genes_refuses_the_target_memorising_model():
    """A model that memorises targets validates well on held-out sources (their targets are
    seen) and falls to chance on unseen genes; selection by unseen-gene AUROC picks the model
    whose signal is in the pair."""
    from atlasgrn.translator.train import (
        SELECTION_METRIC,
        record_selection,
        split_by_genes,
        unseen_gene_auroc,
    )

    rng = np.random.default_rng(0)
    n_src, n_tgt = 60, 150
    hub = rng.random(n_tgt) < 0.5                      # half the targets are mostly regulated
    src = np.repeat(np.arange(n_src), n_tgt)
    tgt = np.tile(np.arange(n_tgt), n_src)
    y = (rng.random(len(src)) < np.where(hub[tgt], 0.85, 0.15)).astype(np.float32)
    feats = {"identity": np.eye(n_tgt, dtype=np.float32)[tgt],         # who the target is
             "pair": (y + rng.normal(scale=1.2, size=len(y)))[:, None]}  # the pair's own signal
    sources = np.array([f"s{i}" for i in src])
    targets = np.array([f"t{i}" for i in tgt])
    tr_idx, va_idx = split_by_genes(sources, targets, 0.3, 0)
    held = set(sources[va_idx]) | set(targets[va_idx])
    assert not held & (set(sources[tr_idx]) | set(targets[tr_idx]))
    cfg = TranslatorConfig(max_epochs=15, seed=0)
    tr = train_translator(feats, y, sources, cfg)
    assert tr.best_validated() == "identity"           # held-out sources: the shortcut wins
    scores = unseen_gene_auroc(feats, y, sources, targets, cfg)
    assert scores["identity"] < 0.6 < scores["pair"]
    record_selection(tr, scores)
    assert tr.kinds["pair"].metrics[SELECTION_METRIC] == scores["pair"]
    assert tr.best_validated(metric=SELECTION_METRIC) == "pair"
