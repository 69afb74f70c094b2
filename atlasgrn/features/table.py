"""Dense feature tables ``[S, T, D]`` over a gene universe, for training and the benchmark.

A translator is trained and evaluated on *pairs*, but probes are cheapest per *block*. This lays
``sources x targets`` out in the spec's blocks (:func:`~atlasgrn.features.layout.layout_blocks`,
the job's layout), computes each needed block with :func:`~atlasgrn.features.block_features`
(the job's function), and gathers whatever pairs a protocol asks for. So a table cell holds
exactly the feature the job computes for that pair.

``pairs`` restricts the work to the blocks that hold a needed pair (a training set costs far
less than every TF x gene); cells of skipped blocks, and self pairs, are NaN ("not computed").
Tables are cached on disk per (model, spec, universe, needed pairs, kind) as ``.npz`` files
(no pickle) written atomically.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import write_path_atomic
from ..digest import bytes_sha256, json_sha256
from ..errors import AtlasgrnError
from ..models.interface import GeneModel
from ..probes import gene_embeddings
from .compute import block_features
from .layout import layout_blocks
from .spec import ALL_KINDS, EMBEDDING_KINDS, FeatureSpec
from .universe import GeneUniverse

log = logging.getLogger(__name__)
CACHE_FORMAT = 2


def default_cache_dir() -> Path:
    """``$ATLASGRN_CACHE/features`` or ``~/.cache/atlasgrn/features``."""
    base = os.environ.get("ATLASGRN_CACHE")
    return Path(base) / "features" if base else Path.home() / ".cache" / "atlasgrn" / "features"


@dataclass
class CacheStats:
    """What the last computations hit and missed (manifests record it)."""

    hits: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class FeatureTable:
    """Features ``[S, T, D]`` per kind over ``sources x targets``.

    Rows and columns are labelled by the *given* gene names (first name per vocabulary symbol),
    so callers look pairs up in their own naming; ``universe`` maps them to vocabulary symbols.
    Context kinds are stored densely (``tables``); embedding kinds need no context and are
    gathered from the model's token embeddings on demand (a dense ``[S, T, 2d]`` table of them
    would take hundreds of MB for a 1,000-gene benchmark set).
    """

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    tables: dict[str, np.ndarray]
    universe: GeneUniverse
    model: GeneModel | None = None
    embedding_kinds: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._s = {g: i for i, g in enumerate(self.sources)}
        self._t = {g: i for i, g in enumerate(self.targets)}
        self._emb: dict[str, np.ndarray] = {}
        self._computed: np.ndarray | None = None

    @property
    def kinds(self) -> list[str]:
        return list(self.tables) + list(self.embedding_kinds)

    def positions(self, sources: Sequence[str], targets: Sequence[str]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row and column of each pair, and whether the pair's cell was computed."""
        r = np.fromiter((self._s.get(str(g), -1) for g in sources), np.int64, len(sources))
        c = np.fromiter((self._t.get(str(g), -1) for g in targets), np.int64, len(targets))
        ok = (r >= 0) & (c >= 0)
        if ok.any():
            computed = self.computed_mask()
            ok[ok] = computed[r[ok], c[ok]]
        return r, c, ok

    def computed_mask(self) -> np.ndarray:
        """``[S, T]``: cells every kind computed (False for skipped blocks and self pairs);
        computed once, since every gather consults it."""
        if self._computed is None:
            self._computed = self._computed_cells()
        return self._computed

    def _computed_cells(self) -> np.ndarray:
        src = np.asarray(self.universe.canonical(self.sources), dtype=object)
        tgt = np.asarray(self.universe.canonical(self.targets), dtype=object)
        mask = src[:, None] != tgt[None, :]
        for values in self.tables.values():
            mask &= ~np.isnan(values).any(axis=-1)
        return mask

    def gather(self, sources: Sequence[str], targets: Sequence[str],
               kinds: Sequence[str] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``({kind: [N, D]}, covered[N])``; uncovered pairs are zero rows (score them apart)."""
        r, c, ok = self.positions(sources, targets)
        rr, cc = np.where(ok, r, 0), np.where(ok, c, 0)
        out = {kind: self.rows(kind, rr, cc) for kind in (kinds or self.kinds)}
        for x in out.values():
            x[~ok] = 0.0
        return out, ok

    def rows(self, kind: str, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Features ``[N, D]`` of the cells ``(r[n], c[n])`` (a copy)."""
        if kind in self.tables:
            return self.tables[kind][r, c].reshape(len(r), -1).copy()
        if kind in self.embedding_kinds:
            return self._embedding_rows(kind, r, c)
        raise KeyError(f"kind {kind!r} was not computed; have {self.kinds}")

    def _embedding_rows(self, kind: str, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """``[E_s; E_t]`` or ``E_s + E_t`` in float32, as ``embedding_pairs`` computes them."""
        if not self._emb:
            assert self.model is not None
            vocab = self.model.vocab
            syms = self.universe.canonical(self.sources), self.universe.canonical(self.targets)
            for side, names in zip(("s", "t"), syms):
                ids = torch.tensor([vocab[n] for n in names], dtype=torch.long)
                self._emb[side] = gene_embeddings(self.model, ids).numpy()
        a, b = self._emb["s"][r], self._emb["t"][c]
        return np.concatenate([a, b], axis=1) if kind == "emb_concat" else a + b


def compute_table(model: GeneModel, spec: FeatureSpec, universe: GeneUniverse,
                  sources: Sequence[str], kinds: Sequence[str], *,
                  targets: Sequence[str] | None = None,
                  pairs: tuple[Sequence[str], Sequence[str]] | None = None,
                  cache_dir: str | os.PathLike[str] | None = None,
                  stats: CacheStats | None = None,
                  progress: Callable[[str], None] | None = None) -> FeatureTable:
    """Every ``sources x targets`` feature of ``kinds`` over ``universe`` (given names).

    ``targets`` defaults to the whole universe; names outside the universe are dropped (the
    table's ``info["dropped"]`` counts them). ``kinds`` the spec lacks, or that need a profile
    the universe lacks, are an error. ``cache_dir`` None disables the cache.
    """
    unknown = [k for k in kinds if k not in ALL_KINDS or k not in spec.kinds]
    if unknown:
        raise AtlasgrnError(f"feature kind(s) {unknown} are not in the feature spec",
                            key="kinds", remedy=f"choose from {list(spec.kinds)}")
    if spec.needs_profile(kinds) and universe.profile is None:
        raise AtlasgrnError(f"kinds {list(kinds)} with background {spec.background!r} need the "
                            "expression profile of the genes, and this gene set has none",
                            key="kinds", remedy="give expression for this gene set, or compute "
                                                "kinds that need none with a scalar background")
    src_names = _known(universe, sources)
    given_targets = targets if targets is not None else _given_names(universe)
    tgt_names = _known(universe, given_targets)
    to_sym = universe.names
    src_syms = [to_sym[n] for n in src_names]
    tgt_syms = [to_sym[n] for n in tgt_names]
    s_pos = {s: i for i, s in enumerate(src_syms)}
    t_pos = {t: i for i, t in enumerate(tgt_syms)}
    need = None
    if pairs is not None:
        need = np.zeros((len(src_syms), len(tgt_syms)), dtype=bool)
        for a, b in zip(pairs[0], pairs[1]):
            sa, sb = to_sym.get(str(a)), to_sym.get(str(b))
            if sa in s_pos and sb in t_pos:
                need[s_pos[sa], t_pos[sb]] = True
    blocks = [b for b in layout_blocks(src_syms, tgt_syms, spec.source_block, spec.target_block)
              if need is None or need[np.ix_([s_pos[s] for s in b.sources],
                                             [t_pos[t] for t in b.targets])].any()]
    info: dict[str, Any] = {"unmapped": list(universe.unmapped), "n_sources": len(src_syms),
                            "n_targets": len(tgt_syms), "blocks": len(blocks),
                            "dropped": {"sources": len(sources) - len(src_names),
                                        "targets": len(given_targets) - len(tgt_names)}}
    key = _cache_key(spec, universe, src_syms, tgt_syms, need, _device_kind(model))
    cache = Path(cache_dir) / spec.model_sha256[:20] if cache_dir is not None else None
    tables: dict[str, np.ndarray] = {}
    todo: list[str] = []
    lazy = tuple(k for k in kinds if k in EMBEDDING_KINDS)
    for kind in [k for k in kinds if k not in lazy]:
        path = cache / f"{key[:24]}-{kind}.npz" if cache is not None else None
        hit = _load(path, src_names, tgt_names)
        if hit is not None:
            tables[kind] = hit
            if stats is not None:
                stats.hits.append(f"{kind}:{key[:8]}")
        else:
            todo.append(kind)
    if todo:
        t0 = time.perf_counter()
        fresh = _compute(model, spec, universe, blocks, src_syms, tgt_syms, s_pos, t_pos, todo,
                         progress)
        secs = time.perf_counter() - t0
        for kind in todo:
            tables[kind] = fresh[kind]
            if stats is not None:
                stats.misses.append(f"{kind}:{key[:8]}")
                stats.seconds[f"{kind}:{key[:8]}"] = secs / len(todo)
            if cache is not None:
                _save(cache / f"{key[:24]}-{kind}.npz", fresh[kind], src_names, tgt_names)
    ordered = {k: tables[k] for k in kinds if k not in lazy}
    return FeatureTable(sources=tuple(src_names), targets=tuple(tgt_names), tables=ordered,
                        universe=universe, model=model, embedding_kinds=lazy, info=info)


def _given_names(universe: GeneUniverse) -> list[str]:
    """One given name per vocabulary symbol (the first), in the universe's symbol order."""
    first: dict[str, str] = {}
    for name, sym in universe.names.items():
        first.setdefault(sym, name)
    return [first[g] for g in universe.genes]


def _known(universe: GeneUniverse, names: Sequence[str]) -> list[str]:
    """Given names in the universe, one per vocabulary symbol (first wins), order kept."""
    seen: set[str] = set()
    out = []
    for n in map(str, names):
        sym = universe.names.get(n)
        if sym is not None and sym not in seen:
            seen.add(sym)
            out.append(n)
    return out


def _compute(model: GeneModel, spec: FeatureSpec, universe: GeneUniverse, blocks: list,
             src_syms: list[str], tgt_syms: list[str], s_pos: dict[str, int],
             t_pos: dict[str, int], kinds: list[str],
             progress: Callable[[str], None] | None) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for n, block in enumerate(blocks):
        bf = block_features(model, spec, block.sources, block.targets, universe.anchors,
                            universe.profile, kinds=kinds)
        rows = [s_pos[s] for s in block.sources]
        cols = [t_pos[t] for t in block.targets]
        for kind, part in bf.features.items():
            if kind not in out:
                out[kind] = np.full((len(src_syms), len(tgt_syms), part.shape[-1]), np.nan,
                                    dtype=np.float32)
            out[kind][np.ix_(rows, cols)] = part
        if progress is not None and (n + 1) % 10 == 0:
            progress(f"features: block {n + 1}/{len(blocks)}")
    if not blocks:
        return {k: np.full((len(src_syms), len(tgt_syms), 1), np.nan, dtype=np.float32)
                for k in kinds}
    same = np.asarray(src_syms, dtype=object)[:, None] == np.asarray(tgt_syms, dtype=object)[None]
    for kind, values in out.items():
        values[same] = np.nan  # self pairs are never scored (spec.self_pairs == "drop")
        done = values[~np.isnan(values).all(axis=-1)]
        if not np.isfinite(done).all():
            raise AtlasgrnError(f"{kind} features contain non-finite values", key=kind,
                                remedy="check the model's weights and value range")
    return out


def _device_kind(model: GeneModel) -> str:
    """cpu or cuda: the same spec gives slightly different floats on another device."""
    try:
        return next(iter(model.parameters())).device.type
    except (AttributeError, StopIteration):
        return "cpu"


def _cache_key(spec: FeatureSpec, universe: GeneUniverse, sources: list[str],
               targets: list[str], need: np.ndarray | None, device: str) -> str:
    profile = None if universe.profile is None else bytes_sha256(
        np.asarray([universe.profile[g] for g in universe.genes], dtype=np.float64).tobytes())
    return json_sha256({"format": CACHE_FORMAT, "spec": spec.digest(), "device": device,
                        "anchors": json_sha256(list(universe.anchors)), "profile": profile,
                        "sources": sources, "targets": targets,
                        "needed": None if need is None else bytes_sha256(
                            np.packbits(need).tobytes() + str(need.shape).encode())})


def _save(path: Path, values: np.ndarray, sources: list[str], targets: list[str]) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, values=values, sources=np.asarray(sources, dtype=str),
                     targets=np.asarray(targets, dtype=str))

    write_path_atomic(path, write)


def _load(path: Path | None, sources: list[str], targets: list[str]) -> np.ndarray | None:
    if path is None or not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if z["sources"].tolist() != sources or z["targets"].tolist() != targets:
                return None
            return np.asarray(z["values"], dtype=np.float32)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable feature cache %s (%s)", path, exc)
        return None
