"""Cells of one dataset: cell states, biological noise, library size, counts and dropout.

Every dataset is a different *context* of the same GRN, so a method that learns the network
on some datasets can be tested on others:

* **Cell states** come from one atlas-wide pool. A state switches each master TF on
  (activity ``U(0.6, 1.0)``, probability 0.35, at least one on) or off (``U(0.01, 0.08)``).
  Each dataset shows 2-4 states of the pool, mixed with Dirichlet(2) proportions.
* **Context shift**: a dataset scales every master's activity by ``LogNormal(0, 0.15)``
  (the same biology measured in a slightly different tissue or condition).
* **Biological noise** ``sigma`` ~ ``U(0.15, 0.35)`` per dataset (equation (1) of
  :mod:`atlasgrn.sim.kinetics`).
* **Library size** ``L_c = depth * LogNormal(-0.35^2/2, 0.35)`` with a dataset depth of
  ``n_genes * LogUniform(0.5, 3)`` UMIs per cell (0.5-3 UMIs per gene on average).
* **Counts** ``y_cj ~ Poisson(L_c * x_cj / sum_j x_cj)``. With the log-normal ``eta`` inside
  ``x`` this is a Poisson-log-normal model: over-dispersed like a negative binomial, with the
  over-dispersion coming from the biology rather than from an extra free parameter.
* **Dropout** (technical zeros beyond Poisson sampling, as in Splatter): a count is zeroed
  with probability ``1 / (1 + exp(1.5 * (ln mu_cj - m)))``, ``mu`` the Poisson mean, so
  weakly expressed genes drop out more; the midpoint ``m`` ~ ``U(-2.5, -0.5)`` per dataset.

Randomness is drawn per *unit* of :data:`RNG_UNIT_CELLS` cells, each unit with its own
generator derived from (seed, dataset, unit index): the cells of a dataset are the same
whatever block size is used to write them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .kinetics import KineticPlan, steady_state

#: Cells per independent random stream (fixed: changing it changes every simulated value).
RNG_UNIT_CELLS = 1024

STATE_ON_RANGE = (0.6, 1.0)
STATE_OFF_RANGE = (0.01, 0.08)
STATE_P_ON = 0.35
STATE_JITTER_SIGMA = 0.2
CONTEXT_SHIFT_SIGMA = 0.15
NOISE_SIGMA_RANGE = (0.15, 0.35)
DEPTH_PER_GENE_RANGE = (0.5, 3.0)  # log-uniform
LIBRARY_SIGMA = 0.35
DROPOUT_SHAPE = 1.5
DROPOUT_MID_RANGE = (-2.5, -0.5)
STATES_PER_DATASET = (2, 4)


@dataclass(frozen=True)
class DatasetContext:
    """How one dataset samples the shared GRN (recorded in the dataset's attributes)."""

    name: str
    states: np.ndarray        # int64 indices into the state pool
    proportions: np.ndarray   # float64, sums to 1
    master_shift: np.ndarray  # float32 (n_masters,)
    noise_sigma: float
    depth: float
    dropout_mid: float

    def describe(self, state_names: list[str]) -> dict:
        return {"cell_states": [state_names[s] for s in self.states],
                "state_proportions": [round(float(p), 6) for p in self.proportions],
                "noise_sigma": round(self.noise_sigma, 6), "depth": round(self.depth, 3),
                "library_sigma": LIBRARY_SIGMA, "dropout_mid": round(self.dropout_mid, 6),
                "dropout_shape": DROPOUT_SHAPE}


def make_state_pool(n_states: int, n_masters: int, rng: np.random.Generator) -> np.ndarray:
    """(n_states x n_masters) master activities; every state has at least one master on."""
    on = rng.random((n_states, n_masters)) < STATE_P_ON
    forced = rng.integers(0, n_masters, size=n_states)
    on[np.arange(n_states), forced] = True
    high = rng.uniform(*STATE_ON_RANGE, size=(n_states, n_masters))
    low = rng.uniform(*STATE_OFF_RANGE, size=(n_states, n_masters))
    return np.where(on, high, low).astype(np.float32)


def make_context(name: str, n_pool: int, n_masters: int, n_genes: int,
                 rng: np.random.Generator) -> DatasetContext:
    lo, hi = STATES_PER_DATASET
    k = int(rng.integers(min(lo, n_pool), min(hi, n_pool) + 1))
    states = np.sort(rng.choice(n_pool, size=k, replace=False))
    proportions = rng.dirichlet(np.full(k, 2.0))
    shift = np.exp(rng.normal(0.0, CONTEXT_SHIFT_SIGMA, size=n_masters)).astype(np.float32)
    depth = n_genes * float(np.exp(rng.uniform(*np.log(DEPTH_PER_GENE_RANGE))))
    return DatasetContext(name=name, states=states, proportions=proportions, master_shift=shift,
                          noise_sigma=float(rng.uniform(*NOISE_SIGMA_RANGE)), depth=depth,
                          dropout_mid=float(rng.uniform(*DROPOUT_MID_RANGE)))


def sample_unit(plan: KineticPlan, pool: np.ndarray, ctx: DatasetContext, n_cells: int,
                rng: np.random.Generator, gene_order: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray]:
    """Counts (cells x genes, C-contiguous float32) and the pool state index of each cell.

    Columns follow ``gene_order`` (indices into the GRN's genes; default GRN order). The draws
    happen in a fixed order, so one (generator, n_cells) gives one result.
    """
    state = ctx.states[rng.choice(len(ctx.states), size=n_cells, p=ctx.proportions)]
    jitter = rng.standard_normal((pool.shape[1], n_cells), dtype=np.float32)
    activity = (pool[state].T * ctx.master_shift[:, None]
                * _lognormal_factor(jitter, STATE_JITTER_SIGMA))
    eps = rng.standard_normal((plan.n_genes, n_cells), dtype=np.float32)
    x = steady_state(plan, activity, _lognormal_factor(eps, ctx.noise_sigma))
    del eps
    # Cell-major from here on: rows of the CSR blocks the writer takes.
    mu = np.ascontiguousarray((x if gene_order is None else x[gene_order]).T)
    del x
    lib = ctx.depth * _lognormal_factor(rng.standard_normal(n_cells), LIBRARY_SIGMA)
    mu *= (lib / mu.sum(axis=1, dtype=np.float64)).astype(np.float32)[:, None]
    counts = rng.poisson(mu).astype(np.float32)
    # Dropout: zero with probability 1/(1+exp(shape*(ln mu - mid))); drawn for every entry so
    # the stream does not depend on which entries happen to be non-zero.
    u = rng.random(counts.shape, dtype=np.float32)
    logit = np.log(np.maximum(mu, np.float32(1e-30)))
    logit -= np.float32(ctx.dropout_mid)
    logit *= np.float32(DROPOUT_SHAPE)
    # keep  <=>  u >= p_drop = 1/(1+exp(logit))  <=>  u * (1 + exp(logit)) >= 1
    np.exp(np.minimum(logit, np.float32(60.0), out=logit), out=logit)
    logit += 1.0
    logit *= u
    counts[logit < 1.0] = 0.0
    return counts, state


def _lognormal_factor(eps: np.ndarray, sigma: float) -> np.ndarray:
    """exp(sigma * eps - sigma^2 / 2): multiplicative noise with mean exactly 1."""
    out = eps * np.asarray(sigma, dtype=eps.dtype)
    out -= np.asarray(sigma * sigma / 2, dtype=eps.dtype)
    return np.exp(out, out=out)
