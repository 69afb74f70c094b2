"""Feature normalisation for probe features, fitted on training pairs only.

Probe features span orders of magnitude (cross-gene gradients are ~1e-3 of self-gradients, and
differ between models and value spaces), so each feature dimension is first compressed with
``sign(x) * log1p(|x| / tau)`` — ``tau`` = the median absolute non-zero value of that dimension in
the training data, which makes the transform scale-free — and then standardised. All statistics
come from the training data and are saved with the translator, so test pairs never leak into them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FeatureNormalizer:
    """Per-dimension signed-log compression and standardisation."""

    tau: np.ndarray  # [D]
    mean: np.ndarray  # [D]
    std: np.ndarray  # [D]

    @classmethod
    def fit(cls, x: np.ndarray) -> FeatureNormalizer:
        x = _as_2d(x)
        absx = np.abs(x)
        tau = np.empty(x.shape[1], dtype=np.float64)
        for d in range(x.shape[1]):
            nz = absx[:, d][absx[:, d] > 0]
            tau[d] = float(np.median(nz)) if nz.size else 1.0
        tau = np.where(tau > 0, tau, 1.0)
        z = np.sign(x) * np.log1p(absx / tau)
        mean = z.mean(axis=0)
        std = z.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        return cls(tau=tau.astype(np.float64), mean=mean.astype(np.float64),
                   std=std.astype(np.float64))

    def transform(self, x: np.ndarray) -> np.ndarray:
        x = _as_2d(x)
        if x.shape[1] != self.tau.shape[0]:
            raise ValueError(f"features have {x.shape[1]} dims, normaliser was fitted on "
                             f"{self.tau.shape[0]}")
        z = np.sign(x) * np.log1p(np.abs(x) / self.tau)
        return ((z - self.mean) / self.std).astype(np.float32)

    def to_json(self) -> dict[str, list[float]]:
        return {"tau": self.tau.tolist(), "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, list[float]]) -> FeatureNormalizer:
        return cls(tau=np.asarray(data["tau"], dtype=np.float64),
                   mean=np.asarray(data["mean"], dtype=np.float64),
                   std=np.asarray(data["std"], dtype=np.float64))


def _as_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        x = x.reshape(x.shape[0], -1)
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or inf")
    return x
