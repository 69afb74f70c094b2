"""Virtual Value Perturbation (method.md §2.1): dose-response of every target to each source.

``e_ij[m] = M(v[i <- x_m])_j - M(v)_j`` where ``v`` is the background cell (every context gene at
the background, or a per-gene background profile) and ``v[i <- x]`` sets source ``i`` to ``x``.
All (source, grid value) cells go through the model in batched forwards; each forward yields the
response of every target at once, so the cost is ``S * M + 1`` cell-forwards for ``S * T`` pairs.
:func:`vvp_stacked` does the same for a stack of blocks in shared model calls; :func:`vvp` is its
one-block case.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from atlasgrn.models.interface import GeneModel
from atlasgrn.probes.cells import Background, CellMaker, background_vector, value_list
from atlasgrn.probes.context import IdsLike, pair_index
from atlasgrn.probes.execution import Precision, ProbeRunner, model_device_dtype
from atlasgrn.probes.stack import BlockStack


def vvp(model: GeneModel, context: IdsLike, sources: IdsLike, targets: IdsLike,
        grid: Sequence[float] | torch.Tensor | None = None, background: Background = None, *,
        max_batch: int | None = None, memory_budget_bytes: int | None = None,
        precision: Precision = "fp32") -> torch.Tensor:
    """VVP features ``[S, T, M]`` (source, target, grid value), fp32 (fp64 for an fp64 model).

    ``grid`` defaults to ``model.config.values.vvp_grid`` and ``background`` to the value space's
    background; ``background`` may also be a per-gene profile aligned with ``context`` (a
    dataset's mean profile), making the features dataset-specific (method.md §2.4). Self pairs
    (i == j) are computed like any other; mask them with :func:`mask_self_pairs` before summaries.
    """
    idx = pair_index(context, sources, targets, pad_id=model.config.arch.pad_id)
    _device, dtype = model_device_dtype(model)
    base, scalar = background_vector(model.config.values, background, idx.length, dtype)
    usrc, inverse = torch.unique(idx.source_pos, return_inverse=True)
    stack = BlockStack(contexts=idx.context[None], source_pos=usrc[None],
                       target_pos=idx.target_pos[None], backgrounds=base[None], scalar=scalar)
    out = vvp_stacked(model, stack, grid, max_batch=max_batch,
                      memory_budget_bytes=memory_budget_bytes, precision=precision)
    return out[0][inverse].contiguous()


def vvp_stacked(model: GeneModel, stack: BlockStack,
                grid: Sequence[float] | torch.Tensor | None = None, *,
                max_batch: int | None = None, memory_budget_bytes: int | None = None,
                precision: Precision = "fp32") -> torch.Tensor:
    """VVP features of every block of ``stack``: ``[B, S, T, M]``, from shared model calls."""
    _device, dtype = model_device_dtype(model)
    xs = value_list(grid, model.config.values.vvp_grid, key="grid", dtype=dtype)
    maker = CellMaker(stack.backgrounds, stack.source_pos, xs)  # rows (b, s, m)
    n_b, n_s, n_t = stack.n_blocks, stack.source_pos.shape[1], stack.target_pos.shape[1]
    with ProbeRunner(model, stack.contexts, max_batch=max_batch,
                     memory_budget_bytes=memory_budget_bytes, precision=precision) as runner:
        reference = runner.forward(lambda a, b: stack.backgrounds[a:b], n_b, stack.target_pos,
                                   row_ctx=torch.arange(n_b))                       # [B, T]
        perturbed = runner.forward(maker, maker.n, stack.target_pos,
                                   row_ctx=maker.base_index())                      # [BSM, T]
    diff = perturbed.view(n_b, n_s, xs.numel(), n_t) - reference[:, None, None, :]
    return diff.permute(0, 1, 3, 2).contiguous()
