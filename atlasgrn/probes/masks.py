"""Self pairs (i == j) out of the way.

A gene's response to itself is 100-1000x larger than any cross-gene response and correlates with
gene identity (e.g. "is a TF"); left in a normalisation or a summary it swamps the regulatory
signal and leaks identity into the scores (method.md §7). These helpers make excluding it easy.
"""

from __future__ import annotations

import torch

from atlasgrn.probes.context import IdsLike, as_ids


def self_pair_mask(sources: IdsLike, targets: IdsLike) -> torch.Tensor:
    """BoolTensor[S, T], True where source and target are the same token."""
    src = as_ids(sources, key="sources")
    tgt = as_ids(targets, key="targets")
    return src[:, None] == tgt[None, :]


def mask_self_pairs(features: torch.Tensor, sources: IdsLike, targets: IdsLike,
                    fill: float = float("nan")) -> torch.Tensor:
    """A copy of ``features`` (``[S, T, ...]``) with every self pair set to ``fill`` (NaN).

    NaN makes any later reduction that forgets the mask visibly wrong instead of silently biased;
    use ``torch.nanmean`` / ``nanquantile`` for statistics over the cross-gene pairs.
    """
    mask = self_pair_mask(sources, targets).to(features.device)
    out = features.clone()
    out[mask] = fill
    return out
