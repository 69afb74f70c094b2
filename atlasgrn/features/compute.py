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
from .spec import CONTEXT_KINDS, EMBEDDING_KINDS, GDT_READINGS, FeatureSpec


@dataclass(frozen=True)
class BlockFeatures:
    """Features ``[S, T, D]`` per kind over ``sources x targets`` (vocabulary symbols), and the
    seconds the probes took. Self-pair cells hold whatever the probe returned; they are never
    scored (:meth:`pair_rows` drops them, tables mark them as not computed)."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    features: dict[str, np.ndarray]
    probe_seconds: float

    def pair_rows(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """One row per (source, target) pair, source-major, self pairs dropped (spec rule)."""
        s = np.asarray(self.sources, dtype=object)
        t = np.asarray(self.targets, dtype=object)
        ss = np.repeat(s, len(t))
        tt = np.tile(t, len(s))
        keep = ss != tt
        flat = {k: v.reshape(len(s) * len(t), -1)[keep] for k, v in self.features.items()}
        return ss[keep], tt[keep], flat


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
                   kinds: Sequence[str] | None = None) -> BlockFeatures:
    """Features of every (source, target) pair of one block, for ``kinds`` (default: all of the
    spec's). ``profile`` (vocabulary symbol -> model-space mean) must cover the context when the
    spec needs it; ``anchors`` is the universe's fill order (see :mod:`.universe`)."""
    use = tuple(spec.kinds if kinds is None else kinds)
    unknown = [k for k in use if k not in spec.kinds]
    if unknown:
        raise ValueError(f"kinds {unknown} are not in the feature spec {list(spec.kinds)}")
    vocab = model.vocab
    src = torch.tensor([vocab[s] for s in sources], dtype=torch.long)
    tgt = torch.tensor([vocab[t] for t in targets], dtype=torch.long)
    feats: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    if any(k in CONTEXT_KINDS for k in use):
        ctx = context_ids(model, spec, sources, targets, anchors)
        mean = _profile_vector(model, ctx, profile) if spec.needs_profile(use) else None
        background: float | torch.Tensor = mean if spec.profile_background else float(
            spec.background)
        for kind in use:
            if kind == "vvp":
                out = vvp(model, ctx, src, tgt, grid=spec.vvp_grid, background=background)
            elif kind in GDT_READINGS:
                out = gdt(model, ctx, src, tgt, levels=spec.gdt_levels,
                          reading=GDT_READINGS[kind], background=background,
                          method=spec.gdt_method)
            elif kind == "attn":
                out = attention(model, ctx, src, tgt, background=background)[..., None]
            elif kind == "pert":
                out = pert_origin(model, ctx, mean, src, tgt)[..., None]
            else:
                continue
            feats[kind] = out.float().cpu().numpy()
    emb = [k for k in use if k in EMBEDDING_KINDS]
    if emb:
        pairs = embedding_pairs(model, src, tgt)
        for kind in emb:
            feats[kind] = (pairs.concat if kind == "emb_concat" else pairs.sum).numpy()
    feats = {k: feats[k] for k in use}  # the caller's order
    for kind, values in feats.items():
        if not np.isfinite(values).all():  # never let a NaN reach a score or a training set
            raise FloatingPointError(f"{kind} features of the block are not finite (check the "
                                     "model's weights and value range)")
    return BlockFeatures(tuple(sources), tuple(targets), feats, time.perf_counter() - t0)


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
