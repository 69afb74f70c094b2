"""Probes: turn a frozen gene model into per-pair features (pure torch; no Ray, no Zarr).

- :func:`vvp` — Virtual Value Perturbation, ``[S, T, M]``;
- :func:`gdt` — Gradient Trajectory, ``[S, T, K]`` (readings "uniform" and "source"; exact AD by
  default, central differences as an option);
- baselines :func:`pert_origin`, :func:`attention`, :func:`embedding_pairs`;
- :func:`block_context` — the context of a gene-pair block; :func:`mask_self_pairs` /
  :func:`self_pair_mask` — keep i == j out of summaries.

Imported eagerly, unlike the lazy packages (``atlasgrn.lazy``): the functions ``vvp`` and ``gdt``
share their submodules' names, and a lazy export would return the submodule once it is loaded.

All outputs are indexed ``[source, target, ...]`` by the order of the ``sources`` and ``targets``
given (token ids that must occur in ``context``). See docs/probes.md.
"""

from __future__ import annotations

from atlasgrn.probes.baselines import (
                                       PairEmbeddings,
                                       attention,
                                       embedding_pairs,
                                       gene_embeddings,
                                       pert_origin,
)
from atlasgrn.probes.cells import not_expressed_value, uniform_cells
from atlasgrn.probes.context import PairIndex, block_context, pair_index
from atlasgrn.probes.gdt import default_fd_step, gdt
from atlasgrn.probes.masks import mask_self_pairs, self_pair_mask
from atlasgrn.probes.vvp import vvp

__all__ = [
    "PairEmbeddings", "PairIndex", "attention", "block_context", "default_fd_step",
    "embedding_pairs", "gdt", "gene_embeddings", "mask_self_pairs", "not_expressed_value",
    "pair_index", "pert_origin", "self_pair_mask", "uniform_cells", "vvp",
]
