"""Fresh, seeded models: the same seed gives bit-identical weights on every run.

Initialisation runs inside ``torch.random.fork_rng`` so building a model never disturbs the
caller's global RNG stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .interface import ArchConfig, ModelConfig, ValueSpace
from .scgpt_model import ScGPTModel

#: scGPT initialises the gene embedding uniformly in +-0.1 (its ``init_weights``).
EMBED_INIT_RANGE = 0.1


def new_model(arch: ArchConfig, values: ValueSpace, vocab: Mapping[str, int], *, seed: int,
              provenance: Mapping[str, Any] | None = None) -> ScGPTModel:
    """A randomly initialised model (eval mode), deterministic in ``seed``."""
    config = ModelConfig(arch=arch, values=values, provenance=dict(provenance or {}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ScGPTModel(config, vocab)
        with torch.no_grad():
            emb = model.gene_encoder.embedding.weight
            emb.uniform_(-EMBED_INIT_RANGE, EMBED_INIT_RANGE)
            emb[arch.pad_id].zero_()
    return model.eval()
