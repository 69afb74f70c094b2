"""Naive per-pair probes: the obviously-correct definition, and the benchmark's baseline.

Every (source, target[, grid value or level]) entry gets its own single-cell forward (and, for GDT,
its own backward), exactly as method.md writes the formulas, with the model's default attention
path. The fast probes must agree with these to floating-point tolerance; nothing here is batched
or shared, on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from atlasgrn.models.interface import GeneModel
from atlasgrn.probes.cells import (
    Background,
    background_vector,
    not_expressed_value,
    uniform_cells,
    value_list,
)
from atlasgrn.probes.context import IdsLike, pair_index
from atlasgrn.probes.execution import frozen, model_device_dtype


def _one(model: GeneModel, ids: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
    return model(ids[None], cell[None])[0]


def vvp_naive(model: GeneModel, context: IdsLike, sources: IdsLike, targets: IdsLike,
              grid: Sequence[float] | None = None, background: Background = None) -> torch.Tensor:
    """``[S, T, M]`` with two single-cell forwards per entry."""
    idx = pair_index(context, sources, targets)
    device, dtype = model_device_dtype(model)
    base, _ = background_vector(model.config.values, background, idx.length, dtype)
    xs = value_list(grid, model.config.values.vvp_grid, key="grid", dtype=dtype)
    ids = idx.context.to(device)
    out = torch.empty(idx.source_pos.numel(), idx.target_pos.numel(), xs.numel(),
                      dtype=torch.float64)
    with frozen(model), torch.no_grad():
        for s, i in enumerate(idx.source_pos.tolist()):
            for t, j in enumerate(idx.target_pos.tolist()):
                for m, x in enumerate(xs.tolist()):
                    cell = base.clone()
                    cell[i] = x
                    hit = _one(model, ids, cell.to(device))[j]
                    ref = _one(model, ids, base.to(device))[j]
                    out[s, t, m] = float(hit) - float(ref)
    return out


def gdt_naive(model: GeneModel, context: IdsLike, sources: IdsLike, targets: IdsLike,
              levels: Sequence[float] | None = None, reading: str = "uniform",
              background: Background = None) -> torch.Tensor:
    """``[S, T, K]`` with one single-cell forward + backward per entry."""
    idx = pair_index(context, sources, targets)
    device, dtype = model_device_dtype(model)
    space = model.config.values
    base, scalar = background_vector(space, background, idx.length, dtype)
    lev = value_list(levels, space.gdt_levels, key="levels", dtype=dtype)
    points = uniform_cells(space, base, scalar, lev)
    ids = idx.context.to(device)
    out = torch.empty(idx.source_pos.numel(), idx.target_pos.numel(), lev.numel(),
                      dtype=torch.float64)
    with frozen(model):
        for s, i in enumerate(idx.source_pos.tolist()):
            for t, j in enumerate(idx.target_pos.tolist()):
                for k, a in enumerate(lev.tolist()):
                    if reading == "uniform":
                        cell = points[k].clone()
                    else:
                        cell = base.clone()
                        cell[i] = a
                    v = cell.to(device).requires_grad_(True)
                    with torch.enable_grad():
                        y = _one(model, ids, v)[j]
                        (g,) = torch.autograd.grad(y, v)
                    out[s, t, k] = float(g[i])
    return out


def pert_origin_naive(model: GeneModel, context: IdsLike, mean_values: torch.Tensor,
                      sources: IdsLike, targets: IdsLike) -> torch.Tensor:
    """``[S, T]`` knockout effects, two single-cell forwards per pair."""
    idx = pair_index(context, sources, targets)
    device, dtype = model_device_dtype(model)
    mean, _ = background_vector(model.config.values, mean_values, idx.length, dtype)
    zero = not_expressed_value(model.config.values)
    ids = idx.context.to(device)
    out = torch.empty(idx.source_pos.numel(), idx.target_pos.numel(), dtype=torch.float64)
    with frozen(model), torch.no_grad():
        for s, i in enumerate(idx.source_pos.tolist()):
            for t, j in enumerate(idx.target_pos.tolist()):
                knocked = mean.clone()
                knocked[i] = zero
                out[s, t] = float(_one(model, ids, mean.to(device))[j]) - float(
                    _one(model, ids, knocked.to(device))[j])
    return out
