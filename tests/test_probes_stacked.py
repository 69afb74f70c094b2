"""Blocks probed as one stacked batch: the same bits as one at a time, a failing block kept apart,
bf16 GDT within its validated tolerance, and the analytic FLOP count against torch's counter."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from atlasgrn.errors import AtlasgrnError
from atlasgrn.features import FeatureSpec
from atlasgrn.features.compute import BlockRequest, block_features, blocks_features
from atlasgrn.models.testing import tiny_model
from atlasgrn.probes import block_context, gdt, vvp
from atlasgrn.probes.execution import ProbeRunner
from atlasgrn.probes.flops import flops_per_cell, probe_flops
from atlasgrn.probes.gdt import gdt_stacked
from atlasgrn.probes.stack import stack_blocks
from atlasgrn.probes.vvp import vvp_stacked

GENES = [f"G{i}" for i in range(60)]


@pytest.fixture(scope="module")
def model():
    return tiny_model(seed=7, genes=GENES, d_model=32, n_layers=2, n_heads=4, d_ff=64)


def _blocks(model, n: int, n_src: int = 3, n_tgt: int = 7, length: int = 24):
    """``n`` blocks of one shape over different genes, contexts filled with anchors."""
    ids = torch.tensor([model.vocab[g] for g in GENES])
    out = []
    for b in range(n):
        src = ids[b * n_src:(b + 1) * n_src]
        tgt = ids[20 + b * n_tgt:20 + (b + 1) * n_tgt]
        ctx = block_context(src, tgt, anchors=ids.flip(0), max_len=length, fill=True)
        out.append((ctx, src, tgt))
    return out


@pytest.mark.parametrize("probe", ["vvp", "gdt_uniform_vjp", "gdt_uniform_jvp", "gdt_source"])
@pytest.mark.parametrize("background", ["scalar", "profile"])
def test_a_stacked_block_is_bit_identical_to_the_block_alone_in_fp32(model, probe, background):
    blocks = _blocks(model, 3)
    gen = torch.Generator().manual_seed(1)
    profiles = [torch.rand(24, generator=gen) * 3 + 0.1 for _ in blocks]
    bgs = [0.0] * 3 if background == "scalar" else profiles
    levels = model.config.values.gdt_levels[:3]

    def run(members):
        stack = stack_blocks(model, [blocks[i][0] for i in members],
                             [blocks[i][1] for i in members], [blocks[i][2] for i in members],
                             [bgs[i] for i in members])
        if probe == "vvp":
            return vvp_stacked(model, stack)
        reading = "source" if probe == "gdt_source" else "uniform"
        mode = probe.rsplit("_", 1)[-1] if reading == "uniform" else "auto"
        # max_batch 5 makes the chunks straddle blocks, and differ between the two runs
        return gdt_stacked(model, stack, levels, reading, uniform_mode=mode, max_batch=5)

    together = run([0, 1, 2])
    assert together.dtype == torch.float32 and together.shape[:3] == (3, 3, 7)
    for i in range(3):
        alone = run([i])[0]
        assert torch.equal(together[i], alone), f"block {i}"
    # and the public one-block probes are the stack of one
    ctx, src, tgt = blocks[1]
    if probe == "vvp":
        assert torch.equal(vvp(model, ctx, src, tgt, background=bgs[1]), together[1])


def test_stacking_refuses_blocks_of_different_shapes(model):
    a, b = _blocks(model, 1)[0], _blocks(model, 1, n_tgt=5)[0]
    with pytest.raises(AtlasgrnError, match="different shapes"):
        stack_blocks(model, [a[0], b[0]], [a[1], b[1]], [a[2], b[2]], [0.0, 0.0])


def _spec(model, **kw) -> FeatureSpec:
    return FeatureSpec.for_model(model, context_len=24, source_block=3, target_block=7,
                                 kinds=("vvp", "gdt_uniform", "gdt_source", "emb_sum"), **kw)


def _requests(n_ok: int) -> list[BlockRequest]:
    anchors = tuple(reversed(GENES))
    return [BlockRequest(tuple(GENES[b * 3:b * 3 + 3]), tuple(GENES[20 + b * 7:27 + b * 7]),
                         anchors) for b in range(n_ok)]


def test_a_failing_block_fails_alone_and_the_others_equal_their_unbatched_features(model):
    spec = _spec(model)
    good = _requests(3)
    bad = BlockRequest(("G1", "NOT_A_GENE", "G2"), good[0].targets, good[0].anchors)
    # a block whose profile is not finite fails inside the stacked probes, not while preparing
    spec_p = _spec(model, background="profile")
    nan_profile = {g: float("nan") if g == "G40" else 1.0 for g in GENES}
    fine_profile = {g: 1.0 + 0.01 * i for i, g in enumerate(GENES)}
    for use_spec, requests, bad_at in (
            (spec, [good[0], bad, good[1], good[2]], 1),
            (spec_p, [BlockRequest(r.sources, r.targets, r.anchors, fine_profile) for r in good]
             + [BlockRequest(good[0].sources, ("G40",) + good[0].targets[1:], good[0].anchors,
                             nan_profile)], 3)):
        results = blocks_features(model, use_spec, requests)
        assert isinstance(results[bad_at], Exception)
        for i, (req, res) in enumerate(zip(requests, results)):
            if i == bad_at:
                continue
            alone = block_features(model, use_spec, req.sources, req.targets, req.anchors,
                                   req.profile)
            assert set(res.features) == set(use_spec.kinds)
            for kind in use_spec.kinds:
                np.testing.assert_array_equal(res.features[kind], alone.features[kind])
            assert res.flops == alone.flops > 0


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_gdt_agrees_with_fp32_and_vvp_is_never_reduced(model, precision):
    """The engine's reduced precisions are GDT only; on this small model they keep r > 0.99
    (the bundled model's gate is r >= 0.999 and a top-1% edge overlap >= 0.99:
    benchmarks/check_precision.py, docs/probes.md)."""
    spec = _spec(model)
    req = _requests(2)
    full = blocks_features(model, spec, req)
    half = blocks_features(model, spec, req, gdt_precision=precision)
    for f, h in zip(full, half):
        np.testing.assert_array_equal(f.features["vvp"], h.features["vvp"])
        for kind in ("gdt_uniform", "gdt_source"):
            x, y = f.features[kind].ravel(), h.features[kind].ravel()
            assert not np.array_equal(x, y)  # the reduced precision really ran
            assert np.corrcoef(x, y)[0, 1] > 0.99, kind


def test_analytic_forward_flops_match_torchs_counter(model):
    arch = model.config.arch
    ctx, src, tgt = _blocks(model, 1, length=40)[0]
    runner = ProbeRunner(model, ctx)
    cells = torch.rand(6, 40)
    # the explicit attention path: torch's counter has no formula for the fused CPU kernel
    with runner, torch.no_grad(), model.attention_impl("math"), \
            FlopCounterMode(display=False) as counter:
        runner.call(cells)
    counted = counter.get_total_flops()
    analytic = 6 * flops_per_cell(arch, 40).forward
    assert abs(counted - analytic) / analytic < 0.05, (counted, analytic)
    # a block's VVP is S*M + 1 forwards
    assert probe_flops(arch, 40, "vvp", 3, 7, 4) == (3 * 4 + 1) * flops_per_cell(arch, 40).forward


def test_exact_gdt_keeps_the_one_block_api_for_repeated_genes(model):
    ctx, src, tgt = _blocks(model, 1)[0]
    rep = torch.cat([src, src[:1]])
    out = gdt(model, ctx, rep, tgt, reading="uniform")
    assert torch.equal(out[-1], out[0])


def test_bf16_stacked_gdt_matches_bf16_one_block_at_a_time(model):
    blocks = _blocks(model, 3)

    def run(members):
        stack = stack_blocks(model, [blocks[i][0] for i in members],
                             [blocks[i][1] for i in members], [blocks[i][2] for i in members],
                             [0.0] * len(members))
        return gdt_stacked(model, stack, model.config.values.gdt_levels[:3], "uniform",
                           precision="bf16")

    together = run([0, 1, 2])
    for i in range(3):
        torch.testing.assert_close(together[i], run([i])[0], rtol=1e-2, atol=1e-5)
