"""Gradient Trajectory (method.md §2.2): d M(u_t)_j / d v_i at T levels, kept as a vector.

Two readings of the cell ``u_t`` (both implemented; docs/probes.md records the measurements):

- ``"uniform"``: one cell per level (every context gene at ``a_t``; for a background profile, the
  profile rescaled to mean ``a_t``, see :func:`atlasgrn.probes.cells.uniform_cells`). All pairs of a
  level are entries of one Jacobian, computed exactly from a single forward pass plus vmapped
  reverse-mode rows (``uniform_mode="vjp"``, one per target) or forward-mode columns
  (``"jvp"``, one per source); ``"auto"`` picks rows unless targets outnumber
  sources by more than :data:`JVP_COLUMN_COST`.
- ``"source"``: ``u_t = v[i <- a_t]``, a different cell per (source, level); one batched
  forward-mode JVP along ``v_i`` per cell gives every target at once.

``method="fd"`` replaces AD by central differences ``(M(u + h e_i) - M(u - h e_i)) / 2h``
(2 forwards per source and level, dividing by the step actually realised in the model's dtype).
It is an option, never the default: cross-gene gradients are ~1e-3 of self-gradients, and in
fp32 FD gets them only to ~1e-3..1e-2 relative error at the best step on a smooth model and
7-16% on the ReLU scGPT architecture (steps straddle kinks), for at most ~2x speed
(docs/probes.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from atlasgrn.errors import AtlasgrnError
from atlasgrn.models.interface import GeneModel, ValueSpace
from atlasgrn.probes.cells import (
    Background,
    CellMaker,
    background_vector,
    uniform_cells,
    value_list,
)
from atlasgrn.probes.context import IdsLike, pair_index
from atlasgrn.probes.execution import Precision, ProbeRunner, model_device_dtype
from atlasgrn.probes.flops import uniform_mode_for
from atlasgrn.probes.stack import BlockStack

Reading = Literal["uniform", "source"]
Method = Literal["exact", "fd"]
UniformMode = Literal["auto", "vjp", "jvp"]

# Central-difference step as a fraction of the value range, by compute dtype. fp32: measured on
# a random 4-layer d=128 transformer, cross-gene relative error was lowest at h ~ 0.03-0.1 on a
# 0..6 range (truncation vs round-off, docs/probes.md); fp64: ~cbrt(eps) times the range.
FD_STEP_FRACTION = {torch.float64: 1e-5, torch.float32: 1e-2}


def default_fd_step(space: ValueSpace, dtype: torch.dtype) -> float:
    """The FD step ``h`` used when none is given, scaled to the model's value range."""
    span = max(float(space.max) - float(space.min), 1.0)
    return FD_STEP_FRACTION.get(dtype, 1e-2) * span


def gdt(model: GeneModel, context: IdsLike, sources: IdsLike, targets: IdsLike,
        levels: Sequence[float] | torch.Tensor | None = None, reading: Reading = "uniform",
        background: Background = None, *, method: Method = "exact", fd_step: float | None = None,
        uniform_mode: UniformMode = "auto", max_batch: int | None = None,
        memory_budget_bytes: int | None = None, precision: Precision = "fp32") -> torch.Tensor:
    """GDT features ``[S, T, K]`` (source, target, level), fp32 (fp64 for an fp64 model).

    ``levels`` default to ``model.config.values.gdt_levels``; ``background`` (the value of the
    non-source genes in the source reading, and the profile of the uniform reading) to the value
    space's background, or a per-gene profile aligned with ``context``. Self pairs (i == j) hold
    self-gradients, ~1e3 times larger than cross-gene ones: mask them (:func:`mask_self_pairs`)
    before any normalisation or summary. Exact GDT is :func:`gdt_stacked` on one block.
    """
    _check_options(model, reading, uniform_mode)
    if method not in ("exact", "fd"):
        raise AtlasgrnError(f"unknown GDT method {method!r}", key="method",
                            remedy="use 'exact' (autodiff) or 'fd' (central differences)")
    if method == "fd" and precision != "fp32":
        raise AtlasgrnError("finite differences in reduced precision lose the cross-gene "
                            "gradients in round-off", key="precision",
                            remedy="use method='exact' with bf16/tf32, or fp32 for FD")
    idx = pair_index(context, sources, targets, pad_id=model.config.arch.pad_id)
    _device, dtype = model_device_dtype(model)
    space = model.config.values
    base, scalar = background_vector(space, background, idx.length, dtype)
    usrc, s_inv = torch.unique(idx.source_pos, return_inverse=True)
    utgt, t_inv = torch.unique(idx.target_pos, return_inverse=True)
    if method == "exact":
        stack = BlockStack(contexts=idx.context[None], source_pos=usrc[None],
                           target_pos=utgt[None], backgrounds=base[None], scalar=scalar)
        feats = gdt_stacked(model, stack, levels, reading, uniform_mode=uniform_mode,
                            max_batch=max_batch, memory_budget_bytes=memory_budget_bytes,
                            precision=precision)[0]
        return feats[s_inv][:, t_inv].contiguous()
    lev = value_list(levels, space.gdt_levels, key="levels", dtype=dtype)
    h = default_fd_step(space, dtype) if fd_step is None else float(fd_step)
    if not h > 0:
        raise AtlasgrnError(f"fd_step must be positive, got {fd_step}", key="fd_step",
                            remedy="pass a small positive step or leave it unset")
    with ProbeRunner(model, idx.context, max_batch=max_batch,
                     memory_budget_bytes=memory_budget_bytes) as runner:
        if reading == "source":
            steps = torch.stack([lev + h, lev - h], dim=1).reshape(-1)  # rows (s, k, +/-)
            maker = CellMaker(base, usrc, steps)
            d = _central(runner.forward(maker, maker.n, utgt), maker.perturbed_values())
            feats = d.view(usrc.numel(), lev.numel(), utgt.numel()).permute(0, 2, 1)
        else:
            points = uniform_cells(space, base, scalar, lev)
            shifts = torch.tensor([h, -h], dtype=points.dtype)  # rows (k, s, +/-)
            maker = CellMaker(points, usrc, shifts, shift=True)
            d = _central(runner.forward(maker, maker.n, utgt), maker.perturbed_values())
            feats = d.view(lev.numel(), usrc.numel(), utgt.numel()).permute(1, 2, 0)
    return feats[s_inv][:, t_inv].contiguous()


def gdt_stacked(model: GeneModel, stack: BlockStack,
                levels: Sequence[float] | torch.Tensor | None = None,
                reading: Reading = "uniform", *, uniform_mode: UniformMode = "auto",
                max_batch: int | None = None, memory_budget_bytes: int | None = None,
                precision: Precision = "fp32") -> torch.Tensor:
    """Exact GDT of every block of ``stack``: ``[B, S, T, K]``, from shared model calls.

    Source reading: one JVP row per (block, source, level) cell. Uniform reading: the K level
    cells of every block are the Jacobian points of one batch; their rows (``"vjp"``) or columns
    (``"jvp"``) are vmapped across all points at once.
    """
    _check_options(model, reading, uniform_mode)
    _device, dtype = model_device_dtype(model)
    space = model.config.values
    lev = value_list(levels, space.gdt_levels, key="levels", dtype=dtype)
    n_b, n_k = stack.n_blocks, lev.numel()
    n_s, n_t = int(stack.source_pos.shape[1]), int(stack.target_pos.shape[1])
    with ProbeRunner(model, stack.contexts, max_batch=max_batch,
                     memory_budget_bytes=memory_budget_bytes, precision=precision) as runner:
        if reading == "source":
            maker = CellMaker(stack.backgrounds, stack.source_pos, lev)  # rows (b, s, k)
            d = runner.jvp(maker, maker.positions(), stack.target_pos,
                           row_ctx=maker.base_index())
            return d.view(n_b, n_s, n_k, n_t).permute(0, 1, 3, 2).contiguous()
        points = torch.cat([uniform_cells(space, stack.backgrounds[b], stack.scalar, lev)
                            for b in range(n_b)])                         # rows (b, k)
        point_ctx = stack.per_row(n_k)
        rows = stack.target_pos[point_ctx]
        cols = stack.source_pos[point_ctx]
        if uniform_mode == "auto":  # a forward-mode column costs ~2x a reverse-mode row
            uniform_mode = uniform_mode_for(n_s, n_t)
        if uniform_mode == "vjp":
            jac = runner.jacobian_rows(points, rows, cols, point_ctx)     # [BK, T, S]
            return jac.view(n_b, n_k, n_t, n_s).permute(0, 3, 2, 1).contiguous()
        jac = runner.jacobian_cols(points, cols, rows, point_ctx)         # [BK, S, T]
        return jac.view(n_b, n_k, n_s, n_t).permute(0, 2, 3, 1).contiguous()


def _check_options(model: GeneModel, reading: str, uniform_mode: str) -> None:
    if reading not in ("uniform", "source"):
        raise AtlasgrnError(f"unknown GDT reading {reading!r}", key="reading",
                            remedy="use 'uniform' or 'source'")
    if uniform_mode not in ("auto", "vjp", "jvp"):
        raise AtlasgrnError(f"unknown uniform_mode {uniform_mode!r}", key="uniform_mode",
                            remedy="use 'auto', 'vjp' or 'jvp'")
    if model.config.arch.value_encoder == "category":
        raise AtlasgrnError("GDT needs a model whose input values are continuous; this model "
                            "embeds value bins as categories, so d M / d v_i does not exist",
                            key="value_encoder", remedy="use VVP with this model, or a model "
                            "with a continuous value encoder")


def _central(out: torch.Tensor, perturbed: torch.Tensor) -> torch.Tensor:
    """Central differences from interleaved (+h, -h) rows, over the step the cells really hold."""
    step = (perturbed[0::2].double() - perturbed[1::2].double()).to(out.dtype)
    return (out[0::2] - out[1::2]) / step[:, None]
