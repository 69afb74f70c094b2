"""The one known gene regulatory network behind every dataset of a simulated atlas.

Structure (why each choice):

* Regulators are transcription factors only, and TFs are ordered: TF ``i`` may be regulated
  only by TFs ``< i``. The TF sub-network is therefore a DAG, so a steady state exists and is
  computed exactly level by level (no ODE integration), and some TFs regulate TFs, which makes
  indirect (TF -> TF -> target) paths a real confounder for inference methods.
* The first ``n_masters`` TFs have no regulators: their activities define cell states.
* Every other gene (regulated TF or non-TF target) has 1-3 regulators, drawn without
  replacement with probability proportional to a log-normal "hubness" of each TF (masters get
  a boost), so out-degrees are skewed as in real networks.
* Each edge carries a sign (activation with probability ``p_activation``), a weight ``w``, a
  Hill threshold ``K`` placed inside the regulator's dynamic range, and a Hill coefficient ``n``
  (ranges documented in :mod:`atlasgrn.sim.kinetics`).

Genes are stored in topological order: TFs first (masters, then regulated TFs in DAG order),
then non-TF targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

#: Ranges of the per-edge and per-gene parameters (documented in kinetics.py).
P_ACTIVATION = 0.65
REGULATOR_COUNT_P = (0.4, 0.4, 0.2)  # P(1), P(2), P(3) regulators per regulated gene
WEIGHT_RANGE = (0.5, 1.5)
K_FRACTION_RANGE = (0.15, 0.5)  # K = fraction x the regulator's maximum level
HILL_N_RANGE = (1.5, 4.0)
BASAL_RANGE = (0.02, 0.2)
SCALE_LOG_SIGMA = 0.8  # gene abundance multiplier ~ LogNormal(0, 0.8)
HUB_LOG_SIGMA = 1.0
MASTER_HUB_BOOST = 2.0
_GUMBEL_CHUNK_ELEMS = 1 << 22


@dataclass(frozen=True)
class GRN:
    """Genes, edges and kinetic parameters of the simulated network (topological gene order)."""

    genes: np.ndarray       # object[str], (G,): TFs first, then non-TF targets
    n_tfs: int
    n_masters: int
    tf_level: np.ndarray    # int32 (n_tfs,): 0 for masters, 1 + max(level of regulators)
    basal: np.ndarray       # float32 (G,)
    scale: np.ndarray       # float32 (G,): abundance multiplier
    x_max: np.ndarray       # float32 (G,): largest noise-free level (masters: scale)
    src: np.ndarray         # int32 (E,): regulator gene index
    dst: np.ndarray         # int32 (E,): target gene index
    sign: np.ndarray        # int8 (E,): +1 activation, -1 repression
    weight: np.ndarray      # float32 (E,)
    hill_k: np.ndarray      # float32 (E,)
    hill_n: np.ndarray      # float32 (E,)

    @property
    def n_genes(self) -> int:
        return len(self.genes)

    @property
    def n_edges(self) -> int:
        return len(self.src)

    def edges_table(self) -> pa.Table:
        """The true edges as Arrow, sorted by (source, target) so the file is reproducible."""
        src = self.genes[self.src].astype(str)
        dst = self.genes[self.dst].astype(str)
        order = np.lexsort((dst, src))
        return pa.table({
            "source": pa.array(src[order], pa.string()),
            "target": pa.array(dst[order], pa.string()),
            "sign": pa.array(self.sign[order], pa.int8()),
            "weight": pa.array(self.weight[order], pa.float32()),
            "hill_k": pa.array(self.hill_k[order], pa.float32()),
            "hill_n": pa.array(self.hill_n[order], pa.float32()),
            "target_is_tf": pa.array(self.dst[order] < self.n_tfs, pa.bool_()),
        })


def n_masters_for(n_tfs: int) -> int:
    """Master TFs: a fifth of the TFs (at least 1, at most 32) - enough for varied states."""
    return int(min(max(1, -(-n_tfs // 5)), 32, n_tfs))


def build_grn(n_genes: int, n_tfs: int, rng: np.random.Generator, *,
              tf_pool: tuple[str, ...], target_pool: tuple[str, ...]) -> GRN:
    """Draw genes and a sparse signed TF -> target DAG; sizes are validated by the caller."""
    tfs = rng.choice(np.asarray(tf_pool, dtype=object), size=n_tfs, replace=False)
    targets = rng.choice(np.asarray(target_pool, dtype=object), size=n_genes - n_tfs,
                         replace=False)
    genes = np.concatenate([tfs, targets])
    n_masters = n_masters_for(n_tfs)

    regulated = np.arange(n_masters, n_genes)
    n_regs = rng.choice(np.arange(1, 4), size=len(regulated), p=REGULATOR_COUNT_P)
    # A regulated TF i can only pick among TFs < i (DAG order).
    n_regs = np.minimum(n_regs, np.minimum(regulated, n_tfs)).astype(np.int64)
    hub = rng.lognormal(0.0, HUB_LOG_SIGMA, size=n_tfs)
    hub[:n_masters] *= MASTER_HUB_BOOST
    regs = _weighted_top_k(rng, np.log(hub), regulated, n_tfs, k=3)
    slot = np.arange(3)[None, :] < n_regs[:, None]
    dst = np.repeat(regulated, n_regs).astype(np.int32)
    src = regs[slot].astype(np.int32)

    n_edges = len(src)
    sign = np.where(rng.random(n_edges) < P_ACTIVATION, 1, -1).astype(np.int8)
    weight = rng.uniform(*WEIGHT_RANGE, size=n_edges).astype(np.float32)
    k_frac = rng.uniform(*K_FRACTION_RANGE, size=n_edges)
    hill_n = rng.uniform(*HILL_N_RANGE, size=n_edges).astype(np.float32)
    basal = rng.uniform(*BASAL_RANGE, size=n_genes).astype(np.float32)
    scale = rng.lognormal(0.0, SCALE_LOG_SIGMA, size=n_genes).astype(np.float32)
    basal[:n_masters] = 0.0

    # Levels and maximum levels, in DAG order (a loop over TFs while building the network,
    # never over cells): K is placed inside the regulator's reachable range.
    tf_level = np.zeros(n_tfs, dtype=np.int32)
    x_max = np.zeros(n_genes, dtype=np.float64)
    x_max[:n_masters] = scale[:n_masters]
    w_sum = np.bincount(dst, weights=weight, minlength=n_genes)
    order = np.argsort(dst, kind="stable")
    starts = np.searchsorted(dst[order], np.arange(n_genes + 1))
    for i in range(n_masters, n_tfs):
        mine = src[order[starts[i]:starts[i + 1]]]
        tf_level[i] = 1 + tf_level[mine].max()
    x_max[n_masters:] = scale[n_masters:] * (basal[n_masters:] + w_sum[n_masters:])
    hill_k = (k_frac * x_max[src]).astype(np.float32)
    return GRN(genes=genes, n_tfs=n_tfs, n_masters=n_masters, tf_level=tf_level, basal=basal,
               scale=scale, x_max=x_max.astype(np.float32), src=src, dst=dst, sign=sign,
               weight=weight, hill_k=hill_k, hill_n=hill_n)


def _weighted_top_k(rng: np.random.Generator, log_w: np.ndarray, rows: np.ndarray,
                    n_tfs: int, k: int) -> np.ndarray:
    """Per row, ``k`` TFs drawn without replacement with probability proportional to
    ``exp(log_w)`` (Gumbel top-k), restricted to TFs ``< row`` for TF rows. Returned in draw
    order, so the first ``m`` columns are a valid ``m``-sample for any ``m <= k``."""
    kk = min(k, n_tfs)
    out = np.zeros((len(rows), k), dtype=np.int64)
    step = max(1, _GUMBEL_CHUNK_ELEMS // max(n_tfs, 1))  # bounded memory for big networks
    for lo in range(0, len(rows), step):
        part = rows[lo:lo + step]
        scores = log_w[None, :] + rng.gumbel(size=(len(part), n_tfs))
        allowed = np.arange(n_tfs)[None, :] < np.minimum(part, n_tfs)[:, None]
        scores[~allowed] = -np.inf
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        top_scores = np.take_along_axis(scores, top, axis=1)
        out[lo:lo + step, :kk] = np.take_along_axis(
            top, np.argsort(-top_scores, axis=1, kind="stable"), axis=1)
    return out
