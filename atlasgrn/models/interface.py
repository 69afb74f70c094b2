"""The small interface every foundation model in atlasgrn implements (pure torch).

Probes, pre-training and the engine only talk to a model through this: token ids and values in,
the reconstructed value of every input gene out. Keeping it this narrow is what lets a native
model and an imported scGPT checkpoint share one probe code path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import torch

AttentionImpl = Literal["sdpa", "math"]


@dataclass(frozen=True)
class ValueSpace:
    """How expression values are represented at the model's input and output.

    ``kind``: "log1p_cp10k" (per-cell depth-normalised to 1e4 then log1p; continuous) or
    "binned" (scGPT: per-cell quantile bin index, 0 = not expressed, up to n_bins-1).
    ``background`` is the value of every unperturbed gene of a virtual cell; it is never the
    pad or mask value. ``vvp_grid`` and ``gdt_levels`` are the probes' defaults.
    """

    kind: str
    min: float
    max: float
    background: float
    pad_value: float
    mask_value: float
    vvp_grid: tuple[float, ...]
    gdt_levels: tuple[float, ...]
    n_bins: int | None = None


@dataclass(frozen=True)
class ArchConfig:
    """Architecture sizes (scGPT's: gene embedding + value encoder, encoder, value decoder)."""

    vocab_size: int
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 256
    dropout: float = 0.0
    pad_id: int = 0
    max_len: int = 1600
    value_encoder: Literal["continuous", "category"] = "continuous"
    mvc: bool = False
    norm_first: bool = False
    cls_token_id: int | None = None
    # Additions (backwards compatible defaults):
    #: Continuous value encoder input clamp (scGPT's ContinuousValueEncoder ``max_value``).
    value_clamp: float = 512.0
    #: Rows of the category value encoder (binned inputs, ``value_encoder="category"``).
    n_value_tokens: int | None = None
    layer_norm_eps: float = 1e-5
    #: Run matmuls in bfloat16 autocast when the model sits on a CUDA device.
    autocast_bf16: bool = True


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild and use a model; serialised as ``config.json``."""

    arch: ArchConfig
    values: ValueSpace
    provenance: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class GeneModel(Protocol):
    """What probes and the engine may rely on."""

    vocab: Mapping[str, int]
    config: ModelConfig

    def __call__(self, gene_ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``gene_ids`` LongTensor[B, L], ``values`` FloatTensor[B, L] -> FloatTensor[B, L]."""
        ...

    def gene_embeddings(self, ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings of ``ids`` (any shape) -> [..., d_model]."""
        ...

    def attention_weights(self, gene_ids: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Attention probabilities, FloatTensor[n_layers, B, n_heads, L, L] (query, key)."""
        ...

    def attention_impl(self, impl: AttentionImpl) -> AbstractContextManager[None]:
        """Within the block, attention uses ``impl``: "math" is an explicit softmax path that
        supports forward-mode AD (JVP), "sdpa" the fused kernel (the default)."""
        ...

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...
