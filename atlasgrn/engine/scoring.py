"""Scoring one block: features -> translator logits -> edge table (no Ray here).

The features come from the translator's :class:`~atlasgrn.features.FeatureSpec` through
:func:`atlasgrn.features.block_features`, the function translator training and the benchmark
use, so the job serves exactly the features its translator was trained on. The model-replica
actor and the ``--plan`` calibration both call :func:`score_block`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa

from ..errors import AtlasgrnError
from ..features import BlockFeatures, FeatureSpec, block_features
from ..models.interface import GeneModel
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


def block_pair_features(model: GeneModel, spec: FeatureSpec, kinds: Sequence[str],
                        block: BlockSpec, anchors: Sequence[str],
                        profile: Mapping[str, float] | None) -> BlockFeatures:
    """Features of one planned block: the job's entry to the one feature function."""
    return block_features(model, spec, block.sources, block.targets, anchors, profile,
                          kinds=kinds)


def score_block(model: GeneModel, translator: Translator, spec: FeatureSpec,
                block: BlockSpec, anchors: Sequence[str],
                profile: Mapping[str, float] | None) -> tuple[pa.Table, float]:
    """The block's edge table (design §3.4 schema, sorted) and the seconds spent in probes."""
    kinds = translator.ensemble_kinds
    bf = block_pair_features(model, spec, kinds, block, anchors, profile)
    sources, targets, flat = bf.pair_rows()
    logits = translator.logits(flat)
    score = translator.score_from_logits(logits).astype(np.float32)
    table = edges_table(sources, targets, score, {k: logits[k] for k in kinds})
    return table, bf.probe_seconds
