"""Virtual Value Perturbation (method.md §2.1): dose-response of every target to each source.

``e_ij[m] = M(v[i <- x_m])_j - M(v)_j`` where ``v`` is the background cell (every context gene at
the background, or a per-gene background profile) and ``v[i <- x]`` sets source ``i`` to ``x``.
All (source, grid value) cells go through the model in batched forwards; each forward yields the
response of every target at once, so the cost is ``S * M + 1`` cell-forwards for ``S * T`` pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from atlasgrn.models.interface import GeneModel
from atlasgrn.probes.cells import Background, CellMaker, background_vector, value_list
from atlasgrn.probes.context import IdsLike, pair_index
from atlasgrn.probes.execution import ProbeRunner, model_device_dtype


def vvp(model: GeneModel, context: IdsLike, sources: IdsLike, targets: IdsLike,
        grid: Sequence[float] | torch.Tensor | None = None, background: Background = None, *,
        max_batch: int | None = None, memory_budget_bytes: int | None = None,
        autocast: bool = False) -> torch.Tensor:
    """VVP features ``[S, T, M]`` (source, target, grid value), fp32 (fp64 for an fp64 model).

    ``grid`` defaults to ``model.config.values.vvp_grid`` and ``background`` to the value space's
    background; ``background`` may also be a per-gene profile aligned with ``context`` (a
    dataset's mean profile), making the features dataset-specific (method.md §2.4). Self pairs
    (i == j) are computed like any other; mask them with :func:`mask_self_pairs` before summaries.
    """
    idx = pair_index(context, sources, targets, pad_id=model.config.arch.pad_id)
    _device, dtype = model_device_dtype(model)
    space = model.config.values
    base, _scalar = background_vector(space, background, idx.length, dtype)
    xs = value_list(grid, space.vvp_grid, key="grid", dtype=dtype)
    usrc, inverse = torch.unique(idx.source_pos, return_inverse=True)
    maker = CellMaker(base, usrc, xs)  # rows (s, m)
    with ProbeRunner(model, idx.context, max_batch=max_batch,
                     memory_budget_bytes=memory_budget_bytes, autocast=autocast) as runner:
        reference = runner.forward(lambda a, b: base[None], 1, idx.target_pos)  # [1, T]
        perturbed = runner.forward(maker, maker.n, idx.target_pos)               # [S'M, T]
    diff = perturbed.view(usrc.numel(), xs.numel(), idx.target_pos.numel()) - reference[None]
    return diff.permute(0, 2, 1)[inverse].contiguous()
