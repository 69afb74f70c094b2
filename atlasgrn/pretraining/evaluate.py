"""How good is a model's reconstruction on cells it never saw, per dataset?

Three figures per dataset, on held-out cells (the same seeded split as pre-training):
- masked MSE of the model vs per-gene-mean imputation (the mean of each gene over the
  dataset's training cells, in model space) on the *same* masked positions: the model earns
  its keep only if it beats the baseline;
- MSE on unmasked positions (the regime the probes' virtual cells live in);
- masked MSE vs context length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import AtlasgrnError
from ..models.scgpt_model import ScGPTModel
from .loop import choose_mask
from .run import open_training_datasets
from .sampler import DatasetCells, SamplerConfig, heldout_cells, pack, tokenise_cells

MASK_RATIO = 0.25


@dataclass
class DatasetEval:
    dataset: str
    n_cells: int
    context_len: int
    masked_mse_model: float
    masked_mse_gene_mean: float
    unmasked_mse: float
    mse_by_length: dict[int, float] = field(default_factory=dict)

    @property
    def improvement(self) -> float:
        """Relative masked-MSE reduction over per-gene-mean imputation (0.2 = 20% lower)."""
        base = self.masked_mse_gene_mean
        return (base - self.masked_mse_model) / base if base > 0 else 0.0


def training_gene_means(d: DatasetCells, max_cells: int, block_cells: int) -> np.ndarray:
    """Mean of each kept gene over (up to ``max_cells``) training cells, in model space."""
    total = np.zeros(d.n_genes, dtype=np.float64)
    n = 0
    for block in d.iter_split("train", None, block_cells):
        block = block[: max_cells - n]
        total += np.asarray(block.sum(axis=0)).ravel()
        n += block.shape[0]
        if n >= max_cells:
            break
    return (total / max(n, 1)).astype(np.float32)


@torch.no_grad()
def _masked_errors(model: ScGPTModel, rows, means: np.ndarray, seed: int, batch_size: int
                   ) -> tuple[float, float, float]:
    """(model masked MSE, gene-mean masked MSE, model unmasked MSE) over token rows."""
    a, v = model.config.arch, model.config.values
    gen = torch.Generator().manual_seed(seed)
    sums = np.zeros(3)
    counts = np.zeros(3)
    for i in range(0, len(rows), batch_size):
        chunk = rows[i:i + batch_size]
        ids, vals = pack([(t, x) for t, x, _ in chunk], a.pad_id, v.pad_value)
        cols, _ = pack([(c, x) for _, x, c in chunk], 0, 0.0)
        ids_t, vals_t = torch.from_numpy(ids), torch.from_numpy(vals)
        mask = choose_mask(ids_t, a.pad_id, MASK_RATIO, gen)
        inputs = vals_t.masked_fill(mask, v.mask_value)
        dev = model.device
        pred = model(ids_t.to(dev), inputs.to(dev)).cpu()
        real = ids_t != a.pad_id
        sq = (pred - vals_t) ** 2
        base = (torch.from_numpy(means[cols]) - vals_t) ** 2
        sums += [float(sq[mask].sum()), float(base[mask].sum()), float(sq[real & ~mask].sum())]
        counts += [int(mask.sum()), int(mask.sum()), int((real & ~mask).sum())]
    return tuple(float(s / max(c, 1)) for s, c in zip(sums, counts))  # type: ignore[return-value]


def evaluate_model(model: ScGPTModel, atlas_uri: str, *, datasets: Sequence[str] | None = None,
                   n_cells: int = 256, context_len: int | None = None,
                   lengths: Sequence[int] = (64, 256, 1024), mean_cells: int = 5000,
                   batch_size: int = 32, seed: int | None = None,
                   val_fraction: float | None = None) -> list[DatasetEval]:
    """Reconstruction figures for each dataset (default: all datasets of the atlas).

    Held-out cells follow the split recorded in the model's provenance (``heldout``) unless
    ``seed``/``val_fraction`` are given; for an atlas the model never saw, every split is new.
    """
    held = dict(model.config.provenance.get("heldout", {}))
    seed = int(held.get("seed", 0)) if seed is None else seed
    frac = float(held.get("val_fraction", 0.05)) if val_fraction is None else val_fraction
    from ..atlas import open_atlas
    names = list(open_atlas(atlas_uri).names)
    if datasets:
        missing = sorted(set(datasets) - set(names))
        if missing:
            raise AtlasgrnError(f"dataset '{missing[0]}' is not in the atlas", path=atlas_uri,
                                key=missing[0], remedy=f"one of: {', '.join(names)}")
        exclude = [n for n in names if n not in set(datasets)]
    else:
        exclude = []
    cells, _ = open_training_datasets(atlas_uri, dict(model.vocab), exclude, seed, frac)
    cfg = SamplerConfig(seed=seed, val_fraction=frac)
    full = context_len or model.config.arch.max_len
    out = []
    for d in cells:
        held_cells = heldout_cells(d, n_cells, cfg.block_cells)
        if held_cells.shape[0] == 0:
            continue
        means = training_gene_means(d, mean_cells, cfg.block_cells)
        rng = np.random.default_rng([seed, 4242])
        length = min(full, d.n_genes)
        rows = tokenise_cells(d, held_cells, length, cfg, rng, 0, 0.0)
        m, b, u = _masked_errors(model, rows, means, seed, batch_size)
        by_len = {}
        for L in lengths:
            if L >= d.n_genes:
                continue
            rows_l = tokenise_cells(d, held_cells, L, cfg, np.random.default_rng([seed, L]),
                                    0, 0.0)
            by_len[int(L)] = _masked_errors(model, rows_l, means, seed, batch_size)[0]
        by_len[int(length)] = m
        out.append(DatasetEval(d.name, int(held_cells.shape[0]), int(length), m, b, u, by_len))
    return out


def format_report(rows: Sequence[DatasetEval]) -> str:
    """A plain-text table, one line per dataset."""
    lines = ["dataset\tcells\tcontext\tmasked_mse_model\tmasked_mse_gene_mean\timprovement"
             "\tunmasked_mse\tmasked_mse_by_length"]
    for r in rows:
        by = ", ".join(f"{k}:{v:.4f}" for k, v in sorted(r.mse_by_length.items()))
        lines.append(f"{r.dataset}\t{r.n_cells}\t{r.context_len}\t{r.masked_mse_model:.4f}\t"
                     f"{r.masked_mse_gene_mean:.4f}\t{r.improvement:+.1%}\t{r.unmasked_mse:.4f}"
                     f"\t{by}")
    return "\n".join(lines)
