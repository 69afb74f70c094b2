"""The scGPT-architecture model honours the GeneModel contract (shapes, paths, determinism)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from atlasgrn.models import GeneModel
from atlasgrn.models.testing import tiny_model


def _inputs(seed: int = 0, b: int = 3, n: int = 20):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 51, (b, n), generator=g)
    vals = torch.rand(b, n, generator=g) * 5
    return ids, vals


def test_forward_returns_one_value_per_input_gene():
    model = tiny_model(0)
    ids, vals = _inputs()
    out = model(ids, vals)
    assert out.shape == ids.shape and out.dtype == torch.float32
    assert isinstance(model, GeneModel)
    assert model.gene_embeddings(ids).shape == (*ids.shape, 32)


def test_math_and_sdpa_attention_agree():
    model = tiny_model(1)
    ids, vals = _inputs(1)
    ids[1, 12:] = 0  # padding exercises the key mask in both paths
    fused = model(ids, vals)
    with model.attention_impl("math"):
        explicit = model(ids, vals)
    assert model._impl == "sdpa"  # restored after the block
    torch.testing.assert_close(fused[:, :12], explicit[:, :12], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fused[0], explicit[0], atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_real_gene_outputs():
    model = tiny_model(2)
    ids, vals = _inputs(2, b=1, n=10)
    padded_ids = torch.cat([ids, torch.zeros(1, 6, dtype=torch.long)], 1)
    padded_vals = torch.cat([vals, torch.full((1, 6), -2.0)], 1)
    torch.testing.assert_close(model(ids, vals), model(padded_ids, padded_vals)[:, :10],
                               atol=1e-5, rtol=1e-5)


def test_jvp_through_math_path_matches_finite_difference():
    model = tiny_model(3)
    ids, vals = _inputs(3, b=1, n=12)
    tangent = torch.zeros_like(vals)
    tangent[0, 4] = 1.0
    with model.attention_impl("math"):
        _, jvp_out = torch.func.jvp(lambda v: model(ids, v), (vals,), (tangent,))
        eps = 1e-3
        fd = (model(ids, vals + eps * tangent) - model(ids, vals - eps * tangent)) / (2 * eps)
    torch.testing.assert_close(jvp_out.detach(), fd.detach(), atol=2e-3, rtol=2e-2)
    assert jvp_out[0, 4].abs() > 0


def test_attention_weights_are_probabilities_per_layer_and_head():
    model = tiny_model(4, n_layers=3)
    ids, vals = _inputs(4, b=2, n=15)
    ids[1, 10:] = 0
    att = model.attention_weights(ids, vals)
    assert att.shape == (3, 2, 4, 15, 15)
    torch.testing.assert_close(att.sum(-1), torch.ones(3, 2, 4, 15), atol=1e-5, rtol=0)
    assert float(att[:, 1, :, :, 10:].abs().max()) < 1e-6  # nobody attends to padding


def test_cls_token_is_prepended_internally_and_hidden():
    model = tiny_model(5, with_cls=True)
    ids, vals = _inputs(5)
    assert model(ids, vals).shape == ids.shape
    assert model.attention_weights(ids, vals).shape[-2:] == (20, 20)


def test_same_seed_same_weights_and_different_seed_differs():
    a, b, c = tiny_model(7), tiny_model(7), tiny_model(8)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.layers[0].qkv.weight, c.layers[0].qkv.weight)


def test_eval_mode_is_deterministic_with_dropout_configured():
    model = tiny_model(6)
    model.layers[0].dropout.p = 0.5  # dropout exists but eval mode must switch it off
    ids, vals = _inputs(6)
    assert torch.equal(model(ids, vals), model(ids, vals))


_SCRIPT = """
import torch
from atlasgrn.models.testing import tiny_model
m = tiny_model(11)
g = torch.Generator().manual_seed(0)
ids = torch.randint(1, 51, (4, 30), generator=g); vals = torch.rand(4, 30, generator=g) * 5
print(m(ids, vals).detach().double().numpy().tobytes().hex())
"""


def test_outputs_are_bit_identical_across_processes():
    runs = [subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0]) > 100


def test_unknown_attention_impl_is_refused():
    model = tiny_model(0)
    with pytest.raises(ValueError, match="attention impl"):
        with model.attention_impl("flash"):  # type: ignore[arg-type]
            pass
