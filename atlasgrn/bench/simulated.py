"""A simulated atlas as a benchmark root in GENELink's layout, so the BEELINE bench (its
protocols, baselines and translators) runs unchanged on data whose network is known exactly.

The simulator draws every dataset of an atlas from one GRN. Two of its datasets become the
benchmark's training and test datasets, and the TFs are split in two halves: the training
network holds the edges of one half (in the first dataset), the test network the edges of the
other half (in the second). Every regulator of the test network is then unseen as a source, and
the test cells are unseen too: "held-out regulators on a held-out dataset".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..atlas import open_atlas
from ..atlas.expression import expression_matrix
from ..models.values import to_model_space
from .genelink import EXPRESSION_FILE, GENES_FILE, NETWORK_FILE, TF_FILE

#: The network-type folder name of a simulated root.
SIM_NETWORK = "Sim"
TRAIN_NAME, TEST_NAME = "simtrain", "simtest"


@dataclass(frozen=True)
class SimulatedRoot:
    """What :func:`write_simulated_root` wrote."""

    root: Path
    train_tfs: tuple[str, ...]
    test_tfs: tuple[str, ...]
    n_genes: int


def split_regulators(tfs: Sequence[str], seed: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Two disjoint halves of the TFs (sorted each): training regulators, test regulators."""
    order = np.random.default_rng(seed).permutation(sorted(tfs))
    half = len(order) // 2
    return tuple(sorted(map(str, order[:half]))), tuple(sorted(map(str, order[half:])))


def _write_set(root: Path, dataset: str, genes: Sequence[str], tfs: Sequence[str],
               edges: pd.DataFrame, expression: np.ndarray) -> None:
    size = f"TFs+{len(genes)}"
    folder = root / "networks" / SIM_NETWORK / dataset / size
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"Gene": list(genes), "index": range(len(genes))}).to_csv(
        folder / GENES_FILE, index=True)
    pd.DataFrame({"TF": list(tfs), "index": range(len(tfs))}).to_csv(folder / TF_FILE, index=True)
    edges.rename(columns={"source": "Gene1", "target": "Gene2"}).to_csv(
        folder / NETWORK_FILE, index=False)
    expr_dir = root / "expression" / dataset / size
    expr_dir.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(expression.T, index=list(genes),
                         columns=[f"cell{i}" for i in range(expression.shape[0])])
    frame.to_csv(expr_dir / (EXPRESSION_FILE + ".gz"), float_format="%.5g")


def write_simulated_root(atlas: str, edges_path: str, tfs: Sequence[str], root: str | Path, *,
                         train_dataset: str,
                         test_dataset: str, seed: int = 0, max_cells: int = 2000
                         ) -> SimulatedRoot:
    """Write ``root`` (a new folder) from two datasets of a simulated atlas, its true edges and
    its TFs (every TF is listed in both sets, for the target-is-TF baseline and protocol M).

    ``max_cells``: at most this many evenly spaced cells per dataset go into each expression
    matrix (the statistics baselines read them; the scFM probes read only gene symbols and,
    for the knockout read-out, this matrix)."""
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root} exists: choose a new folder")
    store = open_atlas(atlas)
    all_edges = pd.read_parquet(edges_path)[["source", "target"]].astype(str)
    tfs = sorted(map(str, tfs))
    train_tfs, test_tfs = split_regulators(tfs, seed)
    genes: tuple[str, ...] | None = None
    for dataset, name, regs in ((train_dataset, TRAIN_NAME, train_tfs),
                                (test_dataset, TEST_NAME, test_tfs)):
        ds = store.dataset(dataset)
        genes = tuple(map(str, ds.genes)) if genes is None else genes
        values = expression_matrix(ds, genes, max_cells=max_cells)
        part = all_edges[all_edges["source"].isin(regs)].sort_values(["source", "target"])
        # BEELINE's matrices are log-normalised: the one per-cell normalisation (log1p-CP10k)
        _write_set(root, name, genes, tfs, part, to_model_space(values, ds.info.value_kind))
    assert genes is not None
    return SimulatedRoot(root=root, train_tfs=train_tfs, test_tfs=test_tfs, n_genes=len(genes))
