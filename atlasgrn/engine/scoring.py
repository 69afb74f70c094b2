"""Scoring one block: probe features -> translator logits -> edge table (no Ray here).

The model-replica actor, the ``--plan`` calibration and translator-training helpers all call
:func:`block_features` / :func:`score_block`, so the features a translator is trained on and the
features the job scores are computed by the same code with the same settings.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from ..errors import AtlasgrnError
from ..models.interface import GeneModel, ModelConfig
from ..probes import block_context, gdt, vvp
from ..translator import Translator
from .config import ProbeSettings, RunConfig
from .plan import BlockSpec
from .sink import edges_table

#: Feature kinds the engine can compute, and the probe that computes each.
ENGINE_KINDS = ("vvp", "gdt", "gdt_uniform", "gdt_source")
#: GDT kinds and their reading ("gdt" uses the run's ``gdt_reading``).
GDT_READINGS = {"gdt_uniform": "uniform", "gdt_source": "source"}


@dataclass(frozen=True)
class BlockFeatures:
    """Features of one block, ``[S, T, D]`` per kind, and the seconds the probes took."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    features: dict[str, np.ndarray]
    probe_seconds: float


def resolve_probe_settings(config: RunConfig, model_config: ModelConfig,
                           translator: Translator) -> ProbeSettings:
    """Settings every block is probed with: explicit options, else the translator's recorded
    ``provenance["probe"]``, else the model's defaults; checked against the translator's dims.

    ``atlasgrn train-translator`` records the settings its features were computed with under
    ``provenance["features"]`` (same keys); those are read too, because scoring with any other
    background or context than the translator saw in training would shift every feature it
    scores (the bundled translator was trained with the scalar background, not the profile).
    """
    prov = translator.provenance
    rec = dict(prov.get("probe") or prov.get("features") or {})
    space = model_config.values
    kinds = tuple(k for k in ENGINE_KINDS if k in translator.ensemble_kinds)
    unusable = [k for k in translator.ensemble_kinds if k not in ENGINE_KINDS]
    if unusable or not kinds:
        raise AtlasgrnError(f"the translator scores with feature kind(s) {unusable or 'none'} "
                            f"the engine does not compute", key="ensemble_kinds",
                            remedy=f"use a translator trained on {' and/or '.join(ENGINE_KINDS)}")
    grid = tuple(config.vvp_grid or rec.get("vvp_grid") or space.vvp_grid)
    levels = tuple(config.gdt_levels or rec.get("gdt_levels") or space.gdt_levels)
    reading = config.gdt_reading or rec.get("gdt_reading") or "uniform"
    background = config.background if config.background is not None else rec.get(
        "background", "profile")
    # default: the pre-training length (capped at 256 for cost), minus a <cls> the model adds
    default_ctx = min(int(model_config.arch.max_len), 256) - (
        1 if model_config.arch.cls_token_id is not None else 0)
    ctx = config.context_len or rec.get("context_len") or default_ctx
    for kind in kinds:
        n = len(grid) if kind == "vvp" else len(levels)
        if translator.kinds[kind].mlp.in_dim != n:
            key = "--vvp-grid" if kind == "vvp" else "--gdt-levels"
            raise AtlasgrnError(f"the translator's '{kind}' model takes "
                                f"{translator.kinds[kind].mlp.in_dim} features but the run "
                                f"gives {n}", key=key, remedy="use the grid/levels the "
                                "translator was trained with")
    return ProbeSettings(kinds=kinds, vvp_grid=grid, gdt_levels=levels, gdt_reading=reading,
                         background=background, context_len=int(ctx))


def block_features(model: GeneModel, settings: ProbeSettings, sources: Sequence[str],
                   targets: Sequence[str], anchors: Sequence[str],
                   profile: Mapping[str, float] | None) -> BlockFeatures:
    """Probe features of every (source, target) pair of a block.

    The context is the block's genes topped up with the dataset's anchors to exactly
    ``settings.context_len`` tokens (docs/probes.md: one length for every block of a run).
    """
    vocab = model.vocab
    src = torch.tensor([vocab[s] for s in sources], dtype=torch.long)
    tgt = torch.tensor([vocab[t] for t in targets], dtype=torch.long)
    anc = torch.tensor([vocab[a] for a in anchors], dtype=torch.long)
    ctx = block_context(src, tgt, anchors=anc, max_len=settings.context_len, fill=True)
    if settings.background == "profile":
        if profile is None:
            raise ValueError("a profile background needs the dataset's profile")
        by_id = {vocab[s]: v for s, v in profile.items()}
        background: float | torch.Tensor = torch.tensor(
            [by_id[int(i)] for i in ctx], dtype=torch.float64)
    else:
        background = float(settings.background)
    t0 = time.perf_counter()
    feats: dict[str, np.ndarray] = {}
    if "vvp" in settings.kinds:
        feats["vvp"] = vvp(model, ctx, src, tgt, grid=settings.vvp_grid,
                           background=background).cpu().numpy()
    for kind in settings.kinds:
        if kind.startswith("gdt"):
            reading = GDT_READINGS.get(kind, settings.gdt_reading)
            feats[kind] = gdt(model, ctx, src, tgt, levels=settings.gdt_levels,
                              reading=reading, background=background).cpu().numpy()
    return BlockFeatures(tuple(sources), tuple(targets), feats, time.perf_counter() - t0)


def pair_rows(bf: BlockFeatures) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Flatten ``[S, T, D]`` to one row per pair with self pairs (i == j) dropped."""
    s = np.asarray(bf.sources, dtype=object)
    t = np.asarray(bf.targets, dtype=object)
    ss = np.repeat(s, len(t))
    tt = np.tile(t, len(s))
    keep = ss != tt
    flat = {k: v.reshape(len(s) * len(t), -1)[keep] for k, v in bf.features.items()}
    return ss[keep], tt[keep], flat


def score_block(model: GeneModel, translator: Translator, settings: ProbeSettings,
                spec: BlockSpec, anchors: Sequence[str],
                profile: Mapping[str, float] | None) -> tuple[pa.Table, float]:
    """The block's edge table (design §3.4 schema, sorted) and the seconds spent in probes."""
    bf = block_features(model, settings, spec.sources, spec.targets, anchors, profile)
    ss, tt, flat = pair_rows(bf)
    logits = translator.logits(flat)
    score = translator.score(flat).astype(np.float32)
    nan = np.full(len(ss), np.nan, dtype=np.float32)
    gdt_logit = next((logits[k] for k in ("gdt", "gdt_uniform", "gdt_source") if k in logits),
                     nan)
    table = edges_table(spec, ss, tt, score, logits.get("vvp", nan), gdt_logit)
    return table, bf.probe_seconds
