"""Resolving a run's inputs on the driver: regulators, datasets, their genes, anchors, profiles.

Everything the workers need is reduced here to small picklable descriptors (gene lists, anchors,
one mean profile per dataset), and every bad input fails here, before Ray starts, as one
:class:`AtlasgrnError` line. Genes are named by their *model vocabulary symbol* (mouse symbols
map by upper-case, as ``map_genes`` does), so the same gene has one name in every dataset and
the cross-dataset consensus can group by name. Each dataset is described by the feature layer's
:func:`~atlasgrn.features.build_universe`, the same call translator training and the benchmark
make, so anchors and profiles follow one rule.

The atlas is opened read-only: the job never writes into its inputs. Per-gene statistics come
from the store's cache when ingest wrote one, else they are streamed once here, on the driver.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..atlas import open_atlas
from ..atlas.contexts import context_stats, read_context_labels
from ..atlas.dataset import AtlasDataset
from ..atlas.expression import expression_matrix
from ..cli_defaults import field_default
from ..digest import json_sha256
from ..errors import AtlasgrnError
from ..features import FeatureSpec, GeneUniverse, build_universe, rank_statistics
from ..models.vocab import canonical_symbols
from .plan import network_name

#: The default candidate regulators: Lambert et al. 2018's census of human transcription factors,
#: mouse by upper-case symbol (see ``atlasgrn/data/TF_LISTS.md``). Not BEELINE's lists, which
#: count housekeeping genes (NPM1, EEF1A1, BTF3) as regulators.
BUNDLED_TF_FILES = {"human": "regulators_human.txt", "mouse": "regulators_mouse.txt"}


@lru_cache(maxsize=None)
def bundled_regulators(species: str) -> tuple[str, ...]:
    """The bundled regulator list of a species (see ``atlasgrn/data/TF_LISTS.md``)."""
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
    anchors: tuple[str, ...]       # context fill priority (the feature spec's anchor policy)
    n_cells: int
    context: str = ""              # the --context-key value of this network ("": whole dataset)

    @property
    def network(self) -> str:
        return network_name(self.name, self.context)


@dataclass(frozen=True)
class ResolvedDatasets:
    """The selected datasets, and the mean profile of each where the spec needs one."""

    datasets: list[DatasetInput]            # one per network: a dataset, or each context
    profiles: dict[str, dict[str, float]]   # per network
    #: per dataset with a context key: cells of every context value, kept or not
    context_cells: dict[str, dict[str, int]] = field(default_factory=dict)
    #: per network, where the spec has rank-statistic kinds: {kind: [regulators, genes]}
    stats: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    #: per network: the cells the rank statistics were computed from
    stat_cells: dict[str, int] = field(default_factory=dict)


def network_statistics(ds: AtlasDataset, universe: GeneUniverse, item: DatasetInput,
                       kinds: Sequence[str], max_cells: int,
                       cells: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], int]:
    """The rank-statistic features of one network over its regulators x genes (vocabulary
    symbols), from at most ``max_cells`` evenly spaced cells of the dataset or of ``cells``
    (a context), and how many cells that was."""
    raw_of: dict[str, str] = {}
    for raw, sym in universe.names.items():
        raw_of.setdefault(sym, raw)
    values = expression_matrix(ds, [raw_of[g] for g in item.genes], max_cells=max_cells,
                               cells=cells)
    return rank_statistics(values, item.genes, item.regulators, kinds), int(values.shape[0])


def describe_dataset(ds: AtlasDataset, vocab: Mapping[str, int], spec: FeatureSpec
                     ) -> tuple[GeneUniverse, dict[str, float]]:
    """The dataset's universe for ``spec``, and each vocabulary symbol's raw mean expression
    (streamed once per dataset when the store has no cached statistics)."""
    stats = ds.gene_stats()
    universe = build_universe(vocab, list(ds.genes), spec, means=stats.mean,
                              value_kind=ds.info.value_kind, label=ds.name)
    means = {}
    for pos, name in enumerate(map(str, ds.genes)):
        sym = universe.names.get(name)
        if sym is not None and sym not in means:
            means[sym] = float(stats.mean[pos])
    return universe, means


def resolve_datasets(atlas_uri: str, names: Sequence[str] | None, vocab: Mapping[str, int],
                     regulators_path: str | None, spec: FeatureSpec,
                     max_regulators: int | None = None,
                     anchors: Sequence[str] | None = None,
                     context_key: str | None = None, min_cells: int = 50,
                     scheduler: Any = None,
                     stat_cells: int | None = None) -> ResolvedDatasets:
    """Open the atlas (read-only) and describe every selected dataset; bad input raises.
    ``anchors`` given (universal mode: the model's own list) replace each dataset's.
    ``context_key`` (context mode) names an obs column: each of its values with at least
    ``min_cells`` cells becomes a network with its own mean profile, computed with dask over
    the lazy matrix (``scheduler``: dask's, e.g. Ray's; None: threads). When the spec has
    rank-statistic kinds, each network's are computed here from at most ``stat_cells`` cells
    (default: the run config's)."""
    if stat_cells is None:
        from .config import RunConfig

        stat_cells = int(field_default(RunConfig, "stat_cells"))
    atlas = open_atlas(atlas_uri, writable=False)
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
    out: list[DatasetInput] = []
    profiles: dict[str, dict[str, float]] = {}
    context_cells: dict[str, dict[str, int]] = {}
    ranks: dict[str, dict[str, np.ndarray]] = {}
    used_cells: dict[str, int] = {}
    for name in chosen:
        ds = atlas.dataset(name)
        try:
            universe, means = describe_dataset(ds, vocab, spec)
        except AtlasgrnError as exc:
            raise AtlasgrnError(f"dataset '{name}': {exc.detail}", path=atlas_uri, key=name,
                                remedy=exc.remedy or "check its gene symbols (the model uses "
                                "human symbols; mouse maps by upper-case), or leave it out with "
                                "--datasets") from None
        genes = set(universe.genes)
        regs_raw = user_regs if user_regs is not None else bundled_regulators(ds.info.species)
        reg_syms = {s for s in canonical_symbols(vocab, list(regs_raw)) if s is not None}
        regs = tuple(sorted(reg_syms & genes))
        if not regs:
            raise AtlasgrnError(f"dataset '{name}' has no candidate regulator among its genes",
                                path=atlas_uri, key=name, remedy="pass --regulators with symbols "
                                "the dataset measures, or leave it out with --datasets")
        if max_regulators is not None and len(regs) > max_regulators:
            ranked = sorted(regs, key=lambda g: (-means[g], g))
            regs = tuple(sorted(ranked[:max_regulators]))
        networks = [("", universe, ds.info.n_cells)]
        if context_key:
            stats = context_stats(ds, context_key, min_cells=min_cells, scheduler=scheduler)
            context_cells[name] = dict(stats.n_cells)
            networks = [(c, build_universe(vocab, list(ds.genes), spec, means=stats.mean[c],
                                           value_kind=ds.info.value_kind,
                                           label=f"{name}/{c}"), stats.n_cells[c])
                        for c in stats.contexts]
        for context, uni, n_cells in networks:
            item = DatasetInput(name=name, species=ds.info.species,
                                value_kind=ds.info.value_kind, genes=universe.genes,
                                regulators=regs,
                                anchors=(tuple(anchors) if anchors is not None
                                         else uni.anchors[:spec.context_len]),
                                n_cells=n_cells, context=context)
            out.append(item)
            if uni.profile is not None:
                profiles[item.network] = dict(uni.profile)
            if spec.stat_kinds:
                cells = None
                if context:
                    labels = read_context_labels(ds, str(context_key))
                    cells = np.flatnonzero(labels.codes == labels.names.index(context))
                ranks[item.network], used_cells[item.network] = network_statistics(
                    ds, universe, item, spec.stat_kinds, stat_cells, cells)
    return ResolvedDatasets(datasets=out, profiles=profiles, context_cells=context_cells,
                            stats=ranks, stat_cells=used_cells)


def canonical_uri(uri: str) -> str:
    """One spelling per atlas location: a local path resolved to an absolute path without a
    trailing slash (``file://`` dropped); a URL with its scheme lower-cased, duplicate and
    trailing slashes removed."""
    import os
    import re

    if uri.startswith("file://"):
        uri = uri[len("file://"):]
        if uri.startswith("localhost/"):
            uri = uri[len("localhost"):]
    if "://" not in uri:
        return str(Path(os.path.expanduser(uri)).resolve())
    scheme, rest = uri.split("://", 1)
    return f"{scheme.lower()}://{re.sub(r'/+', '/', rest).rstrip('/')}"


def atlas_digest(atlas_uri: str, names: Sequence[str]) -> dict[str, str]:
    """Identity of each dataset: shape, species, value kind, gene-list hash, and the content
    digest the dataset writer recorded while streaming the values (so a dataset re-ingested with
    the same shape and genes but other values is another run). Datasets written before the
    digest existed fall back to the rest, since hashing every value would cost a full read per
    run."""
    atlas = open_atlas(atlas_uri, writable=False)
    out = {}
    for n in names:
        ds = atlas.dataset(n)
        i = ds.info
        h = json_sha256([str(g) for g in ds.genes])[:16]
        out[n] = (f"{i.n_cells}x{i.n_genes}:{i.species}:{i.value_kind}:{h}"
                  f":{(i.content_sha256 or 'no-content-digest')[:16]}")
    return out
