"""The per-feature-kind translator network: a small MLP from a pair's feature to one logit."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class EdgeMLP(nn.Module):
    """``in_dim -> hidden... -> 1`` with GELU and dropout; outputs an edge logit."""

    def __init__(self, in_dim: int, hidden: Sequence[int] = (64, 32), dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        prev = in_dim
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.GELU(), nn.Dropout(dropout)]
            prev = h
        layers.append(nn.Linear(prev, 1))
        self.net = nn.Sequential(*layers)
        self.in_dim = in_dim
        self.hidden = tuple(int(h) for h in hidden)
        self.dropout = float(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(-1)
