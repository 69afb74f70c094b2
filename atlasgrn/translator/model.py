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
    """The translator for one feature kind (e.g. "vvp", "gdt_uniform", "emb"), or a fused model
    over several (``inputs``: the kinds whose features it reads, concatenated in that order)."""

    kind: str
    normalizer: FeatureNormalizer
    mlp: EdgeMLP
    metrics: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()

    @property
    def input_kinds(self) -> tuple[str, ...]:
        """The feature kinds this model reads: its ``inputs``, or its own kind."""
        return tuple(self.inputs) or (self.kind,)

    def features_of(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """This model's input rows from per-kind feature rows (concatenated for a fused one)."""
        parts = [np.asarray(features[k]).reshape(len(features[k]), -1)
                 for k in self.input_kinds]
        return parts[0] if len(parts) == 1 else np.concatenate(
            [p.astype(np.float64) for p in parts], axis=1)

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

    def input_kinds(self, kinds: Sequence[str] | None = None) -> tuple[str, ...]:
        """The feature kinds scoring with ``kinds`` (default: the ensemble) reads, in order."""
        use = tuple(kinds) if kinds else self.ensemble_kinds
        return tuple(dict.fromkeys(i for k in use for i in self.kinds[k].input_kinds))

    def logits(self, features: Mapping[str, np.ndarray],
               kinds: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Logit of each model of ``kinds`` (default: every model of the translator) whose
        input kinds ``features`` all hold."""
        names = self.kinds if kinds is None else kinds
        return {name: self.kinds[name].logits(self.kinds[name].features_of(features))
                for name in names
                if all(k in features for k in self.kinds[name].input_kinds)}

    def score(self, features: Mapping[str, np.ndarray],
              kinds: Sequence[str] | None = None) -> np.ndarray:
        """Edge probability from the average logit of ``kinds`` (default: the ensemble)."""
        use = tuple(kinds) if kinds else self.ensemble_kinds
        missing = [k for k in self.input_kinds(use) if k not in features]
        if missing:
            raise KeyError(f"features for {missing} are needed to score with {list(use)}")
        return self.score_from_logits(
            {k: self.kinds[k].logits(self.kinds[k].features_of(features)) for k in use}, use)

    def best_validated(self, exclude_inputs: Sequence[str] = (),
                       metric: str = "val_auroc") -> str:
        """The model with the best validation ``metric`` (``val_auroc``: held-out training
        sources; ``unseen_gene_auroc``: pairs of held-out genes), among those that read none of
        ``exclude_inputs`` (e.g. the kinds a dataset without expression cannot serve). Ties go
        to the earlier model; "" when none qualifies."""
        banned = set(exclude_inputs)
        candidates = [k for k, m in self.kinds.items() if not banned & set(m.input_kinds)]
        return max(candidates, key=lambda k: self.kinds[k].metrics.get(metric) or 0.0,
                   default="")

    def score_from_logits(self, logits: Mapping[str, np.ndarray],
                          kinds: Sequence[str] | None = None) -> np.ndarray:
        """``sigmoid(mean logit of kinds)``, for callers that keep the per-kind logits too."""
        use = tuple(kinds) if kinds else self.ensemble_kinds
        lg = np.mean([logits[k] for k in use], axis=0)
        return 1.0 / (1.0 + np.exp(-lg))
