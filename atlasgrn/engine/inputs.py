"""Resolving a run's inputs on the driver: model, translator, regulators, datasets, digests.

Everything the workers need is reduced here to small picklable descriptors (paths, gene lists,
digests), and every bad input fails here, before Ray starts, as one :class:`AtlasgrnError` line.
Genes are named by their *model vocabulary symbol* (mouse symbols map by upper-case, as
``map_genes`` does), so the same gene has one name in every dataset and the cross-dataset
consensus can group by name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import numpy as np

from ..atlas import open_atlas
from ..atlas.dataset import AtlasDataset
from ..errors import AtlasgrnError
from ..models.values import to_model_space
from ..models.vocab import SPECIAL_TOKENS, canonical_symbols

BUNDLED_TF_FILES = {"human": "tfs_human.txt", "mouse": "tfs_mouse.txt"}


def dir_digest(path: str | Path, names: Sequence[str] | None = None) -> str:
    """sha256 over a checkpoint directory's files (name + bytes), in name order."""
    p = Path(path)
    files = sorted(p.iterdir()) if names is None else [p / n for n in names]
    h = hashlib.sha256()
    for f in files:
        if f.is_file() and not f.name.startswith("."):
            h.update(f.name.encode() + b"\0")
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


@lru_cache(maxsize=None)
def bundled_regulators(species: str) -> tuple[str, ...]:
    """The bundled TF list of a species (see ``atlasgrn/data/TF_LISTS.md``)."""
    name = BUNDLED_TF_FILES.get(species)
    if name is None:
        raise AtlasgrnError(f"no bundled regulator list for species {species!r}",
                            key="--regulators", remedy="pass --regulators FILE (one symbol a "
                            f"line); bundled lists exist for {', '.join(BUNDLED_TF_FILES)}")
    text = resources.files("atlasgrn.data").joinpath(name).read_text(encoding="utf-8")
    return tuple(s.strip() for s in text.splitlines() if s.strip())


def read_regulators(path: str) -> tuple[str, ...]:
    """A user TF list: one symbol a line, '#' comments allowed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AtlasgrnError(f"cannot read the regulator list ({exc.strerror})", path=path,
                            key="--regulators", remedy="pass a text file, one symbol a line"
                            ) from None
    regs = tuple(s.split("#", 1)[0].strip() for s in text.splitlines())
    regs = tuple(s for s in regs if s)
    if not regs:
        raise AtlasgrnError("the regulator list is empty", path=path, key="--regulators",
                            remedy="list one regulator symbol a line")
    return regs


@dataclass(frozen=True)
class DatasetInput:
    """One dataset as the planner and the workers see it (vocabulary symbols)."""

    name: str
    species: str
    value_kind: str
    genes: tuple[str, ...]         # vocabulary symbols of the usable genes, sorted
    regulators: tuple[str, ...]    # vocabulary symbols of the candidate regulators
    anchors: tuple[str, ...]       # context fill priority: most-expressed usable genes
    n_cells: int


def usable_genes(ds: AtlasDataset, vocab: Mapping[str, int]) -> dict[str, int]:
    """Vocabulary symbol -> dataset column of every dataset gene the model knows (first wins)."""
    out: dict[str, int] = {}
    for col, sym in enumerate(canonical_symbols(vocab, list(ds.genes))):
        if sym is not None and sym not in SPECIAL_TOKENS and sym not in out:
            out[sym] = col
    return out


def mean_profile(ds: AtlasDataset, vocab: Mapping[str, int]) -> dict[str, float]:
    """The dataset's mean cell in the model's value space, per vocabulary symbol.

    The per-gene mean (cached in the store by ``gene_stats``) is normalised like one cell
    (``to_model_space``): the model sees the "average cell" of the dataset. This is cheap (no
    pass over the cells once the statistics are cached) and uses the one normalisation of the
    project, so the profile lives on the same scale as the probes' grids.
    """
    stats = ds.gene_stats()
    prof = to_model_space(stats.mean[None, :].astype(np.float64), ds.info.value_kind)[0]
    return {sym: float(prof[col]) for sym, col in usable_genes(ds, vocab).items()}


def resolve_datasets(atlas_uri: str, names: Sequence[str] | None, vocab: Mapping[str, int],
                     regulators_path: str | None, n_anchors: int,
                     max_regulators: int | None = None) -> list[DatasetInput]:
    """Open the atlas and describe every selected dataset; bad input raises one line."""
    atlas = open_atlas(atlas_uri)
    all_names = list(atlas.names)
    chosen = list(names) if names else all_names
    unknown = [n for n in chosen if n not in all_names]
    if unknown:
        raise AtlasgrnError(f"dataset '{unknown[0]}' is not in the atlas", path=atlas_uri,
                            key="--datasets", remedy=f"one of: {', '.join(all_names)}")
    if not chosen:
        raise AtlasgrnError("the atlas holds no dataset", path=atlas_uri,
                            remedy="ingest a dataset first ('atlasgrn ingest')")
    user_regs = read_regulators(regulators_path) if regulators_path else None
    out = []
    for name in chosen:
        ds = atlas.dataset(name)
        genes = usable_genes(ds, vocab)
        if not genes:
            raise AtlasgrnError(f"no gene of dataset '{name}' is in the model vocabulary",
                                path=atlas_uri, key=name, remedy="check its gene symbols (the "
                                "model uses human symbols; mouse maps by upper-case), or leave it "
                                "out with --datasets")
        regs_raw = user_regs if user_regs is not None else bundled_regulators(ds.info.species)
        reg_syms = {s for s in canonical_symbols(vocab, list(regs_raw)) if s is not None}
        regs = tuple(sorted(reg_syms & set(genes)))
        if not regs:
            raise AtlasgrnError(f"dataset '{name}' has no candidate regulator among its genes",
                                path=atlas_uri, key=name, remedy="pass --regulators with symbols "
                                "the dataset measures, or leave it out with --datasets")
        stats = ds.gene_stats()
        ranked = sorted(genes, key=lambda s: (-float(stats.mean[genes[s]]), s))
        if max_regulators is not None and len(regs) > max_regulators:
            reg_set = set(regs)
            regs = tuple(sorted([g for g in ranked if g in reg_set][:max_regulators]))
        out.append(DatasetInput(name=name, species=ds.info.species,
                                value_kind=ds.info.value_kind, genes=tuple(sorted(genes)),
                                regulators=regs, anchors=tuple(ranked[:n_anchors]),
                                n_cells=ds.info.n_cells))
    return out


def atlas_digest(atlas_uri: str, names: Sequence[str]) -> dict[str, str]:
    """Cheap identity of each dataset: shape, species, value kind and gene-list hash.

    Hashing every value of a large atlas would cost a full read per run; the dataset writer
    refuses in-place edits (``overwrite`` replaces the whole dataset), so shape + genes + attrs
    identify a dataset for the purpose of "is this the same run".
    """
    atlas = open_atlas(atlas_uri)
    out = {}
    for n in names:
        ds = atlas.dataset(n)
        i = ds.info
        h = hashlib.sha256("\n".join(map(str, ds.genes)).encode()).hexdigest()[:16]
        out[n] = f"{i.n_cells}x{i.n_genes}:{i.species}:{i.value_kind}:{h}"
    return out
