"""Translator: learns from features, normalises on training data only, early-stops, round-trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from atlasgrn.errors import CheckpointError
from atlasgrn.features import FeatureSpec
from atlasgrn.translator import (
    FeatureNormalizer,
    TranslatorConfig,
    load_translator_dir,
    save_translator,
    split_by_group,
    train_translator,
)


def _task(n: int = 1200, d: int = 8, seed: int = 0, scale: float = 1e-3):
    """Pairs whose label depends on a tiny-magnitude signal, as cross-gene gradients are."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, d)) * scale
    x[:, 0] += (2 * y - 1) * scale * 1.5
    x[:, 1] += (2 * y - 1) * scale * 0.8
    groups = rng.integers(0, 60, n)
    return x, y, groups


FAST = TranslatorConfig(max_epochs=60, patience=8, seed=0)
#: A spec whose vvp/gdt dimensions match _task's 8 features (only checkpoints need one).
SPEC = FeatureSpec(vvp_grid=tuple(range(1, 9)), gdt_levels=tuple(range(8)), background=0.0,
                   model_sha256="0" * 64, kinds=("vvp", "gdt_uniform"))


def _stamped(tr):
    tr.feature_spec = SPEC
    return tr


def test_translator_learns_a_small_magnitude_signal_on_unseen_pairs():
    x, y, g = _task()
    xt, yt, _ = _task(seed=1)
    tr = train_translator({"gdt": x}, y, g, FAST)
    auc = roc_auc_score(yt, tr.score({"gdt": xt}))
    assert auc > 0.85, auc


def test_normaliser_is_fitted_on_training_data_only():
    x, y, g = _task()
    norm = FeatureNormalizer.fit(x)
    shifted = x + 100.0
    again = FeatureNormalizer.fit(x)
    np.testing.assert_array_equal(norm.tau, again.tau)
    z = norm.transform(shifted)  # transforming other data does not refit
    assert z.mean() > 5
    np.testing.assert_allclose(norm.transform(x).mean(axis=0), 0, atol=1e-6)


def test_validation_split_holds_out_whole_source_genes():
    groups = np.repeat(np.arange(20), 10)
    tr, va = split_by_group(groups, 0.25, seed=3)
    assert set(groups[tr]).isdisjoint(set(groups[va]))
    assert 40 <= len(va) <= 60 and len(tr) + len(va) == 200


def test_training_is_deterministic_under_a_seed():
    x, y, g = _task(n=400)
    a = train_translator({"vvp": x}, y, g, FAST)
    b = train_translator({"vvp": x}, y, g, FAST)
    for k, v in a.kinds["vvp"].mlp.state_dict().items():
        assert torch.equal(v, b.kinds["vvp"].mlp.state_dict()[k])


def test_early_stopping_ends_training_on_labels_that_carry_no_signal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    y = rng.integers(0, 2, 600)
    tr = train_translator({"vvp": x}, y, rng.integers(0, 30, 600),
                          TranslatorConfig(max_epochs=300, patience=5))
    m = tr.kinds["vvp"].metrics
    assert m["epochs_run"] < 300 and m["epochs_run"] == m["best_epoch"] + 6


def test_ensemble_is_the_sigmoid_of_the_mean_logit():
    x, y, g = _task(n=500)
    tr = train_translator({"vvp": x, "gdt": x[:, ::-1].copy()}, y, g, FAST)
    lg = tr.logits({"vvp": x, "gdt": x[:, ::-1].copy()})
    expected = 1 / (1 + np.exp(-(lg["vvp"] + lg["gdt"]) / 2))
    np.testing.assert_allclose(tr.score({"vvp": x, "gdt": x[:, ::-1].copy()}), expected,
                               rtol=1e-6)


def test_checkpoint_round_trip_gives_identical_scores(tmp_path):
    x, y, g = _task(n=500)
    tr = _stamped(train_translator({"vvp": x, "gdt_uniform": x * 2}, y, g, FAST,
                                   provenance={"prior": "unit"}))
    save_translator(tr, tmp_path / "t")
    back = load_translator_dir(tmp_path / "t")
    np.testing.assert_array_equal(back.score({"vvp": x, "gdt_uniform": x * 2}),
                                  tr.score({"vvp": x, "gdt_uniform": x * 2}))
    assert back.provenance["prior"] == "unit" and back.feature_spec == SPEC
    with pytest.raises(CheckpointError, match="already exists"):
        save_translator(tr, tmp_path / "t")


def test_checkpoint_with_mismatched_json_is_refused(tmp_path):
    x, y, g = _task(n=300)
    save_translator(_stamped(train_translator({"vvp": x}, y, g, FAST)), tmp_path / "t")
    meta = json.loads((tmp_path / "t" / "translator.json").read_text())
    meta["kinds"]["vvp"]["hidden"] = [16, 8]
    (tmp_path / "t" / "translator.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="shape") as err:
        load_translator_dir(tmp_path / "t")
    assert "\n" not in str(err.value)


def test_a_translator_without_a_feature_spec_cannot_be_saved(tmp_path):
    x, y, g = _task(n=300)
    with pytest.raises(CheckpointError, match="feature_spec"):
        save_translator(train_translator({"vvp": x}, y, g, FAST), tmp_path / "t")
    assert not (tmp_path / "t" / "translator.json").exists()


def test_a_kind_whose_width_disagrees_with_the_spec_is_refused(tmp_path):
    x, y, g = _task(n=300, d=5)
    save_translator(_stamped(train_translator({"vvp": x}, y, g, FAST)), tmp_path / "t")
    with pytest.raises(CheckpointError, match="takes 5 features but its feature_spec gives 8"):
        load_translator_dir(tmp_path / "t")


def test_threshold_guidance_reports_precision_and_recall_at_top_fractions():
    from atlasgrn.translator.guidance import threshold_guidance

    y = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 0])
    s = np.linspace(1.0, 0.1, 10)  # already ranked
    g = threshold_guidance(y, s)
    assert g["pairs"] == 10 and g["positives"] == 4 and g["prevalence"] == 0.4
    by_frac = {r["fraction_above"]: r for r in g["thresholds"]}
    assert by_frac[0.5]["precision"] == 0.8 and by_frac[0.5]["recall"] == 1.0
    assert any(r["score"] == 0.5 for r in g["thresholds"])
    assert "prevalence" in g["note"]
    assert threshold_guidance(np.ones(3), np.ones(3))["thresholds"] == []


def test_weights_that_are_not_the_jsons_own_are_refused(tmp_path):
    x, y, g = _task(n=300)
    save_translator(_stamped(train_translator({"vvp": x}, y, g, FAST)), tmp_path / "a")
    other = _stamped(train_translator({"vvp": x}, y, g, TranslatorConfig(max_epochs=2, seed=1)))
    save_translator(other, tmp_path / "b")
    (tmp_path / "a" / "translator.safetensors").write_bytes(
        (tmp_path / "b" / "translator.safetensors").read_bytes())  # a half-finished overwrite
    with pytest.raises(CheckpointError, match="not the one this translator.json was saved with"):
        load_translator_dir(tmp_path / "a")
