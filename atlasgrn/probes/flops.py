"""Analytic FLOPs of the probes: what a block costs, independent of how fast it ran.

Counted as the matmul work of the model (2 x dense parameters x tokens, plus 4 L^2 d per layer
for QK^T and PV); embedding look-ups, norms and activations are left out, as is usual for MFU.
An input-gradient row (vjp) or tangent column (jvp) costs one matmul per linear layer and two per
attention product, because frozen parameters need no weight-gradient matmuls. The counts are the
work a probe must do, not what an implementation happens to recompute, so achieved FLOP/s is
comparable across implementations and devices (tests/test_probes_stacked.py checks the forward
count against torch's own FLOP counter).
"""

from __future__ import annotations

from dataclasses import dataclass

from atlasgrn.models.interface import ArchConfig

#: Uniform GDT reading, measured cost of one forward-mode Jacobian column relative to one vmapped
#: reverse-mode row (64 x 64 block, 128 tokens, CPU: 1.6-2.2x): rows unless targets outnumber
#: sources by more than this factor.
JVP_COLUMN_COST = 2.0


@dataclass(frozen=True)
class CellFlops:
    """Analytic FLOPs of one cell over a context of ``length`` tokens."""

    linear: float     # 2 * dense parameters * tokens
    attention: float  # 4 * L^2 * d per layer (QK^T and PV)

    @property
    def forward(self) -> float:
        return self.linear + self.attention

    @property
    def ad(self) -> float:
        """One input-gradient row or tangent column on top of the forward."""
        return self.linear + 2 * self.attention


def flops_per_cell(arch: ArchConfig, length: int) -> CellFlops:
    d, ff = arch.d_model, arch.d_ff
    dense = arch.n_layers * (4 * d * d + 2 * d * ff) + (d + d * d) + (2 * d * d + d)
    return CellFlops(linear=2.0 * dense * length,
                     attention=4.0 * arch.n_layers * length ** 2 * d)


def uniform_mode_for(n_sources: int, n_targets: int) -> str:
    """``"vjp"`` (a row per target) unless targets outnumber sources by more than the measured
    cost ratio of a forward-mode column to a reverse-mode row."""
    return "vjp" if n_targets <= JVP_COLUMN_COST * n_sources else "jvp"


def probe_flops(arch: ArchConfig, length: int, kind: str, n_sources: int, n_targets: int,
                n_values: int = 1, method: str = "exact") -> float:
    """FLOPs of one feature kind over one block of ``n_sources x n_targets`` pairs.

    ``kind`` is a feature kind name (``vvp``, ``gdt_uniform``, ``gdt_source``, ``attn``,
    ``pert``, embeddings); ``n_values`` is the VVP grid size or the number of GDT levels.
    """
    cell = flops_per_cell(arch, length)
    s, t, m = n_sources, n_targets, n_values
    if kind == "vvp":
        return (s * m + 1) * cell.forward
    if kind in ("gdt_uniform", "gdt_source") and method == "fd":
        return 2 * s * m * cell.forward
    if kind == "gdt_uniform":
        slots = t if uniform_mode_for(s, t) == "vjp" else s
        return m * (cell.forward + slots * cell.ad)
    if kind == "gdt_source":
        return s * m * (cell.forward + cell.ad)
    if kind == "attn":
        return cell.forward
    if kind == "pert":
        return (s + 1) * cell.forward
    return 0.0  # embeddings: a look-up
