"""A tiny GENELink-layout tree for the benchmark tests (written into a tmp folder)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd


def write_set(root: Path, network: str, dataset: str, size: int, genes: Sequence[str],
              tfs: Sequence[str], edges: Sequence[tuple[str, str]], gz: bool = True) -> Path:
    """One networks/<network>/<dataset>/TFs+<size>/ folder in GENELink's format."""
    folder = root / "networks" / network / dataset / f"TFs+{size}"
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".csv.gz" if gz else ".csv"
    pos = {g: i for i, g in enumerate(genes)}
    pd.DataFrame({"Gene": list(genes), "index": range(len(genes))}).to_csv(
        folder / f"Target{ext}")
    pd.DataFrame({"TF": list(tfs), "index": [pos[t] for t in tfs]}).to_csv(folder / f"TF{ext}")
    pd.DataFrame(list(edges), columns=["Gene1", "Gene2"]).to_csv(
        folder / f"BL--network{ext}", index=False)
    pd.DataFrame({"TF": [pos.get(a, -1) for a, _ in edges],
                  "Target": [pos.get(b, -1) for _, b in edges]}
                 ).to_csv(folder / f"Label{ext}")
    return folder


def write_expression(root: Path, dataset: str, size: int, frame: pd.DataFrame) -> Path:
    """expression/<dataset>/TFs+<size>/BL--ExpressionData.csv.gz from a genes x cells frame."""
    folder = root / "expression" / dataset / f"TFs+{size}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "BL--ExpressionData.csv.gz"
    frame.to_csv(path)
    return path


def toy_genes(n: int, prefix: str = "G") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def random_network(genes: Sequence[str], tfs: Sequence[str], n_edges: int, seed: int,
                   power: float = 0.8) -> list[tuple[str, str]]:
    """Distinct TF -> gene edges, no self-loops, preferring a few hub targets (skewed in-degree)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / (1.0 + np.arange(len(genes))) ** power
    weights /= weights.sum()
    edges: set[tuple[str, str]] = set()
    while len(edges) < n_edges:
        t = tfs[rng.integers(len(tfs))]
        g = genes[rng.choice(len(genes), p=weights)]
        if g != t:
            edges.add((t, g))
    return sorted(edges)


def build_toy_tree(root: Path) -> Path:
    """Two network types over three datasets; hESC without expression, like the real data."""
    genes = toy_genes(100)
    tfs = genes[:20]
    for k, ds in enumerate(["hESC", "mDC", "mESC"]):
        for net, n_edges in (("STRING", 150), ("Custom-Net", 110)):
            write_set(root, net, ds, 500, genes, tfs, random_network(genes, tfs, n_edges,
                                                                     seed=10 * k + n_edges))
        if ds != "hESC":
            rng = np.random.default_rng(k)
            shuffled = list(rng.permutation(genes))  # row order differs from Target.csv
            values = rng.gamma(1.0, 2.0, size=(len(genes), 30))
            write_expression(root, ds, 500, pd.DataFrame(
                values, index=shuffled, columns=[f"c{i}" for i in range(30)]))
    write_set(root, "Lofgof", "mESC", 500, genes, tfs, random_network(genes, tfs, 50, seed=99))
    return root
