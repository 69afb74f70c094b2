"""Real gene symbols bundled with atlasgrn (see ``atlasgrn/data/TF_LISTS.md`` for provenance).

Simulated atlases carry real human symbols so that foundation models with a fixed vocabulary
(scGPT, Geneformer) can embed every simulated gene: a synthetic benchmark with made-up names
would test nothing a real run does. The lists are read from the package, never from
``../shared``, so the simulator works from an installed wheel.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from ..errors import AtlasgrnError

_FILES = {
    ("tfs", "human"): "tfs_human.txt",
    ("tfs", "mouse"): "tfs_mouse.txt",
    ("genes", "human"): "genes_human.txt",
}


@lru_cache(maxsize=None)
def _read(kind: str, species: str) -> tuple[str, ...]:
    name = _FILES.get((kind, species))
    if name is None:
        raise AtlasgrnError(f"no bundled {kind} list for species {species!r}",
                            key="species", remedy="use species 'human'")
    text = resources.files("atlasgrn.data").joinpath(name).read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def transcription_factors(species: str = "human") -> tuple[str, ...]:
    """Sorted TF symbols of ``species`` (BEELINE's RegNetwork/TRRUST-derived list)."""
    return _read("tfs", species)


def human_genes() -> tuple[str, ...]:
    """Sorted real human symbols from scGPT's vocabulary (protein-coding-looking, TFs included)."""
    return _read("genes", "human")


def simulation_pools() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(TF pool, non-TF pool) for the simulator: both inside the bundled scGPT-vocabulary list,
    so regulators are real TFs and targets are real genes that are not TFs."""
    genes = human_genes()
    tfs = set(transcription_factors("human"))
    return (tuple(g for g in genes if g in tfs), tuple(g for g in genes if g not in tfs))
