r"""Steady-state Hill kinetics of the simulated GRN, vectorised over cells.

Model
-----
For a gene ``j`` with regulators ``R(j)`` (1-3 TFs), the production/degradation model

    dx_j/dt = s_j * (b_j + sum_{i in R(j)} w_ij * h_ij(x_i)) - x_j            (unit decay)

has, because the TF network is a DAG, the exact steady state

    x_j = s_j * (b_j + sum_{i in R(j)} w_ij * h_ij(x_i)) * eta_j               (1)

with Hill terms

    activation  h_ij(x) = x^n / (K^n + x^n)
    repression  h_ij(x) = K^n / (K^n + x^n) = 1 - activation,   K = K_ij, n = n_ij

and ``eta_j = exp(sigma * eps - sigma^2 / 2)``, ``eps ~ N(0, 1)``, a per-cell, per-gene
multiplicative log-normal noise (mean 1) that stands for transcriptional bursting. The noise
enters *before* ``x_j`` is used by ``j``'s own targets, so it propagates down the network:
within one cell state, a TF that is higher than usual still raises its targets, which is the
signal a GRN method can find. Master TFs (no regulators) are set by the cell state:

    x_m = s_m * a_{c,m} * eta_m,   a_{c,m} = A_{state(c), m} * c_{d,m} * exp(0.2 * eps' - 0.02)

with ``A`` the state's activity pattern and ``c_{d,m} ~ LogNormal(0, 0.15)`` the context shift of
dataset ``d`` (:mod:`atlasgrn.sim.sample`).

Levels are computed in topological order (masters, then TF level 1, 2, ..., then all non-TF
targets at once), each level as a few array operations over all cells of a block: there is no
Python loop over cells or edges. Each gene has at most 3 regulators, so edges are laid out in
3 "slots" per level (slot ``s`` = the s-th regulator of every gene that has one).

Parameter ranges (drawn once per network in :mod:`atlasgrn.sim.grn`)
----------------------------------------------------------------------
=================  ======================================  =====================================
parameter          distribution                            why
=================  ======================================  =====================================
s_j (abundance)    LogNormal(0, 0.8)                       spread of mean expression across genes
b_j (basal)        U(0.02, 0.2); 0 for masters             leaky expression, repressed genes > 0
w_ij (weight)      U(0.5, 1.5)                             regulator effect dominates the basal
sign               +1 with p = 0.65, else -1               activation more common than repression
K_ij               U(0.15, 0.5) * x_max(i)                 threshold inside the regulator's range
n_ij               U(1.5, 4.0)                             cooperative, switch-like responses
A_{state, m}       on: U(0.6, 1.0), off: U(0.01, 0.08)     see :mod:`atlasgrn.sim.sample`
=================  ======================================  =====================================

``x_max(i)`` is the noise-free maximum of regulator ``i`` (``s_i`` for masters,
``s_i * (b_i + sum w)`` otherwise), so every Hill switch is reachable.

The Hill term is evaluated as ``0.5 * (1 - tanh(sign * z / 2))`` with
``z = n * (ln K - ln x)``: algebraically identical to both forms above, and it never
overflows in float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .grn import GRN

#: Floor for log(x) so a regulator at exactly zero cannot produce -inf.
_TINY = np.float32(1e-12)


@dataclass(frozen=True)
class _Slot:
    """The s-th regulator of every gene of one level that has at least s+1 regulators."""

    targets: np.ndarray  # int64: positions within the level's gene list
    regs: np.ndarray     # int64: regulator gene indices (all TFs, already computed)
    log_k: np.ndarray    # float32
    half_n_sign: np.ndarray  # float32: sign * n / 2
    weight: np.ndarray   # float32
    dense: bool          # targets == every gene of the level, in order


@dataclass(frozen=True)
class _Level:
    genes: np.ndarray    # int64 gene indices computed at this level
    basal: np.ndarray    # float32
    scale: np.ndarray    # float32
    slots: tuple[_Slot, ...]


@dataclass(frozen=True)
class KineticPlan:
    """The GRN rearranged for level-by-level evaluation."""

    n_genes: int
    n_tfs: int
    masters: np.ndarray       # int64
    master_scale: np.ndarray  # float32
    levels: tuple[_Level, ...]


def plan_kinetics(grn: GRN) -> KineticPlan:
    """Group genes into levels (TF levels 1..L, then every non-TF target) and edges into slots."""
    level_of = np.full(grn.n_genes, int(grn.tf_level.max()) + 1, dtype=np.int64)
    level_of[:grn.n_tfs] = grn.tf_level
    order = np.lexsort((grn.src, grn.dst))  # edges grouped by target, stable
    dst = grn.dst[order].astype(np.int64)
    first = np.searchsorted(dst, dst, side="left")
    slot_of = np.arange(len(dst)) - first  # 0, 1, 2 within each target's regulators
    levels = []
    for lev in range(1, int(level_of.max()) + 1):
        genes = np.flatnonzero(level_of == lev)
        if len(genes) == 0:
            continue
        pos = np.full(grn.n_genes, -1, dtype=np.int64)
        pos[genes] = np.arange(len(genes))
        slots = []
        everyone = np.arange(len(genes))
        for s in range(3):
            e = order[(slot_of == s) & (level_of[dst] == lev)]
            if len(e) == 0:
                continue
            targets = pos[grn.dst[e]]
            slots.append(_Slot(
                targets=targets,
                regs=grn.src[e].astype(np.int64),
                log_k=np.log(grn.hill_k[e]).astype(np.float32),
                half_n_sign=(grn.sign[e] * grn.hill_n[e] / 2).astype(np.float32),
                weight=grn.weight[e].astype(np.float32),
                dense=bool(len(targets) == len(genes) and (targets == everyone).all())))
        levels.append(_Level(genes=genes, basal=grn.basal[genes], scale=grn.scale[genes],
                             slots=tuple(slots)))
    masters = np.arange(grn.n_masters)
    return KineticPlan(n_genes=grn.n_genes, n_tfs=grn.n_tfs, masters=masters,
                       master_scale=grn.scale[masters], levels=tuple(levels))


def steady_state(plan: KineticPlan, master_activity: np.ndarray, noise: np.ndarray
                 ) -> np.ndarray:
    """Levels ``x`` (genes x cells, float32, gene-major) from equation (1).

    ``master_activity``: (n_masters x cells) activities ``a``; ``noise``: (genes x cells)
    multiplicative factors ``eta`` (mean 1). Pure function: all randomness is passed in.
    Gene-major layout makes every regulator gather a copy of contiguous rows.
    """
    n_cells = master_activity.shape[1]
    x = np.empty((plan.n_genes, n_cells), dtype=np.float32)
    log_tf = np.empty((plan.n_tfs, n_cells), dtype=np.float32)
    m = slice(0, len(plan.masters))  # masters are the first genes
    x[m] = master_activity * plan.master_scale[:, None] * noise[m]
    log_tf[m] = np.log(np.maximum(x[m], _TINY))
    for level in plan.levels:
        rows = _rows(level.genes)
        acc = np.empty((len(level.genes), n_cells), dtype=np.float32)
        acc[:] = level.basal[:, None]
        for slot in level.slots:
            # sign * z / 2 = sign * n/2 * (ln K - ln x);  h = 0.5 * (1 - tanh(.))
            t = slot.log_k[:, None] - log_tf[slot.regs]
            t *= slot.half_n_sign[:, None]
            np.tanh(t, out=t)
            t -= 1.0
            t *= (-0.5 * slot.weight)[:, None]
            if slot.dense:
                acc += t
            else:
                acc[slot.targets] += t
        acc *= level.scale[:, None]
        acc *= noise[rows]
        x[rows] = acc
        tf_genes = level.genes[level.genes < plan.n_tfs]
        if len(tf_genes):
            log_tf[tf_genes] = np.log(np.maximum(x[tf_genes], _TINY))
    return x


def _rows(genes: np.ndarray) -> slice | np.ndarray:
    """A slice when the level's genes are contiguous (the non-TF level always is): basic
    indexing avoids a gather and a scatter of the largest level."""
    if len(genes) and genes[-1] - genes[0] + 1 == len(genes):
        return slice(int(genes[0]), int(genes[-1]) + 1)
    return genes
