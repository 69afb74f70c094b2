"""One block's features: the single function through which training, the benchmark and the job
compute probe features (so they cannot drift apart again).

A block is (sources, targets) of one :class:`~atlasgrn.features.layout.Block`; its context is
the block's genes filled with the universe's anchors to exactly ``spec.context_len`` tokens
(``block_context(..., fill=True)``: every block of a universe gets the same context length, and
the genes are in token-id order, so the arithmetic is bit-reproducible).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..models.interface import GeneModel
from ..probes import attention, block_context, embedding_pairs, gdt, pert_origin, vvp
from ..probes.execution import Precision
from ..probes.flops import probe_flops
from ..probes.gdt import gdt_stacked
from ..probes.stack import stack_blocks
from ..probes.vvp import vvp_stacked
from .spec import CONTEXT_KINDS, EMBEDDING_KINDS, GDT_READINGS, FeatureSpec


@dataclass(frozen=True)
class BlockFeatures:
    """Features ``[S, T, D]`` per kind over ``sources x targets`` (vocabulary symbols), the
    seconds the probes took (a stacked batch's time shared by pairs) and their analytic FLOPs.
    Self-pair cells hold whatever the probe returned; they are never scored (:meth:`pair_rows`
    drops them, tables mark them as not computed)."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    features: dict[str, np.ndarray]
    probe_seconds: float
    flops: float = 0.0

    def pair_rows(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """One row per (source, target) pair, source-major, self pairs dropped (spec rule)."""
        s = np.asarray(self.sources, dtype=object)
        t = np.asarray(self.targets, dtype=object)
        ss = np.repeat(s, len(t))
        tt = np.tile(t, len(s))
        keep = ss != tt
        flat = {k: v.reshape(len(s) * len(t), -1)[keep] for k, v in self.features.items()}
        return ss[keep], tt[keep], flat


@dataclass(frozen=True)
class BlockRequest:
    """One block to probe: its genes (vocabulary symbols), the universe's anchor fill order, and
    the dataset's or context's profile when the spec needs one."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    anchors: tuple[str, ...]
    profile: Mapping[str, float] | None = None


@dataclass(frozen=True)
class _Prepared:
    """A request resolved to token ids, its context and its background."""

    request: BlockRequest
    src: torch.Tensor
    tgt: torch.Tensor
    ctx: torch.Tensor
    mean: torch.Tensor | None
    background: float | torch.Tensor

    @property
    def shape(self) -> tuple[int, int, int]:
        return int(self.ctx.numel()), int(self.src.numel()), int(self.tgt.numel())


def context_ids(model: GeneModel, spec: FeatureSpec, sources: Sequence[str],
                targets: Sequence[str], anchors: Sequence[str]) -> torch.Tensor:
    """Token ids of the block's context: its genes, then anchors in order, ``context_len``."""
    vocab = model.vocab
    src = torch.tensor([vocab[s] for s in sources], dtype=torch.long)
    tgt = torch.tensor([vocab[t] for t in targets], dtype=torch.long)
    anc = torch.tensor([vocab[a] for a in anchors], dtype=torch.long)
    return block_context(src, tgt, anchors=anc, max_len=spec.context_len, fill=True)


def block_features(model: GeneModel, spec: FeatureSpec, sources: Sequence[str],
                   targets: Sequence[str], anchors: Sequence[str],
                   profile: Mapping[str, float] | None = None,
                   kinds: Sequence[str] | None = None, *,
                   gdt_precision: Precision = "fp32") -> BlockFeatures:
    """Features of every (source, target) pair of one block, for ``kinds`` (default: all of the
    spec's). ``profile`` (vocabulary symbol -> model-space mean) must cover the context when the
    spec needs it; ``anchors`` is the universe's fill order (see :mod:`.universe`). The one-block
    case of :func:`blocks_features`; its error is raised."""
    request = BlockRequest(tuple(sources), tuple(targets), tuple(anchors), profile)
    (result,) = blocks_features(model, spec, [request], kinds, gdt_precision=gdt_precision)
    if isinstance(result, Exception):
        raise result
    return result


def blocks_features(model: GeneModel, spec: FeatureSpec, requests: Sequence[BlockRequest],
                    kinds: Sequence[str] | None = None, *,
                    gdt_precision: Precision = "fp32") -> list[BlockFeatures | Exception]:
    """Features of many blocks, probed together: one result per request, in order.

    Blocks of one shape (context length, sources, targets) share their model calls (VVP and
    exact GDT, :mod:`atlasgrn.probes.stack`); a block's features do not depend on which blocks
    share its batch. A block that cannot be probed (an unknown gene, a profile that misses its
    context, non-finite features) gets its exception as its result and the others go on; if a
    stacked batch fails as a whole, its blocks are retried one by one so only the culprit fails.
    ``gdt_precision`` (``fp32``, ``bf16``, ``tf32``) applies to exact GDT only: VVP features are
    differences that bf16 cannot resolve (:mod:`atlasgrn.models.precision`).
    """
    use = tuple(spec.kinds if kinds is None else kinds)
    unknown = [k for k in use if k not in spec.kinds]
    if unknown:
        raise ValueError(f"kinds {unknown} are not in the feature spec {list(spec.kinds)}")
    results: list[BlockFeatures | Exception | None] = [None] * len(requests)
    prepared: dict[int, _Prepared] = {}
    for i, request in enumerate(requests):
        try:
            prepared[i] = _prepare(model, spec, use, request)
        except Exception as exc:  # noqa: BLE001 - reported for this block only
            results[i] = exc
    groups: dict[tuple[int, int, int], list[int]] = {}
    for i, prep in prepared.items():
        groups.setdefault(prep.shape, []).append(i)
    for members in groups.values():
        t0 = time.perf_counter()
        try:
            feats = _stacked_features(model, spec, use, [prepared[i] for i in members],
                                      gdt_precision)
        except Exception:  # noqa: BLE001 - find the culprit block by probing one at a time
            feats = None
        if feats is None:
            for i in members:
                t1 = time.perf_counter()
                try:
                    one = _stacked_features(model, spec, use, [prepared[i]], gdt_precision)[0]
                    results[i] = _finish(model, spec, use, prepared[i], one,
                                         time.perf_counter() - t1)
                except Exception as exc:  # noqa: BLE001
                    results[i] = exc
            continue
        seconds = time.perf_counter() - t0
        pairs = [prepared[i].shape[1] * prepared[i].shape[2] for i in members]
        for i, f, n in zip(members, feats, pairs):
            try:
                results[i] = _finish(model, spec, use, prepared[i], f,
                                     seconds * n / max(1, sum(pairs)))
            except Exception as exc:  # noqa: BLE001
                results[i] = exc
    return [r if r is not None else RuntimeError("block was not probed") for r in results]


def _prepare(model: GeneModel, spec: FeatureSpec, use: Sequence[str],
             request: BlockRequest) -> _Prepared:
    vocab = model.vocab
    src = torch.tensor([vocab[s] for s in request.sources], dtype=torch.long)
    tgt = torch.tensor([vocab[t] for t in request.targets], dtype=torch.long)
    ctx = context_ids(model, spec, request.sources, request.targets, request.anchors)
    mean = None
    if any(k in CONTEXT_KINDS for k in use) and spec.needs_profile(use):
        mean = _profile_vector(model, ctx, request.profile)
    background: float | torch.Tensor = (mean if spec.profile_background and mean is not None
                                        else float(spec.background))
    return _Prepared(request, src, tgt, ctx, mean, background)


def _stacked_features(model: GeneModel, spec: FeatureSpec, use: Sequence[str],
                      blocks: Sequence[_Prepared],
                      gdt_precision: Precision) -> list[dict[str, np.ndarray]]:
    """Every kind of ``use`` for blocks of one shape: VVP and exact GDT through one stack; the
    attention and knockout read-outs and the embeddings block by block (one cheap call each)."""
    feats: list[dict[str, np.ndarray]] = [{} for _ in blocks]
    stacked_kinds = [k for k in use if k == "vvp"
                     or (k in GDT_READINGS and spec.gdt_method == "exact")]
    if len(blocks) == 1:  # the one-block probes (same arithmetic), which also allow repeats
        b = blocks[0]
        for kind in stacked_kinds:
            if kind == "vvp":
                one = vvp(model, b.ctx, b.src, b.tgt, grid=spec.vvp_grid,
                          background=b.background)
            else:
                one = gdt(model, b.ctx, b.src, b.tgt, levels=spec.gdt_levels,
                          reading=GDT_READINGS[kind], background=b.background,
                          precision=gdt_precision)
            feats[0][kind] = one.float().cpu().numpy()
    elif stacked_kinds:
        stack = stack_blocks(model, [b.ctx for b in blocks], [b.src for b in blocks],
                             [b.tgt for b in blocks], [b.background for b in blocks])
        for kind in stacked_kinds:
            if kind == "vvp":
                out = vvp_stacked(model, stack, spec.vvp_grid)
            else:
                out = gdt_stacked(model, stack, spec.gdt_levels, GDT_READINGS[kind],
                                  precision=gdt_precision)
            for f, values in zip(feats, out.float().cpu().numpy()):
                f[kind] = values
    for f, b in zip(feats, blocks):
        for kind in use:
            if kind in f:
                continue
            if kind in GDT_READINGS:  # finite differences: fp32 only
                out = gdt(model, b.ctx, b.src, b.tgt, levels=spec.gdt_levels,
                          reading=GDT_READINGS[kind], background=b.background,
                          method=spec.gdt_method)
            elif kind == "attn":
                out = attention(model, b.ctx, b.src, b.tgt, background=b.background)[..., None]
            elif kind == "pert":
                out = pert_origin(model, b.ctx, b.mean, b.src, b.tgt)[..., None]
            else:
                continue
            f[kind] = out.float().cpu().numpy()
        emb = [k for k in use if k in EMBEDDING_KINDS]
        if emb:
            pairs = embedding_pairs(model, b.src, b.tgt)
            for kind in emb:
                f[kind] = (pairs.concat if kind == "emb_concat" else pairs.sum).numpy()
    return feats


def _finish(model: GeneModel, spec: FeatureSpec, use: Sequence[str], block: _Prepared,
            feats: dict[str, np.ndarray], seconds: float) -> BlockFeatures:
    """The block's result in the caller's kind order, refused if any feature is not finite."""
    ordered = {k: feats[k] for k in use}
    for kind, values in ordered.items():
        if not np.isfinite(values).all():  # never let a NaN reach a score or a training set
            raise FloatingPointError(f"{kind} features of the block are not finite (check the "
                                     "model's weights and value range)")
    length, n_s, n_t = block.shape
    arch = model.config.arch
    values = {"vvp": len(spec.vvp_grid), "gdt_uniform": len(spec.gdt_levels),
              "gdt_source": len(spec.gdt_levels)}
    flops = sum(probe_flops(arch, length, k, n_s, n_t, values.get(k, 1), spec.gdt_method)
                for k in use)
    return BlockFeatures(block.request.sources, block.request.targets, ordered, seconds, flops)


def _profile_vector(model: GeneModel, ctx: torch.Tensor,
                    profile: Mapping[str, float] | None) -> torch.Tensor:
    """The profile over the context's tokens (float64, in context order)."""
    if profile is None:
        raise ValueError("the feature spec needs the dataset's mean profile for this block")
    by_id = {int(model.vocab[s]): float(v) for s, v in profile.items() if s in model.vocab}
    missing = [int(i) for i in ctx if int(i) not in by_id]
    if missing:
        raise ValueError(f"the profile lacks {len(missing)} context gene(s), e.g. token "
                         f"{missing[0]}")
    return torch.tensor([by_id[int(i)] for i in ctx], dtype=torch.float64)
