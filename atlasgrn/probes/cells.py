"""Virtual cells: the value vectors a probe feeds the model.

Everything about *what value a gene gets* lives here, so the probes and the naive reference build
identical cells: the background (a scalar, or a per-gene profile aligned with the context), the
grids and levels (defaults from the model's value space), the uniform cell of a GDT level, and the
value that means "not expressed" for the knockout baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from atlasgrn.errors import AtlasgrnError
from atlasgrn.models.interface import ValueSpace

Background = float | int | torch.Tensor | Sequence[float] | None


def _is_scalar(background: Background) -> bool:
    if background is None or isinstance(background, (int, float)):
        return True
    return isinstance(background, torch.Tensor) and background.dim() == 0


def background_vector(space: ValueSpace, background: Background, length: int,
                      dtype: torch.dtype) -> tuple[torch.Tensor, bool]:
    """The background as a value per context position, and whether it was a scalar.

    ``None`` means the model's default (``space.background``). A vector must have one finite value
    per context token (e.g. a dataset's mean profile over the context genes). A scalar may not be
    the pad or mask value: those tell the model "no gene here" / "predict me", not "low value".
    """
    if _is_scalar(background):
        b = float(space.background if background is None else background)
        if not math.isfinite(b):
            raise AtlasgrnError(f"the background {b} is not finite", key="background",
                                remedy="pass a finite value inside the model's value range")
        if b in (space.pad_value, space.mask_value):
            raise AtlasgrnError(f"the background {b} equals the model's pad or mask value",
                                key="background", remedy="pick a value of the model's value range, "
                                "e.g. model.config.values.background")
        return torch.full((length,), b, dtype=dtype), True
    vec = torch.as_tensor(background, dtype=dtype).detach().cpu()
    if vec.dim() != 1 or vec.numel() != length:
        raise AtlasgrnError(f"a vector background needs one value per context token ({length}), "
                            f"got shape {tuple(vec.shape)}", key="background",
                            remedy="align the profile with the context (same order and length)")
    if not bool(torch.isfinite(vec).all()):
        raise AtlasgrnError("the background profile has non-finite values", key="background",
                            remedy="replace NaN/inf (e.g. genes absent from the dataset) by the "
                            "model's background value")
    return vec, False


def value_list(values: Sequence[float] | torch.Tensor | None, default: Sequence[float], *,
               key: str, dtype: torch.dtype) -> torch.Tensor:
    """A grid or level list as a 1-D tensor (the model default when ``None``); finite, non-empty."""
    out = torch.as_tensor(list(default) if values is None else values, dtype=dtype).detach().cpu()
    out = out.reshape(-1)
    if out.numel() == 0 or not bool(torch.isfinite(out).all()):
        raise AtlasgrnError(f"{key} must be a non-empty list of finite values", key=key,
                            remedy=f"pass finite values or leave {key} unset for the model default")
    return out


def uniform_cells(space: ValueSpace, background: torch.Tensor, scalar: bool,
                  levels: torch.Tensor) -> torch.Tensor:
    """GDT uniform-reading cells, one per level: ``[K, L]``.

    Scalar background: every context gene at ``a_t`` (the paper's uniform cell). Vector background
    ``beta``: ``beta * a_t / mean(beta)``, clipped to the value range, i.e. the dataset's profile
    rescaled so the cell's mean expression is the level. This keeps the profile's shape (which genes
    are silent, the ratios between expressed genes), makes the level mean the same thing as in the
    scalar reading, and reduces exactly to it for a constant profile.
    """
    length = background.numel()
    if scalar:
        return levels[:, None].expand(-1, length).clone()
    mean = background.mean()
    if float(mean) <= 0:
        raise AtlasgrnError("the uniform reading rescales a background profile by its mean, "
                            "which is not positive", key="background",
                            remedy="pass a profile with positive mean, or use reading='source'")
    cells = background[None, :] * (levels[:, None] / mean)
    return cells.clamp(min=space.min, max=space.max)


def not_expressed_value(space: ValueSpace) -> float:
    """The input value meaning "gene not expressed": 0 in both known value spaces.

    log1p_cp10k: log1p(0) = 0. binned (scGPT): bin 0 is reserved for zero counts. Other spaces fall
    back to the bottom of their value range.
    """
    if space.kind in ("log1p_cp10k", "binned"):
        return 0.0
    return float(space.min)


class CellMaker:
    """Virtual cells on demand, rows enumerated as ``(b, s, m)`` in C order.

    Row ``(b, s, m)`` is ``bases[b]`` with position ``pos[s]`` (or, for per-base positions
    ``pos[B, S]``, ``pos[b, s]``: the blocks of a stacked batch) set to ``values[m]`` (or, with
    ``shift=True``, moved by ``values[m]``). Cells are materialised one chunk at a time, so a
    probe over thousands of cells never holds them all.
    """

    def __init__(self, bases: torch.Tensor, pos: torch.Tensor, values: torch.Tensor,
                 shift: bool = False) -> None:
        self.bases = bases if bases.dim() == 2 else bases[None]
        n_bases = int(self.bases.shape[0])
        self.pos = pos if pos.dim() == 2 else pos[None].expand(n_bases, -1)
        self.values, self.shift = values, shift
        self.n_pos, self.n_values = int(self.pos.shape[1]), int(values.numel())
        self.n = n_bases * self.n_pos * self.n_values

    def _split(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        per_base = self.n_pos * self.n_values
        return rows // per_base, (rows // self.n_values) % self.n_pos, rows % self.n_values

    def base_index(self) -> torch.Tensor:
        """The base (block of a stack) of every row: the context each row is fed with."""
        return torch.arange(self.n) // (self.n_pos * self.n_values)

    def positions(self) -> torch.Tensor:
        """The perturbed position of every row (the tangent coordinate for forward-mode AD)."""
        b, s, _m = self._split(torch.arange(self.n))
        return self.pos[b, s]

    def perturbed_values(self) -> torch.Tensor:
        """The value every row holds at its perturbed position (in the cells' dtype)."""
        b, s, m = self._split(torch.arange(self.n))
        new = self.values[m]
        return self.bases[b, self.pos[b, s]] + new if self.shift else new

    def __call__(self, start: int, stop: int) -> torch.Tensor:
        b, s, m = self._split(torch.arange(start, stop))
        cells = self.bases[b].clone()
        rows = torch.arange(stop - start)
        at = self.pos[b, s]
        new = self.values[m]
        cells[rows, at] = cells[rows, at] + new if self.shift else new
        return cells
