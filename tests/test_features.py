"""The feature contract: FeatureSpec, block layout, gene universes, the one block function."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from atlasgrn.digest import model_sha256
from atlasgrn.errors import AtlasgrnError
from atlasgrn.features import (
    CacheStats,
    FeatureSpec,
    block_features,
    build_universe,
    compute_table,
    context_ids,
    layout_blocks,
    profile_from_means,
)
from atlasgrn.models.testing import tiny_model
from atlasgrn.probes import block_context, embedding_pairs, gdt, vvp

GENES = [f"G{i}" for i in range(30)]
TFS = GENES[:8]


@pytest.fixture(scope="module")
def model():
    return tiny_model(4, GENES, d_model=16, n_layers=1, d_ff=32)


def _spec(model, **kw) -> FeatureSpec:
    return FeatureSpec.for_model(model, **{"context_len": 24, "source_block": 4,
                                           "target_block": 10, **kw})


# ------------------------------------------------------------------------------ FeatureSpec
def test_spec_takes_grid_levels_background_and_digest_from_the_model(model) -> None:
    spec = FeatureSpec.for_model(model)
    space = model.config.values
    assert spec.vvp_grid == tuple(space.vvp_grid) and spec.gdt_levels == tuple(space.gdt_levels)
    assert spec.background == space.background
    assert spec.model_sha256 == model_sha256(model)
    assert spec.context_len == min(256, model.config.arch.max_len)


def test_a_context_longer_than_the_model_takes_is_refused(model) -> None:
    longest = model.config.arch.max_len - (1 if model.config.arch.cls_token_id is not None
                                           else 0)
    with pytest.raises(AtlasgrnError, match=f"exceeds the model's maximum of {longest}"):
        FeatureSpec.for_model(model, context_len=longest + 1)


def test_spec_round_trips_through_json_and_its_digest_tracks_every_field(model) -> None:
    spec = _spec(model)
    again = FeatureSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again == spec and again.digest() == spec.digest()
    for change in ({"context_len": 25}, {"anchors": "expression"}, {"background": "profile"},
                   {"source_block": 5}, {"kinds": ("vvp",)}, {"gdt_method": "fd"}):
        assert _spec(model, **change).digest() != spec.digest(), change


@pytest.mark.parametrize("field,value,needle", [
    ("kinds", ("vvp", "nope"), "nope"), ("background", "mean", "background"),
    ("anchors", "random", "anchors"), ("source_block", 20, "context_len"),
    ("self_pairs", "keep", "self_pairs")])
def test_invalid_spec_is_one_line_naming_the_field(model, field, value, needle) -> None:
    with pytest.raises(AtlasgrnError) as err:
        _spec(model, **{field: value})
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_saved_spec_with_a_missing_or_unknown_field_is_refused(model) -> None:
    data = _spec(model).to_json()
    for broken, key in (({k: v for k, v in data.items() if k != "vvp_grid"}, "vvp_grid"),
                        ({**data, "extra": 1}, "extra"), ({**data, "format": 9}, "format")):
        with pytest.raises(AtlasgrnError) as err:
            FeatureSpec.from_json(broken, path="t.json")
        assert key in str(err.value) and "t.json" in str(err.value)


def test_contradicting_option_names_the_field_and_both_values(model) -> None:
    spec = _spec(model)
    spec.check_option("--context-len", "context_len", 24)        # agreeing: fine
    spec.check_option("--context-len", "context_len", None)      # not given: fine
    spec.check_option("--vvp-grid", "vvp_grid", list(spec.vvp_grid))
    with pytest.raises(AtlasgrnError) as err:
        spec.check_option("--context-len", "context_len", 128)
    msg = str(err.value)
    assert "--context-len 128" in msg and "feature_spec.context_len 24" in msg
    with pytest.raises(AtlasgrnError, match="model"):
        spec.check_model("0" * 64)


# ------------------------------------------------------------------------------ layout
def test_layout_depends_on_the_gene_sets_only_and_covers_every_pair() -> None:
    genes = [f"G{i}" for i in range(23)]
    blocks = layout_blocks(reversed(genes[:7]), genes, 3, 10)
    assert blocks == layout_blocks(genes[:7], list(reversed(genes)), 3, 10)
    pairs = {(s, t) for b in blocks for s in b.sources for t in b.targets if s != t}
    assert pairs == {(s, t) for s in genes[:7] for t in genes if s != t}
    assert sum(b.n_pairs for b in blocks) == len(pairs)
    assert all(len(b.sources) <= 3 and len(b.targets) <= 10 for b in blocks)


# ------------------------------------------------------------------------------ universe
def test_universe_resolves_names_and_orders_anchors_by_policy(model) -> None:
    names = ["g3", "G1", "G2", "NOTAGENE"]  # lower case maps by upper case
    means = np.array([5.0, 1.0, 9.0, 3.0])
    by_id = build_universe(model.vocab, names, _spec(model))
    assert by_id.genes == ("G1", "G2", "G3") and by_id.unmapped == ("NOTAGENE",)
    assert by_id.names["g3"] == "G3"
    assert by_id.anchors == tuple(sorted(by_id.genes, key=model.vocab.__getitem__))
    by_expr = build_universe(model.vocab, names, _spec(model, anchors="expression"),
                             means=means, value_kind="log1p")
    assert by_expr.anchors == ("G2", "G3", "G1")
    with pytest.raises(AtlasgrnError, match="expression"):
        build_universe(model.vocab, names, _spec(model, anchors="expression"))


def test_profile_is_the_mean_cell_on_the_model_scale() -> None:
    means = np.array([1.0, 3.0, 0.0])
    prof = profile_from_means(means, "counts")
    np.testing.assert_allclose(prof, np.log1p(means / means.sum() * 1e4), rtol=1e-6)


# ------------------------------------------------------------------------------ block features
def test_block_features_equal_the_probes_on_the_filled_context(model) -> None:
    spec = _spec(model)
    uni = build_universe(model.vocab, GENES, spec)
    src, tgt = ["G2", "G5"], ["G7", "G11", "G2"]
    bf = block_features(model, spec, src, tgt, uni.anchors)
    ctx = context_ids(model, spec, src, tgt, uni.anchors)
    ids = lambda names: torch.tensor([model.vocab[n] for n in names])  # noqa: E731
    assert ctx.numel() == spec.context_len
    assert torch.equal(ctx, block_context(ids(src), ids(tgt), anchors=ids(uni.anchors),
                                          max_len=spec.context_len, fill=True))
    np.testing.assert_array_equal(bf.features["vvp"], vvp(model, ctx, ids(src), ids(tgt)).numpy())
    np.testing.assert_array_equal(bf.features["gdt_source"],
                                  gdt(model, ctx, ids(src), ids(tgt), reading="source").numpy())
    np.testing.assert_array_equal(bf.features["emb_concat"],
                                  embedding_pairs(model, ids(src), ids(tgt)).concat.numpy())
    ss, tt, flat = bf.pair_rows()
    assert ("G2", "G2") not in set(zip(ss, tt)) and len(ss) == 5  # self pair dropped
    assert flat["vvp"].shape == (5, len(spec.vvp_grid))


def test_profile_background_needs_a_profile_and_uses_it(model) -> None:
    spec = _spec(model, background="profile", kinds=("vvp", "pert"))
    means = np.linspace(0.5, 3.0, len(GENES))
    uni = build_universe(model.vocab, GENES, spec, means=means, value_kind="log1p")
    with pytest.raises(ValueError, match="profile"):
        block_features(model, spec, ["G1"], ["G3"], uni.anchors, None)
    bf = block_features(model, spec, ["G1"], ["G3"], uni.anchors, uni.profile)
    flat = block_features(model, _spec(model), ["G1"], ["G3"], uni.anchors, kinds=["vvp"])
    assert not np.array_equal(bf.features["vvp"], flat.features["vvp"])
    assert bf.features["pert"].shape == (1, 1, 1)


# ------------------------------------------------------------------------------ tables
def test_table_cells_are_the_block_features_bit_for_bit(model) -> None:
    spec = _spec(model)
    uni = build_universe(model.vocab, GENES, spec)
    table = compute_table(model, spec, uni, TFS, ["vvp", "gdt_uniform", "emb_sum"])
    for block in layout_blocks(TFS, GENES, spec.source_block, spec.target_block):
        bf = block_features(model, spec, block.sources, block.targets, uni.anchors,
                            kinds=["vvp", "gdt_uniform", "emb_sum"])
        ss, tt, flat = bf.pair_rows()
        got, ok = table.gather(ss, tt)
        assert ok.all()
        for kind in flat:
            np.testing.assert_array_equal(got[kind], flat[kind])
    # self pairs are not computed
    _, ok = table.gather(["G1"], ["G1"])
    assert not ok.any()


def test_needed_pairs_cost_fewer_blocks_and_give_the_same_values(model, tmp_path: Path) -> None:
    spec = _spec(model)
    uni = build_universe(model.vocab, GENES, spec)
    src, tgt = ["G0", "G1", "G5"], ["G20", "G3", "G29"]
    stats = CacheStats()
    dense = compute_table(model, spec, uni, TFS, ["vvp"], cache_dir=tmp_path, stats=stats)
    again = compute_table(model, spec, uni, TFS, ["vvp"], cache_dir=tmp_path, stats=stats)
    assert len(stats.misses) == 1 and len(stats.hits) == 1
    np.testing.assert_array_equal(dense.tables["vvp"], again.tables["vvp"])
    sparse = compute_table(model, spec, uni, TFS, ["vvp"], pairs=(src, tgt))
    assert sparse.info["blocks"] < dense.info["blocks"]
    a, ok = sparse.gather(src, tgt)
    b, _ = dense.gather(src, tgt)
    assert ok.all()
    np.testing.assert_array_equal(a["vvp"], b["vvp"])


def test_kinds_outside_the_spec_or_without_a_profile_are_refused(model) -> None:
    spec = _spec(model, kinds=("vvp", "pert"))
    uni = build_universe(model.vocab, GENES, spec)
    with pytest.raises(AtlasgrnError, match="not in the feature spec"):
        compute_table(model, spec, uni, TFS, ["gdt_uniform"])
    with pytest.raises(AtlasgrnError, match="profile"):
        compute_table(model, spec, uni, TFS, ["pert"])
