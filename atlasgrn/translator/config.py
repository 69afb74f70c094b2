"""Hyper-parameters of translator training, apart from the training code (no torch), so the
CLI reads their defaults cheaply."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TranslatorConfig:
    """Hyper-parameters of translator training (recorded in ``translator.json``)."""

    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    max_epochs: int = 300
    patience: int = 20
    val_fraction: float = 0.2
    seed: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)
