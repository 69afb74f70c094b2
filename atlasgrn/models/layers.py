"""Building blocks of the scGPT architecture, written for atlasgrn (pure torch).

Why our own encoder layer instead of ``nn.TransformerEncoderLayer``: the probes need (a) an
explicit softmax path that ``torch.func.jvp`` can differentiate forward-mode, (b) the
attention probabilities per layer and head, and (c) the fused ``scaled_dot_product_attention``
kernel for throughput. One layer class serves all three, selected by ``impl``.
The maths is scGPT's post-norm layer (``norm_first=False``) or scGPT's "pre" scheme.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

#: Additive mask value for padded keys in the explicit path; finite so that an all-pad row
#: stays finite (it is ignored anyway) and forward-mode AD never meets inf - inf.
_NEG = -1e9


class GeneEncoder(nn.Module):
    """Gene-token embedding followed by LayerNorm (scGPT's GeneEncoder)."""

    def __init__(self, n_tokens: int, d_model: int, pad_id: int, eps: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_tokens, d_model, padding_idx=pad_id)
        self.norm = nn.LayerNorm(d_model, eps=eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.norm(self.embedding(ids))


class ContinuousValueEncoder(nn.Module):
    """Linear(1,d) -> ReLU -> Linear(d,d) -> LayerNorm -> dropout, input clamped from above."""

    def __init__(self, d_model: int, dropout: float, clamp: float, eps: float) -> None:
        super().__init__()
        self.linear1 = nn.Linear(1, d_model)
        self.linear2 = nn.Linear(d_model, d_model)
        self.norm = nn.LayerNorm(d_model, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.clamp = float(clamp)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        x = torch.clamp(values.unsqueeze(-1), max=self.clamp)
        return self.dropout(self.norm(self.linear2(F.relu(self.linear1(x)))))


class CategoryValueEncoder(nn.Module):
    """Embedding of integer value bins + LayerNorm (scGPT, ``input_emb_style="category"``).

    Values are rounded and clipped into ``[0, n_tokens)``; the input is not differentiable in
    the value, so gradient probes are meaningless for such models (VVP still works).
    """

    def __init__(self, n_tokens: int, d_model: int, eps: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_tokens, d_model)
        self.norm = nn.LayerNorm(d_model, eps=eps)

    def forward(self, values: torch.Tensor) -> torch.Tensor:
        idx = torch.round(values).long().clamp(0, self.embedding.num_embeddings - 1)
        return self.norm(self.embedding(idx))


class EncoderLayer(nn.Module):
    """Self-attention + feed-forward, scGPT's post-norm (or scGPT "pre") residual scheme."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float,
                 norm_first: bool, eps: float) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)
        self.dropout = nn.Dropout(dropout)
        self.dropout_attn = nn.Dropout(dropout)
        self.dropout_ff = nn.Dropout(dropout)
        self.attn_dropout_p = dropout
        self.norm_first = norm_first

    def attention(self, x: torch.Tensor, key_pad: torch.Tensor | None, impl: str,
                  keep_probs: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Multi-head self-attention; ``key_pad`` is True where a key is padding."""
        b, n, d = x.shape
        h = self.n_heads
        q, k, v = self.qkv(x).view(b, n, 3, h, d // h).permute(2, 0, 3, 1, 4)  # [B,H,L,dh] each
        drop = self.attn_dropout_p if self.training else 0.0
        if impl == "sdpa" and keep_probs is None:
            mask = None if key_pad is None else (~key_pad)[:, None, None, :]
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        else:
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(d // h)
            if key_pad is not None:
                scores = scores.masked_fill(key_pad[:, None, None, :], _NEG)
            probs = torch.softmax(scores.float(), dim=-1).to(v.dtype)
            if keep_probs is not None:
                keep_probs.append(probs.detach().float())
            if drop:
                probs = F.dropout(probs, drop)
            ctx = probs @ v
        return self.out(ctx.transpose(1, 2).reshape(b, n, d))

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        return self.ff2(self.dropout(F.relu(self.ff1(x))))

    def forward(self, x: torch.Tensor, key_pad: torch.Tensor | None, impl: str,
                keep_probs: list[torch.Tensor] | None = None) -> torch.Tensor:
        if self.norm_first:  # scGPT's "pre" scheme: the residual is taken after the norm
            x = self.norm1(x)
            x = x + self.dropout_attn(self.attention(x, key_pad, impl, keep_probs))
            x = self.norm2(x)
            return x + self.dropout_ff(self._ff(x))
        x = self.norm1(x + self.dropout_attn(self.attention(x, key_pad, impl, keep_probs)))
        return self.norm2(x + self.dropout_ff(self._ff(x)))


class ExprDecoder(nn.Module):
    """Per-gene value head: Linear -> LeakyReLU -> Linear -> LeakyReLU -> Linear(d, 1)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, d_model)
        self.fc2 = nn.Linear(d_model, d_model)
        self.fc3 = nn.Linear(d_model, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.fc1(x))
        x = F.leaky_relu(self.fc2(x))
        return self.fc3(x).squeeze(-1)


class MVCDecoder(nn.Module):
    """scGPT's "inner product" MVC head: value_j = <W sigmoid(Q e_j), cell_emb>."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.gene2query = nn.Linear(d_model, d_model)
        self.W = nn.Linear(d_model, d_model, bias=False)

    def forward(self, cell_emb: torch.Tensor, gene_embs: torch.Tensor) -> torch.Tensor:
        query = torch.sigmoid(self.gene2query(gene_embs))  # [B, L, d]
        return (self.W(query) @ cell_emb.unsqueeze(-1)).squeeze(-1)
