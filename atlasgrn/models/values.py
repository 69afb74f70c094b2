"""The model value space and the ONE per-cell normalisation into it.

Every dataset, whatever scale it was deposited in, reaches a native model as
``log1p(x_linear / sum(x_linear) * 1e4)`` per cell ("log1p_cp10k"): logs are inverted to linear
first (log1p: expm1; log2: 2**x - 1), then each cell is scaled to 1e4 over the genes the dataset
stores, then log1p. Without it the same biology arrives at different scales per dataset (the
feasibility run measured 3.5x) and the probes' fixed grids would mean different things.
Works on dense arrays and on CSR matrices (duck-typed: ``.data``/``.indptr``), numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .interface import ValueSpace

TARGET_SUM = 1e4
NATIVE_KIND = "log1p_cp10k"
SOURCE_KINDS = ("counts", "normalized", "log1p", "log2")
N_GRID = 8

NORMALISATION_RECORD = {
    "kind": NATIVE_KIND,
    "recipe": "linear = expm1(x) if log1p, 2**x - 1 if log2, else x; "
              "v = log1p(linear / sum_cell(linear) * 1e4); cells with zero sum stay 0",
    "target_sum": TARGET_SUM,
    "sum_over": "the genes stored in the dataset",
}


def _linear(data: np.ndarray, value_kind: str) -> np.ndarray:
    if value_kind in ("counts", "normalized"):
        return data.astype(np.float64)
    if value_kind == "log1p":
        return np.expm1(data.astype(np.float64))
    if value_kind == "log2":
        return np.exp2(data.astype(np.float64)) - 1.0
    raise ValueError(f"unknown value kind {value_kind!r}; one of {SOURCE_KINDS}")


def to_model_space(block: Any, value_kind: str) -> Any:
    """Normalise a cells x genes block (dense ndarray or CSR) to log1p-CP10k, float32."""
    if hasattr(block, "indptr"):
        out = block.copy()
        lin = _linear(np.asarray(out.data), value_kind)
        lin = np.maximum(lin, 0.0)
        counts = np.diff(out.indptr)
        sums = np.add.reduceat(lin, out.indptr[:-1]) if lin.size else np.zeros(len(counts))
        sums = np.where(counts > 0, sums, 0.0)
        scale = np.divide(TARGET_SUM, sums, out=np.zeros_like(sums), where=sums > 0)
        out.data = np.log1p(lin * np.repeat(scale, counts)).astype(np.float32)
        return out
    lin = np.maximum(_linear(np.asarray(block), value_kind), 0.0)
    sums = lin.sum(axis=1, keepdims=True)
    scale = np.divide(TARGET_SUM, sums, out=np.zeros_like(sums), where=sums > 0)
    return np.log1p(lin * scale).astype(np.float32)


def native_value_space(max_value: float, n_grid: int = N_GRID) -> ValueSpace:
    """Value space of native models: 0 is 'not expressed' and the probes' background.

    ``max_value`` should be a high quantile of non-zero training values; the VVP grid spans
    (0, max] and the GDT levels [0, max], ``n_grid`` points each.
    """
    top = float(max_value)
    vvp = tuple(float(x) for x in np.round(np.linspace(top / n_grid, top, n_grid), 4))
    gdt = tuple(float(x) for x in np.round(np.linspace(0.0, top, n_grid), 4))
    return ValueSpace(kind=NATIVE_KIND, min=0.0, max=top, background=0.0, pad_value=-2.0,
                      mask_value=-1.0, vvp_grid=vvp, gdt_levels=gdt)


def binned_value_space(n_bins: int, pad_value: float, mask_value: float,
                       n_grid: int = N_GRID) -> ValueSpace:
    """scGPT's binned space: 0 = not expressed, 1..n_bins-1 per-cell quantile bins."""
    top = float(n_bins - 1)
    vvp = tuple(float(x) for x in np.round(np.linspace(top / n_grid, top, n_grid), 4))
    gdt = tuple(float(x) for x in np.round(np.linspace(0.0, top, n_grid), 4))
    return ValueSpace(kind="binned", min=0.0, max=top, background=0.0,
                      pad_value=float(pad_value), mask_value=float(mask_value),
                      vvp_grid=vvp, gdt_levels=gdt, n_bins=int(n_bins))
