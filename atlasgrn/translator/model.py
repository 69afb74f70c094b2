"""A trained translator: per-kind normaliser + MLP, and the logit-average ensemble."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..features.spec import FeatureSpec
from .mlp import EdgeMLP
from .normalize import FeatureNormalizer


@dataclass
class KindModel:
    """The translator for one feature kind (e.g. "vvp", "gdt_uniform", "emb")."""

    kind: str
    normalizer: FeatureNormalizer
    mlp: EdgeMLP
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def logits(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x).reshape(len(x), -1)
        with torch.no_grad():
            return self.mlp(torch.from_numpy(self.normalizer.transform(x))).numpy()


@dataclass
class Translator:
    """Edge scorer: ``sigmoid(mean of the ensemble kinds' logits)`` (method §3).

    ``feature_spec`` is how the features it was trained on were computed: it travels with the
    checkpoint, and whoever serves the translator computes features from it (design §3.3a).
    """

    kinds: dict[str, KindModel]
    ensemble_kinds: tuple[str, ...]
    provenance: Mapping[str, Any] = field(default_factory=dict)
    feature_spec: FeatureSpec | None = None

    def __post_init__(self) -> None:
        for m in self.kinds.values():
            m.mlp.eval()

    def logits(self, features: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Logit of every kind present in both ``features`` and the translator."""
        return {k: self.kinds[k].logits(v) for k, v in features.items() if k in self.kinds}

    def score(self, features: Mapping[str, np.ndarray],
              kinds: Sequence[str] | None = None) -> np.ndarray:
        """Edge probability from the average logit of ``kinds`` (default: the ensemble)."""
        use = tuple(kinds) if kinds else self.ensemble_kinds
        missing = [k for k in use if k not in features]
        if missing:
            raise KeyError(f"features for {missing} are needed to score with {list(use)}")
        return self.score_from_logits({k: self.kinds[k].logits(features[k]) for k in use}, use)

    def score_from_logits(self, logits: Mapping[str, np.ndarray],
                          kinds: Sequence[str] | None = None) -> np.ndarray:
        """``sigmoid(mean logit of kinds)``, for callers that keep the per-kind logits too."""
        use = tuple(kinds) if kinds else self.ensemble_kinds
        lg = np.mean([logits[k] for k in use], axis=0)
        return 1.0 / (1.0 + np.exp(-lg))
