"""``atlasgrn train-translator`` and the blockwise, cached probe features behind it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from atlasgrn.cli import main
from atlasgrn.models import save_model
from atlasgrn.models.testing import tiny_model
from atlasgrn.probes import gdt, vvp
from atlasgrn.translator import load_translator_dir
from atlasgrn.translator.features import (CacheStats, FeatureSettings, _blocks,
                                          compute_features, file_digest, model_digest,
                                          pair_features)
from atlasgrn.translator.prior import read_prior

from .bench_toy import random_network
from .conftest import shared_data_path

GENES = [f"G{i}" for i in range(30)]
TFS = GENES[:8]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("prior")
    model = tiny_model(0, GENES, d_model=16, n_layers=1, d_ff=32)
    save_model(model, base / "model")
    edges = random_network(GENES, TFS, 45, seed=3)
    pd.DataFrame(edges, columns=["source", "target"]).to_csv(base / "prior.csv", index=False)
    # TRRUST-like: tab-separated, no header, extra columns
    pd.DataFrame([(a, b, "Activation", "123") for a, b in edges]).to_csv(
        base / "prior.tsv", sep="\t", index=False, header=False)
    pd.DataFrame(edges, columns=["from_gene", "to_gene"]).to_csv(base / "bad.csv", index=False)
    (base / "genes.txt").write_text("# universe\n" + "\n".join(GENES) + "\n")
    (base / "genes_unknown.txt").write_text("\n".join(GENES + ["NOTAGENE"]) + "\n")
    return {"base": base, "model": base / "model", "prior": base / "prior.csv",
            "tsv": base / "prior.tsv", "bad": base / "bad.csv", "genes": base / "genes.txt",
            "unknown": base / "genes_unknown.txt"}


def _train(files: dict[str, Path], out: str, *extra: str, prior: str = "prior",
           genes: str = "genes") -> int:
    return main(["train-translator", "--model", str(files["model"]), "--prior",
                 str(files[prior]), "--genes", str(files[genes]), "--out",
                 str(files["base"] / out), "--cache", str(files["base"] / "cache"),
                 "--max-epochs", "20", "--threads", "1", *extra])


def test_trains_and_saves_a_checkpoint_with_provenance(files: dict[str, Path]) -> None:
    assert _train(files, "tr") == 0
    meta = json.loads((files["base"] / "tr" / "translator.json").read_text())
    prov = meta["provenance"]
    assert prov["prior"]["sha256"] == file_digest(files["prior"])
    assert prov["genes"]["sha256"] == file_digest(files["genes"])
    model = tiny_model(0, GENES, d_model=16, n_layers=1, d_ff=32)
    assert prov["model"]["sha256"] == model_digest(model)
    assert prov["features"]["vvp_grid"] == list(model.config.values.vvp_grid)
    assert prov["labels"]["positives"] == 45 and prov["labels"]["pairs"] == 90
    assert set(meta["kinds"]) == {"vvp", "gdt_uniform", "gdt_source", "emb_concat", "emb_sum"}
    assert meta["ensemble_kinds"][0] == "vvp" and meta["ensemble_kinds"][1].startswith("gdt_")
    tr = load_translator_dir(files["base"] / "tr")
    feats, ok = pair_features(model, GENES, ["G0", "G1"], ["G5", "G9"],
                              kinds=tr.ensemble_kinds)
    p = tr.score(feats)
    assert ok.all() and p.shape == (2,) and ((p > 0) & (p < 1)).all()


def test_rerun_uses_the_feature_cache(files: dict[str, Path]) -> None:
    assert _train(files, "tr_a") == 0
    assert _train(files, "tr_b") == 0
    prov = json.loads((files["base"] / "tr_b" / "translator.json").read_text())["provenance"]
    assert prov["feature_cache"] == {"hits": 3, "computed": 0}


def test_headerless_tsv_prior_gives_the_same_labels(files: dict[str, Path]) -> None:
    assert _train(files, "tr_tsv", "--no-header", prior="tsv") == 0
    prov = json.loads((files["base"] / "tr_tsv" / "translator.json").read_text())["provenance"]
    assert prov["labels"]["positives"] == 45


def test_prior_with_missing_columns_is_one_line_exit_2(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(files, "tr_bad", prior="bad") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "bad.csv" in err and "'source'" in err and "--no-header" in err


def test_genes_not_in_vocab_are_an_error_unless_dropped(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert _train(files, "tr_unk", genes="unknown") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "NOTAGENE" in err and "--drop-unknown" in err
    assert _train(files, "tr_unk", "--drop-unknown", genes="unknown") == 0
    prov = json.loads((files["base"] / "tr_unk" / "translator.json").read_text())["provenance"]
    assert prov["genes"]["unknown_dropped"] == 1


def test_existing_checkpoint_needs_overwrite(files: dict[str, Path]) -> None:
    assert _train(files, "tr_o") == 0
    assert _train(files, "tr_o") == 2
    assert _train(files, "tr_o", "--overwrite") == 0


def test_single_context_features_equal_the_probes() -> None:
    """A universe that fits the context is one block: the table is the probe output itself."""
    model = tiny_model(2, GENES, d_model=16, n_layers=1, d_ff=32)
    table = compute_features(model, GENES, TFS, ["vvp", "gdt_uniform"])
    ids = torch.as_tensor(sorted(model.vocab[g] for g in GENES))
    src = torch.as_tensor([model.vocab[g] for g in table.sources])
    tgt = torch.as_tensor([model.vocab[g] for g in table.targets])
    want = vvp(model, ids, src, tgt).numpy()
    same = src[:, None] == tgt[None, :]
    want[same.numpy()] = 0.0
    np.testing.assert_allclose(table.tables["vvp"], want, rtol=1e-6, atol=1e-7)
    g = gdt(model, ids, src, tgt, reading="uniform").numpy()
    g[same.numpy()] = 0.0
    np.testing.assert_allclose(table.tables["gdt_uniform"], g, rtol=1e-5, atol=1e-7)


def test_blocks_fit_the_context_and_cover_every_needed_pair() -> None:
    rng = np.random.default_rng(0)
    need = rng.random((12, 40)) < 0.15
    need[3] = True  # one source needing every target: its targets are split
    for needed in (None, need):
        blocks = _blocks(12, 40, 16, 4, universe=40, needed=needed)
        covered = np.zeros((12, 40), dtype=bool)
        for rows, cols in blocks:
            assert len(rows) + len(cols) <= 16
            covered[np.ix_(rows, cols)] = True
        assert covered[need if needed is not None else np.ones_like(need)].all()


def test_chunked_sparse_features_match_dense_on_needed_pairs(tmp_path: Path) -> None:
    """With a short context the universe is chunked; sparse (needed pairs) and dense runs agree
    on those pairs up to the block effect, and the cache returns exactly what was computed."""
    model = tiny_model(3, GENES, d_model=16, n_layers=1, d_ff=32)
    settings = FeatureSettings(context_len=16, source_block=4)
    src, tgt = ["G0", "G1", "G5"], ["G20", "G3", "G29"]
    stats = CacheStats()
    dense = compute_features(model, GENES, TFS, ["vvp"], settings=settings,
                             cache_dir=tmp_path, stats=stats)
    assert np.isfinite(dense.tables["vvp"]).all()
    again = compute_features(model, GENES, TFS, ["vvp"], settings=settings,
                             cache_dir=tmp_path, stats=stats)
    assert len(stats.misses) == 1 and len(stats.hits) == 1
    np.testing.assert_array_equal(dense.tables["vvp"], again.tables["vvp"])
    sparse, ok = pair_features(model, GENES, src, tgt, kinds=["vvp"], settings=settings)
    want, _ = dense.gather(src, tgt, ["vvp"])
    assert ok.all() and np.isfinite(sparse["vvp"]).all()
    # same context length, different companions: features agree in direction and scale
    corr = np.corrcoef(sparse["vvp"].ravel(), want["vvp"].ravel())[0, 1]
    assert corr > 0.9


def test_reads_trrust_headerless(shared_data: Path) -> None:
    path = shared_data_path("trrust_v2", "trrust_rawdata.human.tsv")
    edges = read_prior(path, header=False)
    assert len(edges) > 8000 and list(edges.columns) == ["source", "target"]
    assert ("AATF", "BAX") in set(zip(edges.source, edges.target))


def test_bundled_translator_was_trained_with_the_bundled_model() -> None:
    """Guard: replacing the bundled model without re-running
    scripts/train_default_translator.py leaves a translator fitted to other features."""
    from atlasgrn.models import load_model

    folder = Path(__file__).resolve().parents[1] / "atlasgrn" / "data" / "translators" / "default"
    if not (folder / "translator.json").exists():
        pytest.skip("no bundled translator yet (scripts/train_default_translator.py)")
    tr = load_translator_dir(folder)
    assert tr.provenance["model"]["sha256"] == model_digest(load_model()), (
        "the bundled model changed: re-run scripts/train_default_translator.py")
    assert tr.ensemble_kinds[0] == "vvp"
