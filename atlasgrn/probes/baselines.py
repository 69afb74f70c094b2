"""The paper's baseline read-outs of the same frozen model (method.md §4).

- :func:`pert_origin`: in-silico knockout at the dataset's mean profile.
- :func:`attention`: attention from target (query) to source (key), averaged over layers and heads.
- :func:`embedding_pairs`: token embeddings of the two genes, summed (undirected) and concatenated
  (directed), as translator inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from atlasgrn.errors import AtlasgrnError
from atlasgrn.models.interface import GeneModel
from atlasgrn.probes.cells import (
    Background,
    CellMaker,
    background_vector,
    not_expressed_value,
)
from atlasgrn.probes.context import IdsLike, as_ids, pair_index
from atlasgrn.probes.execution import Precision, ProbeRunner, frozen, model_device_dtype


def pert_origin(model: GeneModel, context: IdsLike, mean_values: torch.Tensor,
                sources: IdsLike, targets: IdsLike, *, max_batch: int | None = None,
                memory_budget_bytes: int | None = None, precision: Precision = "fp32") -> torch.Tensor:
    """Knockout effect ``M(x̄)_j - M(x̄[i <- 0])_j``, ``[S, T]``.

    ``mean_values`` is the dataset's mean profile over ``context`` (same order), in the model's
    value space. "0" is the value space's not-expressed value
    (:func:`atlasgrn.probes.cells.not_expressed_value`: 0 for log1p and for scGPT bins), not the
    pad or mask value, so the knocked-out gene stays in the cell as "expressed at zero".
    A positive score means the source's expression raises the target's reconstruction.
    """
    idx = pair_index(context, sources, targets, pad_id=model.config.arch.pad_id)
    _device, dtype = model_device_dtype(model)
    if mean_values is None or torch.as_tensor(mean_values).dim() != 1:
        raise AtlasgrnError("pert_origin needs the mean profile as one value per context token",
                            key="mean_values", remedy="pass a 1-D tensor aligned with the context")
    mean, _ = background_vector(model.config.values, mean_values, idx.length, dtype)
    zero = torch.tensor([not_expressed_value(model.config.values)], dtype=dtype)
    usrc, inverse = torch.unique(idx.source_pos, return_inverse=True)
    maker = CellMaker(mean, usrc, zero)  # rows (s,)
    with ProbeRunner(model, idx.context, max_batch=max_batch,
                     memory_budget_bytes=memory_budget_bytes, precision=precision) as runner:
        intact = runner.forward(lambda a, b: mean[None], 1, idx.target_pos)
        knocked = runner.forward(maker, maker.n, idx.target_pos)
    return (intact - knocked)[inverse].contiguous()


def attention(model: GeneModel, context: IdsLike, sources: IdsLike, targets: IdsLike,
              background: Background = None) -> torch.Tensor:
    """Attention from j's token (query) to i's token (key), mean over layers and heads: ``[S, T]``.

    The cell fed to the model is the background cell (scalar or profile, as for VVP), so the
    read-out is as dataset-free as the paper's unless a profile is given.
    """
    idx = pair_index(context, sources, targets, pad_id=model.config.arch.pad_id)
    device, dtype = model_device_dtype(model)
    values, _ = background_vector(model.config.values, background, idx.length, dtype)
    with frozen(model), torch.no_grad():
        probs = model.attention_weights(idx.context[None].to(device), values[None].to(device))
    if probs.dim() != 5 or probs.shape[1] != 1 or probs.shape[-1] != idx.length:
        raise AtlasgrnError(f"attention_weights returned shape {tuple(probs.shape)}, expected "
                            f"[n_layers, 1, n_heads, {idx.length}, {idx.length}]",
                            key="attention_weights", remedy="fix the model's attention_weights")
    mean = probs[:, 0].float().mean(dim=(0, 1)).cpu()  # [L (query), L (key)]
    return mean[idx.target_pos][:, idx.source_pos].T.contiguous()


@dataclass(frozen=True)
class PairEmbeddings:
    """Embedding read-outs of gene pairs: ``sum`` ``[S, T, d]`` (E_i + E_j, undirected) and
    ``concat`` ``[S, T, 2d]`` ([E_i; E_j], directed: source first)."""

    sum: torch.Tensor
    concat: torch.Tensor


def gene_embeddings(model: GeneModel, ids: IdsLike, *, key: str = "ids") -> torch.Tensor:
    """Token embeddings ``[n, d]`` (float32, CPU) of token ids checked against the vocabulary.

    The one read of the embedding table behind :func:`embedding_pairs`, so features gathered
    per pair from it equal the ones computed per block, bit for bit.
    """
    tokens = as_ids(ids, key=key)
    vocab_size = model.config.arch.vocab_size
    if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= vocab_size):
        raise AtlasgrnError(f"token ids outside the vocabulary [0, {vocab_size})", key=key,
                            remedy="map gene symbols with model.vocab first")
    device, _dtype = model_device_dtype(model)
    with frozen(model), torch.no_grad():
        return model.gene_embeddings(tokens.to(device)).float().cpu()


def embedding_pairs(model: GeneModel, sources: IdsLike, targets: IdsLike) -> PairEmbeddings:
    """Token-embedding features of every (source, target) pair (no context involved)."""
    e_src = gene_embeddings(model, sources, key="sources")
    e_tgt = gene_embeddings(model, targets, key="targets")
    n_s, n_t, d = e_src.shape[0], e_tgt.shape[0], e_src.shape[-1]
    a = e_src[:, None, :].expand(n_s, n_t, d)
    b = e_tgt[None, :, :].expand(n_s, n_t, d)
    return PairEmbeddings(sum=a + b, concat=torch.cat([a, b], dim=-1))
