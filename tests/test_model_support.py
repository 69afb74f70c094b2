"""Support for the model/pre-training tests (no tests here): shared data, small atlases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlasgrn.atlas import DatasetWriter

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    return REPO / ".." / "shared" / "data"


def require_shared(rel: str) -> Path:
    path = shared_data() / rel
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path


def beeline_atlas(out: Path, cells: int | None = None, genes: int | None = None,
                  sets: tuple[str, ...] = ("mESC",)) -> Path:
    """Atlas of BEELINE TFs+500 expression (genes x cells CSV, log-scale) via DatasetWriter."""
    for name in sets:
        csv = require_shared(f"beeline_genelink/expression/{name}/TFs+500/BL--ExpressionData.csv.gz")
        frame = pd.read_csv(csv, index_col=0)
        if genes is not None:
            frame = frame.iloc[:genes]
        if cells is not None:
            frame = frame.iloc[:, :cells]
        x = np.ascontiguousarray(frame.to_numpy(dtype=np.float32).T)
        x = np.maximum(x, 0.0)
        species = "human" if name.startswith("h") else "mouse"
        with DatasetWriter(out, name, list(frame.index), species=species, value_kind="log1p",
                           source=str(csv)) as w:
            w.append(x, cell_names=list(frame.columns))
            w.commit()
    return out


def simulated_atlas(out: Path, n_genes: int = 40, n_cells: int = 400, seed: int = 0,
                    name: str = "sim", symbol_offset: int = 0) -> Path:
    """A small atlas with gene-gene structure (low-rank counts) under real scGPT symbols."""
    from atlasgrn.models.vocab import scgpt_human_vocab
    rng = np.random.default_rng(seed)
    symbols = [s for s in sorted(scgpt_human_vocab()) if s.isalpha() and len(s) == 4]
    symbols = symbols[symbol_offset:symbol_offset + n_genes]
    programs = rng.gamma(1.0, 1.0, size=(n_cells, 3))
    loadings = rng.gamma(0.6, 1.0, size=(3, n_genes))
    counts = rng.poisson(programs @ loadings * 3.0).astype(np.float32)
    with DatasetWriter(out, name, symbols, species="human", value_kind="counts",
                       source="simulated") as w:
        w.append(counts)
        w.commit()
    return out
