"""Scoring one block: features -> translator logits -> edge table (no Ray here).

The features come from the translator's :class:`~atlasgrn.features.FeatureSpec` through
:func:`atlasgrn.features.compute.blocks_features`, the function translator training and the
benchmark use (one block at a time there, a batch of blocks here: the same bits), so the job
serves exactly the features its translator was trained on. The model-replica actor probes a batch
with :func:`probe_blocks` and scores each block with :func:`edge_table_of`, as the ``--plan``
calibration does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa

from ..errors import AtlasgrnError
from ..features import BlockFeatures, FeatureSpec
from ..features.compute import BlockRequest, blocks_features
from ..features.spec import MODEL_KINDS, STAT_KINDS
from ..models.interface import GeneModel
from ..probes.execution import Precision
from ..translator import Translator
from .config import SPEC_OPTIONS, RunConfig
from .output import edges_table
from .plan import BlockSpec

#: ``--gdt-reading`` names the reading of the GDT kind in the translator's ensemble.
READING_KIND = {"uniform": "gdt_uniform", "source": "gdt_source"}
OPTION_FLAGS = {name: "--" + name.replace("_", "-") for name in SPEC_OPTIONS}


def serving_spec(config: RunConfig, translator: Translator, model_sha256: str,
                 translator_path: str) -> FeatureSpec:
    """The spec every block is probed with: the translator's, after checking that the run's
    model is the one it was trained on and that no explicit option contradicts it."""
    spec = translator.feature_spec
    if spec is None:  # loading refuses these; a Translator built in memory may lack one
        raise AtlasgrnError("the translator has no feature_spec", path=translator_path,
                            key="feature_spec", remedy="retrain it with atlasgrn "
                                                       "train-translator")
    spec.check_model(model_sha256, path=translator_path)
    for option, field in SPEC_OPTIONS.items():
        spec.check_option(OPTION_FLAGS[option], field, getattr(config, option),
                          path=translator_path)
    if config.gdt_reading is not None:
        gdt_kinds = [k for k in translator.ensemble_kinds if k in READING_KIND.values()]
        if READING_KIND[config.gdt_reading] not in gdt_kinds:
            have = ", ".join(gdt_kinds) or "no GDT kind"
            raise AtlasgrnError(f"--gdt-reading {config.gdt_reading} contradicts the "
                                f"translator's ensemble ({have})", path=translator_path,
                                key="--gdt-reading", remedy="drop --gdt-reading (the "
                                "translator's ensemble decides), or use another translator")
    return spec


@dataclass(frozen=True)
class BlockWork:
    """One planned block with what its features need: the dataset's anchors and profile, and
    its cells of the network's rank statistics (``{kind: [S, T]}``) when the spec reads them."""

    block: BlockSpec
    anchors: Sequence[str]
    profile: Mapping[str, float] | None
    stats: Mapping[str, np.ndarray] | None = None


def probe_blocks(model: GeneModel, spec: FeatureSpec, kinds: Sequence[str],
                 work: Sequence[BlockWork],
                 gdt_precision: Precision = "fp32") -> list[BlockFeatures | Exception]:
    """Features of a batch of planned blocks, probed together (the job's entry to the one
    feature function); a block that fails gets its exception, the others their features.
    Rank-statistic kinds are not probed: each block's come with its work."""
    requests = [BlockRequest(tuple(w.block.sources), tuple(w.block.targets), tuple(w.anchors),
                             w.profile) for w in work]
    probed = [k for k in kinds if k in MODEL_KINDS]
    stat_kinds = [k for k in kinds if k in STAT_KINDS]
    results = blocks_features(model, spec, requests, probed, gdt_precision=gdt_precision)
    if not stat_kinds:
        return results
    return [r if isinstance(r, Exception) else _with_stats(r, w, stat_kinds)
            for r, w in zip(results, work)]


def _with_stats(features: BlockFeatures, work: BlockWork,
                kinds: Sequence[str]) -> BlockFeatures | Exception:
    """The block's features with its rank statistics added (``[S, T, 1]`` each)."""
    missing = [k for k in kinds if not work.stats or k not in work.stats]
    if missing:
        return ValueError(f"the block has no {missing[0]} statistics (the network's rank "
                          "statistics were not computed)")
    assert work.stats is not None
    merged = dict(features.features)
    merged.update({k: np.asarray(work.stats[k], dtype=np.float32)[..., None] for k in kinds})
    return replace(features, features=merged)


def edge_table_of(translator: Translator, features: BlockFeatures) -> pa.Table:
    """The block's edge table (design §3.4 schema, sorted): translator logits per kind of its
    ensemble and the ensemble score, self pairs dropped."""
    return edge_table_from_rows(translator, *features.pair_rows())


def edge_table_from_rows(translator: Translator, sources: np.ndarray, targets: np.ndarray,
                         flat: Mapping[str, np.ndarray]) -> pa.Table:
    """The edge table of pair rows and their features (a probed block's, or a stored one's:
    the same rows give the same bytes)."""
    logits = translator.logits(flat, translator.ensemble_kinds)
    score = translator.score_from_logits(logits).astype(np.float32)
    return edges_table(sources, targets, score,
                       {k: logits[k] for k in translator.ensemble_kinds})
