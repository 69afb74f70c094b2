"""Probe features of every regulator x gene pair of a gene set, computed blockwise and cached.

A translator is trained and applied on *pairs*, but the probes are cheapest per *block*: one
forward of a virtual cell answers every target of the context at once. So features are computed
densely over ``sources x targets`` of a gene universe (a benchmark dataset's TF list x its genes,
or a prior network's regulators x a gene list), in blocks whose context never exceeds the model's
pre-training length, and then gathered for whatever pairs a protocol needs.

Blocks: sources are cut into chunks of ``source_block``; targets into chunks that fill the rest
of the context; each block's context is ``block_context(I, J, anchors, max_len=L, fill=True)``
with one fixed anchor list, so every block of a run has the same length L (a pair's features
scale with 1/L, docs/probes.md). A universe that fits in L is one block whose context is the
whole universe.

Kinds (``[S, T, D]`` tables): ``vvp`` (D = grid size), ``gdt_uniform`` / ``gdt_source``
(D = levels), ``pert`` (D = 1, the knockout difference at the dataset's mean profile; needs
expression), ``attn`` (D = 1). Embedding kinds ``emb_sum`` / ``emb_concat`` need no context and are
gathered straight from the token embeddings. Self pairs (i == j) are set to 0: their values are
~1e3 x the cross-gene ones and track gene identity (method.md §7); no protocol scores them.

Cache: one ``.npz`` (no pickle) per (model digest, universe digest, kind, settings digest), under
``cache_dir/<model digest>/``; the file stores the source and target lists and is only used when
they match exactly.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import AtlasgrnError
from ..models.interface import GeneModel
from ..models.vocab import map_genes
from ..probes import attention, block_context, gdt, pert_origin, vvp

log = logging.getLogger(__name__)

CONTEXT_KINDS = ("vvp", "gdt_uniform", "gdt_source", "pert", "attn")
EMBEDDING_KINDS = ("emb_sum", "emb_concat")
ALL_KINDS = CONTEXT_KINDS + EMBEDDING_KINDS
CACHE_FORMAT = 1


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch threads. Translator MLPs are tiny: on a busy 2-core machine
    one thread trained them 40x faster than two (0.15 s vs 5.9 s for 3 kinds x 15 epochs)."""
    old = torch.get_num_threads()
    torch.set_num_threads(max(1, n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def default_cache_dir() -> Path:
    """``$ATLASGRN_CACHE/features`` or ``~/.cache/atlasgrn/features``."""
    base = os.environ.get("ATLASGRN_CACHE")
    return Path(base) / "features" if base else Path.home() / ".cache" / "atlasgrn" / "features"


@dataclass(frozen=True)
class FeatureSettings:
    """How features are computed; everything here is part of the cache key.

    ``context_len`` None = the model's pre-training length (``arch.max_len``, less an internal
    ``<cls>``). ``gdt_method`` "exact" (autodiff) or "fd" (docs/probes.md: exact is the default).
    """

    context_len: int | None = None
    source_block: int = 128
    gdt_method: str = "exact"

    def resolve(self, model: GeneModel) -> dict[str, Any]:
        arch = model.config.arch
        length = self.context_len or (arch.max_len - (1 if arch.cls_token_id is not None else 0))
        if length < 4:
            raise AtlasgrnError(f"context length {length} is too short", key="context_len",
                                remedy="use at least a few dozen tokens")
        block = max(1, min(self.source_block, length // 2))
        values = model.config.values
        return {"context_len": int(length), "source_block": int(block),
                "gdt_method": self.gdt_method, "vvp_grid": list(values.vvp_grid),
                "gdt_levels": list(values.gdt_levels), "background": values.background,
                "anchors": "universe by token id", "self_pairs": "zero",
                "format": CACHE_FORMAT}


@dataclass
class CacheStats:
    """What the last computations hit and missed (the run manifest records it)."""

    hits: list[str] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def model_digest(model: GeneModel) -> str:
    """sha256 of the model's config and weights (names, dtypes, shapes, bytes)."""
    h = hashlib.sha256()
    cfg = model.config
    h.update(json.dumps({"arch": asdict(cfg.arch), "values": asdict(cfg.values)},
                        sort_keys=True, default=str).encode())
    h.update(json.dumps(sorted(model.vocab.items())).encode())
    state = model.state_dict() if hasattr(model, "state_dict") else {}
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes (provenance of priors and gene lists)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class GeneMapping:
    """Symbols of a universe that the model knows, with their token ids (first symbol wins)."""

    symbols: tuple[str, ...]
    ids: np.ndarray
    unmapped: tuple[str, ...]

    @classmethod
    def build(cls, model: GeneModel, symbols: Sequence[str]) -> GeneMapping:
        ids = map_genes(model.vocab, list(symbols))
        keep: list[int] = []
        seen: set[int] = set()
        for pos, tid in enumerate(ids.tolist()):
            if tid >= 0 and tid not in seen:
                seen.add(tid)
                keep.append(pos)
        unmapped = tuple(s for s, t in zip(symbols, ids.tolist()) if t < 0)
        return cls(symbols=tuple(symbols[p] for p in keep), ids=ids[keep].astype(np.int64),
                   unmapped=unmapped)


@dataclass
class FeatureTable:
    """Dense features ``[S, T, D]`` per kind over ``sources x targets`` (mapped symbols)."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    source_ids: np.ndarray
    target_ids: np.ndarray
    tables: dict[str, np.ndarray]
    model: GeneModel | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._s = {g: i for i, g in enumerate(self.sources)}
        self._t = {g: i for i, g in enumerate(self.targets)}

    def positions(self, sources: Sequence[str], targets: Sequence[str]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row and column of each pair, and whether the pair is covered (both genes mapped)."""
        r = np.fromiter((self._s.get(str(g), -1) for g in sources), np.int64, len(sources))
        c = np.fromiter((self._t.get(str(g), -1) for g in targets), np.int64, len(targets))
        return r, c, (r >= 0) & (c >= 0)

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
        """Features ``[N, D]`` of the table cells ``(r[n], c[n])`` (a copy)."""
        if kind in self.tables:
            return self.tables[kind][r, c].reshape(len(r), -1).copy()
        if kind in EMBEDDING_KINDS:
            return self._embeddings(kind, r, c)
        raise KeyError(f"kind {kind!r} was not computed; have {self.kinds}")

    @property
    def kinds(self) -> list[str]:
        kinds = list(self.tables)
        if self.model is not None:
            kinds += list(EMBEDDING_KINDS)
        return kinds

    def _embeddings(self, kind: str, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise KeyError(f"{kind} needs the model")
        if not hasattr(self, "_emb"):
            ids = np.unique(np.concatenate([self.source_ids, self.target_ids]))
            with torch.no_grad():
                table = self.model.gene_embeddings(torch.as_tensor(ids)).float().cpu().numpy()
            self._emb_index = {int(t): i for i, t in enumerate(ids.tolist())}
            self._emb = table
        si = np.fromiter((self._emb_index[int(t)] for t in self.source_ids[r]), np.int64, len(r))
        ti = np.fromiter((self._emb_index[int(t)] for t in self.target_ids[c]), np.int64, len(c))
        a, b = self._emb[si], self._emb[ti]
        return (a + b) if kind == "emb_sum" else np.concatenate([a, b], axis=1)


Block = tuple[np.ndarray, np.ndarray]


def _blocks(n_src: int, n_tgt: int, length: int, source_block: int, universe: int,
            needed: np.ndarray | None = None) -> list[Block]:
    """(rows, cols) of each block; every block's sources + targets fit in ``length`` tokens.

    Dense (``needed`` None): source chunks x target chunks filling the rest of the context.
    Sparse: sources in id order are grouped greedily while the group plus the union of its
    needed targets fits (at most ``source_block`` sources); a source needing more targets than
    fit alone gets its targets split. Cost then follows the needed pairs, not S x T.
    """
    if needed is None:
        if universe <= length:
            return [(np.arange(n_src), np.arange(n_tgt))]
        t_block = length - min(source_block, n_src)
        return [(np.arange(s, min(s + source_block, n_src)),
                 np.arange(t, min(t + t_block, n_tgt)))
                for s in range(0, n_src, source_block) for t in range(0, n_tgt, t_block)]
    blocks: list[Block] = []
    if universe <= length:
        rows = np.flatnonzero(needed.any(axis=1))
        cols = np.flatnonzero(needed.any(axis=0))
        return [(rows, cols)] if len(rows) else []
    chunk: list[int] = []
    union: set[int] = set()

    def flush() -> None:
        if chunk:
            blocks.append((np.asarray(chunk), np.asarray(sorted(union))))
        chunk.clear()
        union.clear()

    for r in np.flatnonzero(needed.any(axis=1)).tolist():
        cols = set(np.flatnonzero(needed[r]).tolist())
        if 1 + len(cols) > length:
            flush()
            ordered = sorted(cols)
            for start in range(0, len(ordered), length - 1):
                blocks.append((np.asarray([r]), np.asarray(ordered[start:start + length - 1])))
            continue
        if chunk and (len(chunk) + 1 + len(union | cols) > length
                      or len(chunk) >= source_block):
            flush()
        chunk.append(r)
        union |= cols
    flush()
    return blocks


def _compute_block(model: GeneModel, kind: str, ctx: torch.Tensor, src: torch.Tensor,
                   tgt: torch.Tensor, profile: np.ndarray | None, id_pos: dict[int, int],
                   method: str) -> np.ndarray:
    if kind == "vvp":
        return vvp(model, ctx, src, tgt).numpy()
    if kind in ("gdt_uniform", "gdt_source"):
        return gdt(model, ctx, src, tgt, reading=kind.split("_")[1], method=method).numpy()
    if kind == "attn":
        return attention(model, ctx, src, tgt).numpy()[..., None]
    if kind == "pert":
        assert profile is not None
        mean = torch.as_tensor(profile[[id_pos[int(t)] for t in ctx.tolist()]])
        return pert_origin(model, ctx, mean, src, tgt).numpy()[..., None]
    raise ValueError(f"unknown feature kind {kind!r}")


def compute_features(model: GeneModel, universe: Sequence[str], sources: Sequence[str],
                     kinds: Sequence[str], *, targets: Sequence[str] | None = None,
                     profile: Mapping[str, float] | None = None,
                     settings: FeatureSettings | None = None,
                     cache_dir: str | os.PathLike[str] | None = None,
                     stats: CacheStats | None = None,
                     pairs: tuple[Sequence[str], Sequence[str]] | None = None,
                     progress: Callable[[str], None] | None = None) -> FeatureTable:
    """Every ``sources x targets`` feature of the requested kinds over a gene universe.

    ``universe`` is the gene set that supplies contexts (a dataset's genes); ``sources`` (its TFs)
    and ``targets`` (default: the universe) must lie in it. Symbols the model does not know are
    dropped (listed in ``info["unmapped"]``). ``profile`` (symbol -> mean value in the model's
    space) is needed for ``pert`` only; without it ``pert`` is skipped (``info["skipped"]``).
    ``cache_dir`` None disables the cache. ``pairs`` (sources, targets) restricts the work to
    the blocks those pairs need (the rest of the table is NaN): a training set's pairs cost far
    less than every TF x gene.
    """
    settings = settings or FeatureSettings()
    resolved = settings.resolve(model)
    unknown = [k for k in kinds if k not in ALL_KINDS]
    if unknown:
        raise AtlasgrnError(f"unknown feature kind(s) {unknown}", key="kinds",
                            remedy=f"choose from {list(ALL_KINDS)}")
    uni = GeneMapping.build(model, list(universe))
    if len(uni.ids) == 0:
        raise AtlasgrnError("no gene of the universe is in the model's vocabulary", key="genes",
                            remedy="use gene symbols of the model's species/vocabulary")
    in_uni = set(uni.symbols)
    src_syms = tuple(dict.fromkeys(s for s in sources if s in in_uni))
    tgt_syms = tuple(dict.fromkeys(t for t in (targets if targets is not None else uni.symbols)
                                   if t in in_uni))
    sym_id = dict(zip(uni.symbols, uni.ids.tolist()))
    # Sort by token id: block membership then depends on the gene set only, not on file order.
    src_syms = tuple(sorted(src_syms, key=sym_id.__getitem__))
    tgt_syms = tuple(sorted(tgt_syms, key=sym_id.__getitem__))
    src_ids = np.asarray([sym_id[s] for s in src_syms], dtype=np.int64)
    tgt_ids = np.asarray([sym_id[t] for t in tgt_syms], dtype=np.int64)
    anchors = torch.as_tensor(np.sort(uni.ids))
    info: dict[str, Any] = {"unmapped": list(uni.unmapped), "settings": resolved,
                            "n_sources": len(src_syms), "n_targets": len(tgt_syms),
                            "skipped": []}
    mdig = model_digest(model)
    need: np.ndarray | None = None
    if pairs is not None:
        sp = {g: i for i, g in enumerate(src_syms)}
        tp = {g: i for i, g in enumerate(tgt_syms)}
        need = np.zeros((len(src_syms), len(tgt_syms)), dtype=bool)
        for a, b in zip(pairs[0], pairs[1]):
            i, j = sp.get(str(a), -1), tp.get(str(b), -1)
            if i >= 0 and j >= 0:
                need[i, j] = True
    udig = _digest({"universe": sorted(uni.symbols), "sources": list(src_syms),
                    "targets": list(tgt_syms),
                    "needed": None if need is None else hashlib.sha256(
                        np.packbits(need).tobytes()).hexdigest()})
    cache = Path(cache_dir) / mdig[:20] if cache_dir is not None else None
    prof_vec: np.ndarray | None = None
    prof_dig = None
    if profile is not None:
        prof_vec = np.asarray([float(profile.get(s, model.config.values.background))
                               for s in uni.symbols], dtype=np.float32)
        prof_dig = _digest(np.round(prof_vec.astype(np.float64), 6).tolist())
    id_pos = {int(t): i for i, t in enumerate(uni.ids.tolist())}
    tables: dict[str, np.ndarray] = {}
    for kind in kinds:
        if kind in EMBEDDING_KINDS:
            continue
        if kind == "pert" and prof_vec is None:
            info["skipped"].append("pert")
            continue
        key = _digest({**resolved, "kind": kind, "profile": prof_dig if kind == "pert" else None})
        path = cache / f"{udig[:20]}-{kind}-{key[:16]}.npz" if cache is not None else None
        hit = _load(path, src_syms, tgt_syms)
        label = f"{kind}:{udig[:8]}"
        if hit is not None:
            tables[kind] = hit
            if stats is not None:
                stats.hits.append(label)
            continue
        t0 = time.perf_counter()
        tables[kind] = _compute_kind(model, kind, src_ids, tgt_ids, anchors, prof_vec, id_pos,
                                     resolved, len(uni.ids), need, progress)
        if stats is not None:
            stats.misses.append(label)
            stats.seconds[label] = time.perf_counter() - t0
        if path is not None:
            _save(path, tables[kind], src_syms, tgt_syms, {**resolved, "kind": kind})
    return FeatureTable(sources=src_syms, targets=tgt_syms, source_ids=src_ids,
                        target_ids=tgt_ids, tables=tables, model=model, info=info)


def _compute_kind(model: GeneModel, kind: str, src_ids: np.ndarray, tgt_ids: np.ndarray,
                  anchors: torch.Tensor, profile: np.ndarray | None, id_pos: dict[int, int],
                  resolved: Mapping[str, Any], universe: int, needed: np.ndarray | None,
                  progress: Callable[[str], None] | None) -> np.ndarray:
    length, sblock = resolved["context_len"], resolved["source_block"]
    out: np.ndarray | None = None
    blocks = _blocks(len(src_ids), len(tgt_ids), length, sblock, universe, needed)
    for n, (bs, bt) in enumerate(blocks):
        src, tgt = torch.as_tensor(src_ids[bs]), torch.as_tensor(tgt_ids[bt])
        if universe <= length:
            ctx = anchors
        else:
            ctx = block_context(src, tgt, anchors=anchors, max_len=length, fill=True)
        part = _compute_block(model, kind, ctx, src, tgt, profile, id_pos,
                              resolved["gdt_method"])
        if out is None:
            fill = 0.0 if needed is None else np.nan
            out = np.full((len(src_ids), len(tgt_ids), part.shape[-1]), fill, dtype=np.float32)
        out[np.ix_(bs, bt)] = part
        if progress is not None and (n + 1) % 10 == 0:
            progress(f"{kind}: block {n + 1}/{len(blocks)}")
    if out is None:
        out = np.full((len(src_ids), len(tgt_ids), 1), np.nan, dtype=np.float32)
    same = src_ids[:, None] == tgt_ids[None, :]
    out[same] = 0.0
    done = out[~np.isnan(out).all(axis=-1)] if needed is not None else out
    if not np.isfinite(done).all():
        raise AtlasgrnError(f"{kind} features contain non-finite values", key=kind,
                            remedy="check the model's weights and value range")
    return out


def _save(path: Path, values: np.ndarray, sources: tuple[str, ...], targets: tuple[str, ...],
          meta: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, values=values, sources=np.asarray(sources, dtype=str),
             targets=np.asarray(targets, dtype=str), meta=np.asarray(json.dumps(meta)))
    os.replace(tmp, path)


def _load(path: Path | None, sources: tuple[str, ...], targets: tuple[str, ...]
          ) -> np.ndarray | None:
    if path is None or not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if tuple(z["sources"].tolist()) != sources or tuple(z["targets"].tolist()) != targets:
                return None
            return np.asarray(z["values"], dtype=np.float32)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable feature cache %s (%s)", path, exc)
        return None


def pair_features(model: GeneModel, genes: Sequence[str], sources: Sequence[str],
                  targets: Sequence[str], kinds: Sequence[str] = ("vvp", "gdt_uniform",
                                                                  "gdt_source", "emb_concat"),
                  **options: Any) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Features ``{kind: [N, D]}`` of the pairs ``(sources[n], targets[n])`` over ``genes``.

    Computes the dense table of the pairs' distinct sources x the universe (cached, see
    :func:`compute_features`) and gathers the pairs; also returns which pairs are covered.
    """
    regs = list(dict.fromkeys(map(str, sources)))
    table = compute_features(model, genes, regs, kinds,
                             pairs=(list(map(str, sources)), list(map(str, targets))), **options)
    return table.gather(list(map(str, sources)), list(map(str, targets)), kinds=[
        k for k in kinds if k in table.kinds])
