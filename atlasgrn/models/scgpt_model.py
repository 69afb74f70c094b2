"""The scGPT-architecture model behind the :class:`~atlasgrn.models.interface.GeneModel` contract.

One class serves natively pre-trained atlasgrn models and imported scGPT checkpoints: the
probes get token ids and values in, the reconstructed value of every input gene out.
When the architecture has a ``<cls>`` token (imported scGPT models were trained with one at
position 0), the model prepends it itself (value 0, as scGPT's tokenizer does) and strips it
from every output, so callers never see it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from .interface import ArchConfig, AttentionImpl, ModelConfig
from .layers import (
    CategoryValueEncoder,
    ContinuousValueEncoder,
    EncoderLayer,
    ExprDecoder,
    GeneEncoder,
    MVCDecoder,
)
from .precision import wants_model_autocast

_IMPLS = ("sdpa", "math")


class ScGPTModel(nn.Module):
    """scGPT's encoder-decoder for masked value reconstruction (see module docstring)."""

    def __init__(self, config: ModelConfig, vocab: Mapping[str, int]) -> None:
        super().__init__()
        a: ArchConfig = config.arch
        self.config = config
        self.vocab: Mapping[str, int] = dict(vocab)
        self.gene_encoder = GeneEncoder(a.vocab_size, a.d_model, a.pad_id, a.layer_norm_eps)
        if a.value_encoder == "continuous":
            self.value_encoder: nn.Module = ContinuousValueEncoder(
                a.d_model, a.dropout, a.value_clamp, a.layer_norm_eps)
        elif a.value_encoder == "category":
            if not a.n_value_tokens:
                raise ValueError("category value encoder needs arch.n_value_tokens")
            self.value_encoder = CategoryValueEncoder(a.n_value_tokens, a.d_model,
                                                      a.layer_norm_eps)
        else:
            raise ValueError(f"unknown value_encoder {a.value_encoder!r}")
        self.layers = nn.ModuleList(
            EncoderLayer(a.d_model, a.n_heads, a.d_ff, a.dropout, a.norm_first, a.layer_norm_eps)
            for _ in range(a.n_layers))
        self.decoder = ExprDecoder(a.d_model)
        self.mvc = MVCDecoder(a.d_model) if a.mvc else None
        self._impl: AttentionImpl = "sdpa"
        self.eval()

    # ----------------------------------------------------------------- the contract
    @contextmanager
    def attention_impl(self, impl: AttentionImpl) -> Iterator[None]:
        """Within the block attention uses ``impl`` ("math": explicit softmax, JVP-safe)."""
        if impl not in _IMPLS:
            raise ValueError(f"attention impl must be one of {_IMPLS}, not {impl!r}")
        previous, self._impl = self._impl, impl
        try:
            yield
        finally:
            self._impl = previous

    def forward(self, gene_ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Reconstructed value of every input gene, FloatTensor[B, L] (float32)."""
        hidden, n_prefix = self._encode(gene_ids, values, None)
        with self._autocast(hidden.device):
            pred = self.decoder(hidden)
        return pred[:, n_prefix:].float()

    def gene_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings after the gene encoder's LayerNorm, ``[..., d_model]``."""
        return self.gene_encoder(ids)

    def attention_weights(self, gene_ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Attention probabilities ``[n_layers, B, n_heads, L, L]`` over the input genes.

        Computed with the explicit path. With an internal ``<cls>`` token its row and column are
        removed, so rows sum to 1 minus the weight each query put on ``<cls>``.
        """
        probs: list[torch.Tensor] = []
        with torch.no_grad():
            _, n_prefix = self._encode(gene_ids, values, probs)
        return torch.stack(probs)[:, :, :, n_prefix:, n_prefix:]

    # ----------------------------------------------------------------- extras
    def encode(self, gene_ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Last-layer hidden states of the input genes, ``[B, L, d_model]``."""
        hidden, n_prefix = self._encode(gene_ids, values, None)
        return hidden[:, n_prefix:].float()

    def mvc_predict(self, gene_ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """scGPT's MVC read-out (cell embedding = ``<cls>`` state) for every input gene."""
        if self.mvc is None or self.config.arch.cls_token_id is None:
            raise ValueError("this model has no MVC head with a <cls> cell embedding")
        hidden, n_prefix = self._encode(gene_ids, values, None)
        ids = self._with_prefix(gene_ids, values)[0]
        with self._autocast(hidden.device):
            pred = self.mvc(hidden[:, 0], self.gene_encoder(ids))
        return pred[:, n_prefix:].float()

    @property
    def device(self) -> torch.device:
        return self.gene_encoder.embedding.weight.device

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def describe(self) -> dict[str, Any]:
        a = self.config.arch
        return {"d_model": a.d_model, "n_layers": a.n_layers, "n_heads": a.n_heads,
                "vocab_size": a.vocab_size, "parameters": self.n_parameters(),
                "value_space": self.config.values.kind}

    # ----------------------------------------------------------------- internals
    def _autocast(self, device: torch.device):
        if not wants_model_autocast(device, self.config.arch.autocast_bf16):
            # an explicit disabled region would also switch off a caller's outer autocast
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def _with_prefix(self, gene_ids: torch.Tensor, values: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, int]:
        cls_id = self.config.arch.cls_token_id
        if cls_id is None:
            return gene_ids, values, 0
        b = gene_ids.shape[0]
        cls_ids = torch.full((b, 1), cls_id, dtype=gene_ids.dtype, device=gene_ids.device)
        cls_vals = torch.zeros((b, 1), dtype=values.dtype, device=values.device)
        return torch.cat([cls_ids, gene_ids], 1), torch.cat([cls_vals, values], 1), 1

    def _encode(self, gene_ids: torch.Tensor, values: torch.Tensor,
                keep_probs: list[torch.Tensor] | None) -> tuple[torch.Tensor, int]:
        if gene_ids.dim() != 2 or gene_ids.shape != values.shape:
            raise ValueError(f"gene_ids {tuple(gene_ids.shape)} and values "
                             f"{tuple(values.shape)} must both be [B, L]")
        if gene_ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"gene_ids must be an integer tensor, not {gene_ids.dtype}")
        ids, vals, n_prefix = self._with_prefix(gene_ids.long(), values.float())
        key_pad = ids == self.config.arch.pad_id
        if not bool(key_pad.any()):
            key_pad = None
        with self._autocast(ids.device):
            x = self.gene_encoder(ids) + self.value_encoder(vals)
            for layer in self.layers:
                x = layer(x, key_pad, self._impl, keep_probs)
        return x, n_prefix
