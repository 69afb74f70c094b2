"""Pre-training: one normalisation, streamed balanced sampling, a loop that learns and resumes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from atlasgrn.atlas import open_atlas
from atlasgrn.cli import main
from atlasgrn.models import load_model
from atlasgrn.models.values import to_model_space
from atlasgrn.pretraining import (
    PretrainOptions,
    SamplerConfig,
    evaluate_model,
    pretrain_atlas,
)
from atlasgrn.pretraining.loop import (
    TrainConfig,
    autocast_for,
    choose_mask,
    prefetched,
    resolve_precision,
)
from atlasgrn.pretraining.run import open_training_datasets
from atlasgrn.pretraining.sampler import TrainBatches, holdout_mask, sample_genes
from tests.test_model_support import beeline_atlas, simulated_atlas


def _opts(steps: int, **train) -> PretrainOptions:
    return PretrainOptions(
        d_model=32, n_layers=2, n_heads=4, d_ff=64, dropout=0.0,
        sampler=SamplerConfig(batch_size=16, max_len=64, min_len=16, val_fraction=0.1,
                              block_cells=128, buffer_cells=512),
        train=TrainConfig(steps=steps, lr=2e-3, warmup_steps=5, eval_every=10, log_every=10,
                          **train),
        val_cells_per_dataset=48, val_len=64, range_cells_per_dataset=200)


def test_normalisation_is_identical_whatever_the_source_scale():
    counts = np.random.default_rng(0).poisson(2.0, size=(5, 30)).astype(np.float32)
    counts[2] = 0  # an empty cell stays empty
    ref = to_model_space(counts, "counts")
    np.testing.assert_allclose(ref[0].sum() > 0, True)
    np.testing.assert_allclose(np.expm1(ref[0]).sum(), 1e4, rtol=1e-4)
    for kind, x in (("normalized", counts * 3.7), ("log1p", np.log1p(counts)),
                    ("log2", np.log2(counts + 1))):
        np.testing.assert_allclose(to_model_space(x, kind), ref, atol=1e-4)
        np.testing.assert_allclose(to_model_space(sp.csr_matrix(x), kind).toarray(), ref,
                                   atol=1e-4)
    assert not ref[2].any()


def test_holdout_split_is_reproducible_per_dataset_and_seed():
    a = holdout_mask("mESC", 10000, 0, 0.05)
    assert np.array_equal(a, holdout_mask("mESC", 10000, 0, 0.05))
    assert not np.array_equal(a, holdout_mask("mDC", 10000, 0, 0.05))
    assert not np.array_equal(a, holdout_mask("mESC", 10000, 1, 0.05))
    assert 0.04 < a.mean() < 0.06


def test_gene_sampling_favours_nonzero_genes_and_keeps_values():
    rng = np.random.default_rng(0)
    nz_cols = np.arange(0, 1000, 10)  # 100 non-zero genes of 1000
    nz_vals = np.linspace(1, 2, 100).astype(np.float32)
    share = []
    for _ in range(50):
        cols, vals = sample_genes(1000, nz_cols, nz_vals, 100, 4.0, rng)
        assert len(cols) == 100 and len(set(cols)) == 100
        hit = np.isin(cols, nz_cols)
        np.testing.assert_allclose(vals[hit], nz_vals[np.searchsorted(nz_cols, cols[hit])])
        assert not vals[~hit].any()
        share.append(hit.mean())
    assert np.mean(share) > 0.25  # uniform sampling would give 0.10
    cols, _ = sample_genes(50, nz_cols[:3], nz_vals[:3], 100, 4.0, rng)
    assert np.array_equal(cols, np.arange(50))  # short datasets: every gene


def test_mask_covers_the_ratio_of_real_positions_only():
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 12], [5, 6, 7, 8, 0, 0, 0, 0]])
    mask = choose_mask(ids, 0, 0.5, torch.Generator().manual_seed(0))
    assert mask.sum(1).tolist() == [4, 2] and not mask[1, 4:].any()


def test_batches_balance_datasets_and_bound_context(tmp_path: Path):
    atlas = simulated_atlas(tmp_path / "a.zarr", n_genes=40, n_cells=400, name="big")
    simulated_atlas(atlas, n_genes=30, n_cells=40, seed=1, name="small", symbol_offset=40)
    cells, vocab = open_training_datasets(str(atlas), None, (), 0, 0.1)
    cfg = SamplerConfig(batch_size=64, max_len=32, min_len=8, block_cells=64, buffer_cells=128)
    batches = TrainBatches(cells, cfg, 0, -2.0)
    small_ids = set(cells[[c.name for c in cells].index("small")].token_ids.tolist())
    big_ids = set(cells[[c.name for c in cells].index("big")].token_ids.tolist())
    from_small = 0
    for _ in range(10):
        ids, vals = batches.next_batch()
        assert ids.shape[1] <= 32 and ids.shape[0] == 64
        first = ids[:, 0]
        from_small += sum(int(t in small_ids and t not in big_ids) for t in first)
        assert (vals[ids == 0] == -2.0).all()
    assert all(len(s.cells.holdout) for s in batches.streams)
    assert max(len(s._buffer) for s in batches.streams) <= 128
    assert 0.3 < from_small / 640 < 0.7  # ~half of the cells from the 10x smaller dataset


@pytest.mark.parametrize("source", ["simulated", pytest.param("beeline_mESC", marks=pytest.mark.shared_data)])
def test_short_pretraining_lowers_heldout_masked_mse(tmp_path: Path, source: str):
    atlas = (simulated_atlas(tmp_path / "a.zarr") if source == "simulated"
             else beeline_atlas(tmp_path / "a.zarr", genes=300))
    lines: list[str] = []
    result = pretrain_atlas(str(atlas), tmp_path / "m", _opts(60), device="cpu", log=lines.append)
    first, best = result.history[0]["val_masked_mse"], min(h["val_masked_mse"]
                                                           for h in result.history)
    assert best < 0.7 * first, result.history
    assert any(line.startswith("step 10/60 loss") for line in lines)
    model = load_model(tmp_path / "m")
    assert model.config.provenance["normalisation"]["kind"] == "log1p_cp10k"
    assert model.config.provenance["vocabulary"]["ids"] == "compact"
    # TrainConfig's default precision "auto" is recorded as what ran: fp32 on CPU
    assert model.config.provenance["training"]["train_config"]["precision"] == "fp32"
    report = evaluate_model(model, str(atlas), n_cells=48, lengths=(16,))
    assert report and report[0].masked_mse_model < 0.7 * first
    assert 16 in report[0].mse_by_length and report[0].unmasked_mse >= 0


def test_resume_continues_from_saved_state_deterministically(tmp_path: Path):
    atlas = simulated_atlas(tmp_path / "a.zarr")
    pretrain_atlas(str(atlas), tmp_path / "m", _opts(20), device="cpu", log=lambda s: None)
    shutil.copytree(tmp_path / "m", tmp_path / "m2")
    logs: list[str] = []
    r1 = pretrain_atlas(str(atlas), tmp_path / "m", _opts(30), device="cpu", resume=True,
                        log=logs.append)
    r2 = pretrain_atlas(str(atlas), tmp_path / "m2", _opts(30), device="cpu", resume=True,
                        log=lambda s: None)
    assert logs[0].startswith("resumed at step 20") and r1.step == 30
    assert [h["step"] for h in r1.history] == [0, 10, 20, 30]
    assert (tmp_path / "m" / "train_state" / "state.safetensors").read_bytes() == \
        (tmp_path / "m2" / "train_state" / "state.safetensors").read_bytes()
    assert r1.history == r2.history


def test_early_stopping_when_validation_stops_improving(tmp_path: Path):
    atlas = simulated_atlas(tmp_path / "a.zarr")
    opts = _opts(100, patience=1)
    opts = PretrainOptions(**{**opts.__dict__, "train": TrainConfig(
        steps=100, lr=0.0, warmup_steps=1, eval_every=10, patience=1)})
    result = pretrain_atlas(str(atlas), tmp_path / "m", opts, device="cpu", log=lambda s: None)
    assert result.stopped_early and result.step == 10


def test_pretrain_and_model_eval_cli(tmp_path: Path, capsys):
    atlas = simulated_atlas(tmp_path / "a.zarr")
    out = tmp_path / "m"
    code = main(["pretrain", str(atlas), "--out", str(out), "--steps", "10", "--d-model", "32",
                 "--layers", "1", "--heads", "2", "--d-ff", "32", "--max-len", "32",
                 "--min-len", "16", "--batch-size", "8", "--eval-every", "5", "--device", "cpu",
                 "--log-every", "5"])
    text = capsys.readouterr().out
    assert code == 0 and "done: step 10" in text and (out / "model.safetensors").exists()
    steps = [ln for ln in text.splitlines() if ln.startswith("step ")]
    assert steps and all(", ETA " in ln for ln in steps)  # progress with an ETA
    code = main(["model-eval", str(atlas), "--model", str(out), "--cells", "16",
                 "--lengths", "16", "--json", str(tmp_path / "e.json")])
    table = capsys.readouterr().out
    assert code == 0 and table.splitlines()[1].startswith("sim\t")
    assert (tmp_path / "e.json").exists()
    code = main(["pretrain", str(atlas), "--out", str(tmp_path / "x"),
                 "--exclude-dataset", "nope"])
    err = capsys.readouterr().err
    assert code == 2 and "nope" in err and err.count("\n") == 1
    code = main(["pretrain", str(atlas), "--out", str(out), "--steps", "5"])
    err = capsys.readouterr().err
    assert code == 2 and "--resume" in err
    assert open_atlas(str(atlas)).names == ["sim"]


def test_prefetched_keeps_order_and_reraises_producer_errors():
    assert list(prefetched(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise ValueError("block 7 unreadable")

    stream = prefetched(broken(), depth=2)
    assert next(stream) == 1
    with pytest.raises(ValueError, match="block 7"):
        next(stream)


def test_bf16_autocast_applies_on_cuda_only():
    with autocast_for(torch.device("cpu"), "bf16"):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="precision"):
        autocast_for(torch.device("cpu"), "fp8")


def test_auto_precision_is_bf16_on_cuda_and_fp32_elsewhere():
    assert TrainConfig().precision == "auto"
    assert resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    assert resolve_precision("fp32", torch.device("cuda")) == "fp32"
    with autocast_for(torch.device("cpu"), "auto"):
        assert not torch.is_autocast_enabled("cpu")
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16", torch.device("cpu"))
