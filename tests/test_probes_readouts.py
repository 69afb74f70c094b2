"""Probe inputs, errors, baseline read-outs, self-pair masks, block contexts, the real model."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from atlasgrn.errors import AtlasgrnError
from atlasgrn.models.testing import tiny_model
from atlasgrn.probes import (
    attention,
    block_context,
    embedding_pairs,
    gdt,
    mask_self_pairs,
    not_expressed_value,
    pert_origin,
    self_pair_mask,
    vvp,
)
from atlasgrn.probes.reference import gdt_naive, pert_origin_naive, vvp_naive
from tests.probe_models import LinearGeneModel, ProbeTransformer

CTX = list(range(1, 17))
SRC = [2, 9, 16]
TGT = [9, 4, 1, 13]


@pytest.fixture(scope="module")
def net() -> ProbeTransformer:
    return ProbeTransformer(vocab_size=32, d_model=16, n_layers=2, n_heads=2, d_ff=32, seed=7)


@pytest.fixture(scope="module")
def linear() -> LinearGeneModel:
    return LinearGeneModel(vocab_size=32, seed=2)


# -- bad input is one clear line ----------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "key"), [
    ({"sources": [2, 99]}, "sources"),
    ({"targets": [50]}, "targets"),
    ({"context": [1, 2, 2, 3]}, "context"),
    ({"context": [0, 1, 2, 9]}, "context"),
    ({"context": []}, "context"),
    ({"context": [[1, 2], [3, 4]]}, "context"),
    ({"sources": [2.5]}, "sources"),
])
def test_bad_tokens_raise_one_line_naming_the_key(net, kwargs, key):
    args = {"context": CTX, "sources": SRC, "targets": [9], **kwargs}
    for probe in (vvp, gdt):
        with pytest.raises(AtlasgrnError) as info:
            probe(net, args["context"], args["sources"], args["targets"])
        assert info.value.key == key
        assert "\n" not in str(info.value) and "fix:" in str(info.value)


def test_missing_genes_are_named_in_the_error(net):
    with pytest.raises(AtlasgrnError, match=r"not in the context: 77, 78"):
        gdt(net, CTX, [2, 77, 78], TGT)


@pytest.mark.parametrize(("kwargs", "key"), [
    ({"background": -2.0}, "background"),                 # the pad value
    ({"background": -1.0}, "background"),                 # the mask value
    ({"background": float("nan")}, "background"),
    ({"background": torch.ones(3)}, "background"),        # wrong profile length
    ({"levels": []}, "levels"),
    ({"levels": [1.0, float("inf")]}, "levels"),
    ({"reading": "both"}, "reading"),
    ({"method": "complex-step"}, "method"),
    ({"method": "fd", "fd_step": 0.0}, "fd_step"),
    ({"precision": "tf32"}, "precision"),                 # CPU: no TF32 matmuls
    ({"precision": "fp8"}, "precision"),
    ({"method": "fd", "precision": "bf16"}, "precision"),  # FD drowns in bf16 round-off
    ({"max_batch": 0}, "max_batch"),
    ({"uniform_mode": "rows"}, "uniform_mode"),
])
def test_bad_gdt_options_raise_naming_the_option(net, kwargs, key):
    with pytest.raises(AtlasgrnError) as info:
        gdt(net, CTX, SRC, TGT, **kwargs)
    assert info.value.key == key


def test_gdt_refuses_a_binned_category_value_encoder(net):
    arch = dataclasses.replace(net.config.arch, value_encoder="category")
    binned = dataclasses.replace(net.config, arch=arch)
    original, net.config = net.config, binned
    try:
        with pytest.raises(AtlasgrnError) as info:
            gdt(net, CTX, SRC, TGT)
        assert info.value.key == "value_encoder"
    finally:
        net.config = original


def test_uniform_reading_refuses_a_profile_with_zero_mean(net):
    with pytest.raises(AtlasgrnError, match="mean"):
        gdt(net, CTX, SRC, TGT, background=torch.zeros(len(CTX)))
    assert torch.isfinite(gdt(net, CTX, SRC, TGT, reading="source",
                              background=torch.zeros(len(CTX)))).all()


# -- model state ------------------------------------------------------------------------------
def test_probes_run_in_eval_mode_and_restore_the_model_state(net):
    net.train()
    net.embed.weight.requires_grad_(True)
    gdt(net, CTX, SRC, TGT, reading="source")
    assert net.training and net.embed.weight.requires_grad
    assert all(p.grad is None for p in net.parameters())
    net.eval()


def test_dropout_is_off_during_probes():
    model = ProbeTransformer(vocab_size=32, d_model=16, n_layers=1, n_heads=2, d_ff=32, seed=1)
    model.layers[0].ff1 = torch.nn.Sequential(model.layers[0].ff1, torch.nn.Dropout(0.5))
    model.train()
    first = vvp(model, CTX, SRC, TGT)
    assert torch.equal(first, vvp(model, CTX, SRC, TGT))


# -- baselines --------------------------------------------------------------------------------
def test_pert_origin_equals_naive_knockout_and_uses_the_not_expressed_value(net, linear):
    mean = torch.linspace(0.5, 3.0, len(CTX), dtype=torch.float64)
    fast = pert_origin(net, CTX, mean, SRC, TGT, max_batch=2)
    torch.testing.assert_close(fast, pert_origin_naive(net, CTX, mean, SRC, TGT),
                               rtol=1e-10, atol=1e-13)
    # linear model: M(x)_j - M(x[i<-0])_j = W[j, i] * x_i
    lin = pert_origin(linear, CTX, mean, SRC, TGT)
    x_src = mean[[CTX.index(s) for s in SRC]]
    expected = linear.W.detach()[TGT][:, SRC].T * x_src[:, None]
    torch.testing.assert_close(lin, expected, rtol=0, atol=1e-12)
    assert not_expressed_value(net.config.values) == 0.0


def test_pert_origin_needs_a_profile(net):
    with pytest.raises(AtlasgrnError) as info:
        pert_origin(net, CTX, torch.tensor(1.0), SRC, TGT)
    assert info.value.key == "mean_values"


def test_attention_reads_query_target_key_source_averaged_over_layers_and_heads(net):
    got = attention(net, CTX, SRC, TGT)
    ids = torch.tensor(CTX)[None]
    probs = net.attention_weights(ids, torch.full((1, len(CTX)), 0.1, dtype=torch.float64))
    pos = {g: k for k, g in enumerate(CTX)}
    for s, i in enumerate(SRC):
        for t, j in enumerate(TGT):
            expected = float(probs[:, 0, :, pos[j], pos[i]].mean())
            assert got[s, t] == pytest.approx(expected, rel=1e-6)
    # each query's weights over all keys sum to one, so a full-context read-out has row sums 1
    full = attention(net, CTX, CTX, CTX)
    torch.testing.assert_close(full.sum(dim=0), torch.ones(len(CTX)), rtol=0, atol=1e-5)


def test_embedding_pairs_sum_and_directed_concat(net):
    pairs = embedding_pairs(net, SRC, TGT)
    emb = net.embed.weight.detach().float()
    assert pairs.sum.shape == (3, 4, 16) and pairs.concat.shape == (3, 4, 32)
    torch.testing.assert_close(pairs.sum[1, 2], emb[SRC[1]] + emb[TGT[2]])
    torch.testing.assert_close(pairs.concat[1, 2], torch.cat([emb[SRC[1]], emb[TGT[2]]]))
    with pytest.raises(AtlasgrnError):
        embedding_pairs(net, [1000], TGT)


# -- self pairs -------------------------------------------------------------------------------
def test_self_pairs_are_masked_with_nan_and_nothing_else(net):
    feats = gdt(net, CTX, SRC, TGT)
    mask = self_pair_mask(SRC, TGT)
    assert mask.tolist() == [[False] * 4, [True, False, False, False], [False] * 4]
    masked = mask_self_pairs(feats, SRC, TGT)
    assert torch.isnan(masked[1, 0]).all()
    assert torch.equal(masked[~mask], feats[~mask])
    # the reason to mask: the self-gradient dwarfs the cross-gene ones
    assert feats[1, 0].abs().mean() > 5 * feats[~mask].abs().mean()


# -- block contexts ---------------------------------------------------------------------------
def test_block_context_is_the_sorted_union_with_anchors_and_prefix():
    ctx = block_context([9, 3, 3], [4, 9], anchors=[20, 1], prefix=[30])
    assert ctx.tolist() == [30, 1, 3, 4, 9, 20]
    assert torch.equal(block_context([4, 9], [9, 3, 3], anchors=[1, 20], prefix=[30]), ctx)


def test_block_context_refuses_to_truncate():
    with pytest.raises(AtlasgrnError) as info:
        block_context(range(1, 11), range(5, 15), max_len=10)
    assert info.value.key == "max_len"


def test_a_pairs_features_do_not_depend_on_the_order_of_the_context(net):
    ctx = block_context(SRC, TGT)
    shuffled = ctx[torch.randperm(ctx.numel(), generator=torch.Generator().manual_seed(3))]
    torch.testing.assert_close(gdt(net, ctx, SRC, TGT, [0.5, 3.0]),
                               gdt(net, shuffled, SRC, TGT, [0.5, 3.0]),
                               rtol=1e-10, atol=1e-13)


# -- the real model (atlasgrn.models) ---------------------------------------------------------
@pytest.mark.parametrize("with_cls", [False, True])
def test_probes_on_the_real_tiny_model_equal_the_naive_reference(with_cls):
    model = tiny_model(seed=0, with_cls=with_cls)
    ctx, src, tgt, lev = list(range(1, 21)), [3, 8], [8, 2, 17], [0.5, 2.0, 5.0]
    for reading in ("uniform", "source"):
        fast = gdt(model, ctx, src, tgt, lev, reading=reading)
        slow = gdt_naive(model, ctx, src, tgt, lev, reading=reading)
        torch.testing.assert_close(fast.double(), slow, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(vvp(model, ctx, src, tgt, lev).double(),
                               vvp_naive(model, ctx, src, tgt, lev), rtol=1e-4, atol=1e-7)
    att = attention(model, ctx, src, tgt)
    assert att.shape == (2, 3) and bool(((att > 0) & (att < 1)).all())


def test_block_context_fill_tops_up_to_max_len_from_the_anchor_priority_list():
    ctx = block_context([9, 3], [4, 9], anchors=[20, 1, 3, 7, 20, 15], max_len=6, fill=True,
                        prefix=[30])
    assert ctx.tolist() == [30, 1, 3, 4, 9, 20]  # 3 skipped (in the block), 20 and 1 first
    short = block_context([9, 3], [4], anchors=[5], max_len=10, fill=True)
    assert short.tolist() == [3, 4, 5, 9]  # not enough anchors: shorter, never padded
    with pytest.raises(AtlasgrnError):
        block_context([1], [2], anchors=[3], fill=True)


def test_empty_source_or_target_lists_give_empty_features(net):
    assert vvp(net, CTX, [], TGT).shape == (0, 4, 8)
    assert gdt(net, CTX, SRC, [], reading="source").shape == (3, 0, 8)
    assert gdt(net, CTX, [], TGT, method="fd").shape == (0, 4, 8)
    assert pert_origin(net, CTX, torch.ones(len(CTX)), SRC, []).shape == (3, 0)
