"""A trained translator: per-kind normaliser + MLP, and the logit-average ensemble."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

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
    """Edge scorer: ``sigmoid(mean of the ensemble kinds' logits)`` (method §3)."""

    kinds: dict[str, KindModel]
    ensemble_kinds: tuple[str, ...]
    provenance: Mapping[str, Any] = field(default_factory=dict)

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
        lg = np.mean([self.kinds[k].logits(features[k]) for k in use], axis=0)
        return 1.0 / (1.0 + np.exp(-lg))
