"""Small models that implement ``atlasgrn.models.interface.GeneModel`` for the probe tests.

Two models with opposite virtues:

- :class:`LinearGeneModel` reconstructs ``W v`` (``W`` indexed by token id), so every probe has a
  closed-form answer (GDT = ``W[j, i]``, VVP = ``(x - b) W[j, i]``): it pins the indexing and the
  sign conventions of the probes.
- :class:`ProbeTransformer` is a scGPT-shaped encoder (gene embedding + continuous value encoder,
  post-norm self-attention layers with an explicit-softmax "math" path and a fused "sdpa" path,
  MLP value decoder) with smooth activations, so finite differences converge in fp64: it pins the
  exact-vs-FD and vectorised-vs-naive equalities on a genuinely nonlinear model.

Both treat batch rows independently (no batch statistics), which the probes rely on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F

from atlasgrn.models.interface import ArchConfig, AttentionImpl, ModelConfig, ValueSpace

PAD_ID = 0


def log1p_space(background: float = 0.1) -> ValueSpace:
    """A log1p-cp10k value space with 8-point grids, like the default model's."""
    grid = tuple(float(x) for x in torch.linspace(0.5, 4.0, 8).tolist())
    return ValueSpace(kind="log1p_cp10k", min=0.0, max=6.0, background=background,
                      pad_value=-2.0, mask_value=-1.0, vvp_grid=grid, gdt_levels=grid)


def _vocab(n: int) -> dict[str, int]:
    vocab = {"<pad>": PAD_ID}
    vocab.update({f"G{k}": k for k in range(1, n)})
    return vocab


class LinearGeneModel(nn.Module):
    """Reconstruction ``out[b, l] = sum_k W[id_l, id_k] * v[b, k]``: a model with known Jacobian."""

    def __init__(self, vocab_size: int = 40, d_model: int = 8, seed: int = 0,
                 dtype: torch.dtype = torch.float64, values: ValueSpace | None = None) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = nn.Parameter(torch.randn(vocab_size, vocab_size, generator=g, dtype=dtype))
        self.emb = nn.Parameter(torch.randn(vocab_size, d_model, generator=g, dtype=dtype))
        self.vocab = _vocab(vocab_size)
        self.config = ModelConfig(
            arch=ArchConfig(vocab_size=vocab_size, d_model=d_model, n_layers=1, n_heads=1,
                            d_ff=d_model),
            values=values or log1p_space())

    def forward(self, gene_ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        sub = self.W[gene_ids.unsqueeze(-1), gene_ids.unsqueeze(-2)]  # [B, L, L] (row j, col i)
        return torch.einsum("bjk,bk->bj", sub, values.to(sub.dtype))

    def gene_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        return self.emb[ids]

    def attention_weights(self, gene_ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """One layer, one head: row-softmax of ``W`` restricted to the context (query j, key i)."""
        sub = self.W[gene_ids.unsqueeze(-1), gene_ids.unsqueeze(-2)]
        return torch.softmax(sub, dim=-1)[None, :, None]  # [1, B, 1, L, L]

    @contextmanager
    def attention_impl(self, impl: AttentionImpl) -> Iterator[None]:
        yield


class _Layer(nn.Module):
    def __init__(self, d: int, heads: int, d_ff: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d, 3 * d, dtype=dtype)
        self.out = nn.Linear(d, d, dtype=dtype)
        self.ln1 = nn.LayerNorm(d, dtype=dtype)
        self.ff1 = nn.Linear(d, d_ff, dtype=dtype)
        self.ff2 = nn.Linear(d_ff, d, dtype=dtype)
        self.ln2 = nn.LayerNorm(d, dtype=dtype)

    def forward(self, x: torch.Tensor, pad: torch.Tensor, impl: str,
                keep: list[torch.Tensor] | None = None) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        allowed = ~pad[:, None, None, :]  # keys that are not padding
        if impl == "sdpa" and keep is None:
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
        else:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
            scores = scores.masked_fill(~allowed, float("-inf"))
            probs = torch.softmax(scores, dim=-1)
            if keep is not None:
                keep.append(probs)
            att = probs @ v
        x = self.ln1(x + self.out(att.transpose(1, 2).reshape(b, n, d)))
        return self.ln2(x + self.ff2(F.gelu(self.ff1(x))))


class ProbeTransformer(nn.Module):
    """scGPT-shaped nonlinear model with explicit attention (random weights, smooth activations)."""

    def __init__(self, vocab_size: int = 64, d_model: int = 32, n_layers: int = 2, n_heads: int = 4,
                 d_ff: int = 64, seed: int = 0, dtype: torch.dtype = torch.float64,
                 values: ValueSpace | None = None, init_scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=PAD_ID, dtype=dtype)
        self.embed_ln = nn.LayerNorm(d_model, dtype=dtype)
        self.val1 = nn.Linear(1, d_model, dtype=dtype)
        self.val2 = nn.Linear(d_model, d_model, dtype=dtype)
        self.val_ln = nn.LayerNorm(d_model, dtype=dtype)
        self.layers = nn.ModuleList(_Layer(d_model, n_heads, d_ff, dtype) for _ in range(n_layers))
        self.dec1 = nn.Linear(d_model, d_model, dtype=dtype)
        self.dec2 = nn.Linear(d_model, 1, dtype=dtype)
        if init_scale != 1.0:
            with torch.no_grad():
                for p in self.parameters():
                    p.mul_(init_scale)
        self._impl: str = "sdpa"
        self.vocab = _vocab(vocab_size)
        self.config = ModelConfig(
            arch=ArchConfig(vocab_size=vocab_size, d_model=d_model, n_layers=n_layers,
                            n_heads=n_heads, d_ff=d_ff),
            values=values or log1p_space())

    def _encode(self, gene_ids: torch.Tensor, values: torch.Tensor,
                keep: list[torch.Tensor] | None = None) -> torch.Tensor:
        dtype = self.val1.weight.dtype
        val = values.to(dtype).unsqueeze(-1)
        x = self.embed_ln(self.embed(gene_ids)) + self.val_ln(self.val2(F.gelu(self.val1(val))))
        pad = gene_ids == PAD_ID
        for layer in self.layers:
            x = layer(x, pad, self._impl, keep)
        return x

    def forward(self, gene_ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        x = self._encode(gene_ids, values)
        return self.dec2(F.gelu(self.dec1(x))).squeeze(-1)

    def gene_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed(ids)

    def attention_weights(self, gene_ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        keep: list[torch.Tensor] = []
        with torch.no_grad():
            self._encode(gene_ids, values, keep)
        return torch.stack(keep)

    @contextmanager
    def attention_impl(self, impl: AttentionImpl) -> Iterator[None]:
        before, self._impl = self._impl, impl
        try:
            yield
        finally:
            self._impl = before
